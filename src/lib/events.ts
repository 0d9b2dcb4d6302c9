import { EventEmitter } from 'node:events';
import { PubSub, type PubSubEngine } from 'graphql-subscriptions';
import { RedisPubSub } from 'graphql-redis-subscriptions';
import { Redis } from 'ioredis';
import type { Logger } from './logger.ts';
import { AppError } from './errors.ts';

/** A user as events carry it: public fields only, dates as ISO strings. */
export interface UserSnapshot {
  id: number;
  username: string;
  displayName: string | null;
  avatarUrl: string | null;
  bio: string | null;
  website: string | null;
  isPrivate: boolean;
  status: 'ACTIVE' | 'BANNED';
  lastSeenAt: string | null;
  createdAt: string;
}

export interface FileSnapshot {
  id: number;
  name: string;
  size: number;
  mimeType: string;
  width: number | null;
  height: number | null;
  uploaderId: number | null;
  conversationId: number | null;
  messageId: number | null;
  /** Where a file recorded but not stored here lives. */
  externalUrl: string | null;
  createdAt: string;
}

/** A message with everything a subscriber may select, built once per event. */
export interface MessageSnapshot {
  id: number;
  conversationId: number;
  seq: number;
  senderId: number | null;
  kind: 'TEXT' | 'IMAGE' | 'FILE' | 'AUDIO' | 'VIDEO' | 'SYSTEM';
  content: string;
  replyToId: number | null;
  clientId: string | null;
  editedAt: string | null;
  deletedAt: string | null;
  createdAt: string;
  sender: UserSnapshot | null;
  attachments: FileSnapshot[];
  replyTo: Omit<MessageSnapshot, 'replyTo' | 'attachments'> & { replyTo?: undefined; attachments?: undefined } | null;
}

export interface CallSnapshot {
  id: number;
  kind: 'AUDIO' | 'VIDEO';
  status: 'RINGING' | 'IN_PROGRESS' | 'ENDED' | 'REJECTED' | 'MISSED';
  caller: UserSnapshot;
  callee: UserSnapshot;
  startedAt: string;
  answeredAt: string | null;
  endedAt: string | null;
}

export type CallAction = 'INCOMING' | 'ANSWERED' | 'REJECTED' | 'ENDED' | 'MISSED' | 'SIGNAL';

/**
 * Every event that crosses the bus, by type. Payloads are plain JSON (dates as ISO strings)
 * because with Redis they travel between processes; they carry what subscribers select, so
 * delivering an event needs no database query per subscriber.
 */
export type BusEvent =
  | { type: 'presence'; userId: number; isOnline: boolean; lastSeenAt: string | null }
  | { type: 'messageAdded'; conversationId: number; message: MessageSnapshot }
  | { type: 'messageEdited'; conversationId: number; message: MessageSnapshot }
  | { type: 'messageDeleted'; conversationId: number; messageId: number }
  | { type: 'typing'; conversationId: number; user: UserSnapshot; isTyping: boolean }
  | { type: 'readReceipt'; conversationId: number; user: UserSnapshot; messageId: number; readAt: string }
  /** On a conversation's topic: this user left or was removed, and stops receiving at once. */
  | { type: 'memberRemoved'; conversationId: number; userId: number }
  /** On a user's topic: the conversation's last message, unread count, members or title changed. */
  | { type: 'conversationUpdated'; conversationId: number }
  /** On both parties' topics; `signal` is the offer, answer or ICE candidate being relayed. */
  | { type: 'call'; action: CallAction; call: CallSnapshot; signal: unknown }
  /** Control events, handled by each instance's transports rather than by subscriptions. */
  | { type: 'userBanned'; userId: number }
  | { type: 'deviceRevoked'; userId: number; deviceId: number }
  /** A user's row changed (profile, avatar, unban): instances drop what they remember of it. */
  | { type: 'userChanged'; userId: number }
  /** A server event for every raw WebSocket connection in a dialect's room, on every instance. */
  | { type: 'roomEvent'; event: string; payload: unknown };

type PublisherWithScripts = Redis & { publishToAll(numberOfTopics: number, ...topicsThenPayload: string[]): Promise<number> };

/** Topic names in one place: per user, per conversation, and one rare control topic. */
export const topics = {
  presence: (userId: number | string) => `presence:${userId}`,
  user: (userId: number | string) => `user:${userId}`,
  conversation: (conversationId: number | string) => `conversation:${conversationId}`,
  control: () => 'control',
  /** A dialect's room of raw WebSocket connections (Socket.IO rooms go through its own adapter). */
  room: (dialect: string, room: string) => `room:${dialect}:${room}`,
};

export interface EventBusStats {
  /** Iterators and listeners currently attached on this instance. */
  subscriptions: number;
  /** Distinct topics this instance currently listens to (Redis channels in Redis mode). */
  topics: number;
}

/**
 * The one typed event bus: in-process by default, Redis pub/sub when REDIS_URL is set. It
 * counts what it holds so leaks are visible, and every listener it hands out is released
 * when its consumer stops.
 */
export class EventBus {
  private readonly perTopic = new Map<string, number>();
  private listeners = 0;
  /**
   * Emits `listen` (topic) once a listener is attached (lets tests await a live subscription),
   * and `resync` once the bus is back after an outage with every topic subscribed again:
   * what was published meanwhile is lost, and streams read it from the database (live/watch.ts).
   */
  readonly activity = new EventEmitter();

  private constructor(
    private readonly engine: PubSubEngine,
    /** Events a subscriber may leave unread before its subscription ends (`tooFarBehind`). */
    private readonly maxQueued: number,
    private readonly redis?: { publisher: PublisherWithScripts; subscriber: Redis; serialize: (event: BusEvent) => string },
  ) {}

  static inProcess(maxQueued = MAX_QUEUED_EVENTS): EventBus {
    // A busy room has many listeners on one topic; EventEmitter's warning past 10 is a leak
    // heuristic that does not fit (the subscription clean-up test watches for real leaks).
    const eventEmitter = new EventEmitter();
    eventEmitter.setMaxListeners(0);
    return new EventBus(new PubSub({ eventEmitter }), maxQueued);
  }

  static redis(url: string, log: Logger, maxQueued = MAX_QUEUED_EVENTS): EventBus {
    const options = { maxRetriesPerRequest: null, lazyConnect: false };
    // Commands issued in the same tick go out in one write.
    const publisher = new Redis(url, { ...options, enableAutoPipelining: true }) as PublisherWithScripts;
    // One event to many topics (every member of a group) is one command, not one per topic.
    publisher.defineCommand('publishToAll', {
      lua: "for _, channel in ipairs(KEYS) do redis.call('PUBLISH', channel, ARGV[1]) end return #KEYS",
    });
    // Subscribing puts a Redis connection in subscriber mode, so publishing needs its own.
    const subscriber = new Redis(url, options);
    // An event that goes to several topics is serialised once.
    const serialized = new WeakMap<object, string>();
    const serialize = (payload: object) => {
      let text = serialized.get(payload);
      if (text === undefined) serialized.set(payload, (text = JSON.stringify(payload)));
      return text;
    };
    const bus = new EventBus(new RedisPubSub({ publisher, subscriber, serializer: serialize }), maxQueued, {
      publisher,
      subscriber,
      serialize,
    });
    watchConnection(publisher, 'publisher', log);
    watchConnection(subscriber, 'subscriber', log, () => {
      // ioredis subscribes again right after 'ready' (in the same turn, after this listener);
      // a PING queued behind those SUBSCRIBEs answers once they are in force, and from then on
      // every event reaches this instance: what was published before is read from the database.
      setImmediate(() => void subscriber.ping().catch(() => {}).then(() => bus.activity.emit('resync')));
    });
    return bus;
  }

  get mode(): 'redis' | 'in-process' {
    return this.redis ? 'redis' : 'in-process';
  }

  /** Publishes `event` on each of `topic` (one topic or several, in that order). */
  async publish(topic: string | string[], event: BusEvent): Promise<void> {
    const list = typeof topic === 'string' ? [topic] : topic;
    if (this.redis && list.length > 1) {
      await this.redis.publisher.publishToAll(list.length, ...list, this.redis.serialize(event));
    } else {
      for (const one of list) await this.engine.publish(one, event);
    }
  }

  /** Calls `onEvent` for each event on `topic` until the returned function is called. */
  async listen(topic: string, onEvent: (event: BusEvent) => void): Promise<() => void> {
    const id = await this.engine.subscribe(topic, onEvent, {});
    this.perTopic.set(topic, (this.perTopic.get(topic) ?? 0) + 1);
    this.listeners++;
    this.activity.emit('listen', topic);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.listeners--;
      const left = (this.perTopic.get(topic) ?? 1) - 1;
      if (left === 0) this.perTopic.delete(topic);
      else this.perTopic.set(topic, left);
      this.engine.unsubscribe(id);
    };
  }

  /**
   * Listens to several topics at once and resolves when listening has started (with Redis,
   * once the channels are subscribed), so every event published afterwards is in the stream.
   * Ending the iteration (`return()`, as `for await` and graphql-ws do) releases the topics.
   */
  async subscribe<T = BusEvent>(topicList: string[]): Promise<EventStream<T>> {
    const stream = new EventStream<T>(this.maxQueued);
    const releases = await Promise.all(topicList.map((topic) => this.listen(topic, (event) => stream.push(event))));
    stream.onEnd(() => releases.forEach((release) => release()));
    return stream;
  }

  /**
   * A subscription's stream: listens to `topicList`, then lets `body` (which may first read
   * what it needs) decide what the subscriber gets: a filter on the stream itself
   * (`EventStream.through`), or a generator that reads it. Ending the result, or `body`
   * failing before it starts, releases the topics.
   */
  async stream<T>(topicList: string[], body: (events: EventStream<T>) => AsyncIterator<T> | Promise<AsyncIterator<T>>): Promise<AsyncIterableIterator<T>> {
    const events = await this.subscribe<T>(topicList);
    try {
      const result = await body(events);
      return result === events ? events : endsWith(events, result);
    } catch (err) {
      await events.return();
      throw err;
    }
  }

  stats(): EventBusStats {
    return { subscriptions: this.listeners, topics: this.perTopic.size };
  }

  async ping(): Promise<boolean> {
    if (!this.redis) return true;
    return (await this.redis.publisher.ping()) === 'PONG';
  }

  /** The publishing Redis connection, shared with presence (and later rate limits). */
  get redisClient(): Redis | undefined {
    return this.redis?.publisher;
  }

  async close(): Promise<void> {
    if (!this.redis) return;
    await (this.engine as RedisPubSub).close();
  }
}

/**
 * Logs a Redis connection's outage once (ioredis retries without end, and without a listener
 * each failed attempt was an "Unhandled error event" line) and its return; `onBack` runs on
 * each return after the first connect.
 */
function watchConnection(redis: Redis, role: string, log: Logger, onBack?: () => void): void {
  let down = false;
  let connected = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log.warn({ err, role }, 'event bus: Redis connection lost; retrying');
  });
  redis.on('ready', () => {
    if (down) log.info({ role }, 'event bus: Redis connection back');
    down = false;
    if (connected) onBack?.();
    connected = true;
  });
}

/**
 * Events queued for one subscriber that has not read them, past which it is dropped: a reader
 * that far behind (a client that stopped reading its socket) would hold memory without end.
 * A reader that keeps up has a few at most; a burst from one batched write is a few hundred.
 */
export const MAX_QUEUED_EVENTS = 10_000;

/** The error a subscriber too far behind gets: it subscribes again, and reads what it missed by id. */
export const tooFarBehind = () =>
  new AppError('UNAVAILABLE', 'This subscription fell too far behind and was ended; subscribe again and fetch the messages after the last one you have', {
    reason: 'TOO_FAR_BEHIND',
  });

/**
 * A subscription's queue, read with `for await`, holding what was pushed until it is read.
 * Without a filter the bus's events are what the reader gets; a filter set with `through`
 * decides as each event arrives, so an event the reader gets costs no extra async step.
 */
export class EventStream<T = BusEvent> implements AsyncIterableIterator<T> {
  private readonly queue: T[] = [];
  private waiting?: { resolve: (result: IteratorResult<T>) => void; reject: (err: unknown) => void };
  private filter?: (event: BusEvent) => void;
  /** No more items: the reader gets what is queued, then the end (or `failure`). */
  private closed = false;
  private failure?: { error: unknown };
  private readonly cleanups: Array<() => void> = [];

  constructor(private readonly maxQueued = MAX_QUEUED_EVENTS) {}

  /** An event from the bus. */
  push(event: BusEvent): void {
    if (this.closed) return;
    if (this.filter) this.filter(event);
    else this.emit(event as unknown as T);
  }

  /** Hands `item` to the reader. */
  emit(item: T): void {
    if (this.closed) return;
    const waiting = this.waiting;
    this.waiting = undefined;
    if (waiting) waiting.resolve({ value: item, done: false });
    else if (this.queue.push(item) > this.maxQueued) {
      // What is queued is dropped: the subscriber fetches it again by id when it comes back.
      this.queue.length = 0;
      this.finish(tooFarBehind());
    }
  }

  /**
   * From now on each event goes through `filter`, which emits what the reader gets (nothing,
   * one item or several); events queued already go through it first.
   */
  through(filter: (event: BusEvent) => void): this {
    this.filter = filter;
    for (const event of this.queue.splice(0)) filter(event as unknown as BusEvent);
    return this;
  }

  /** Stops listening: the reader gets what is queued, then the end, or `error` if given. */
  finish(error?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    const waiting = this.waiting;
    this.waiting = undefined;
    if (error === undefined) waiting?.resolve({ value: undefined, done: true });
    else if (waiting) waiting.reject(error);
    else this.failure = { error };
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** The reader is waiting in `next()` (so nothing is queued). */
  get isReaderWaiting(): boolean {
    return this.waiting !== undefined;
  }

  /** Runs `cleanup` once the stream ends, however it ends. */
  onEnd(cleanup: () => void): void {
    if (this.closed) cleanup();
    else this.cleanups.push(cleanup);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.failure) {
      const { error } = this.failure;
      this.failure = undefined;
      return Promise.reject(error);
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  /** Ends at once, dropping what is queued. */
  async return(): Promise<IteratorResult<T>> {
    this.queue.length = 0;
    this.failure = undefined;
    this.finish();
    return { value: undefined, done: true };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * Wraps a generator that reads `stream` so that ending the result (a client unsubscribing or
 * disconnecting) ends the stream at once. An async generator alone only acts on `return()`
 * at its next `yield`, so one waiting for an event that never comes would keep its listeners.
 */
function endsWith<T>(stream: EventStream<T>, body: AsyncIterator<T>): AsyncIterableIterator<T> {
  return {
    next: () => body.next(),
    async return() {
      await stream.return();
      return (await body.return?.()) ?? { value: undefined, done: true };
    },
    async throw(error?: unknown) {
      await stream.return();
      if (body.throw) return body.throw(error);
      throw error;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}
