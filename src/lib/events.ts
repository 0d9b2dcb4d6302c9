import { Repeater } from 'graphql-yoga';
import { PubSub, type PubSubEngine } from 'graphql-subscriptions';
import { RedisPubSub } from 'graphql-redis-subscriptions';
import { Redis } from 'ioredis';

/**
 * Every event that crosses the bus, by type. Payloads are plain JSON (dates as ISO strings)
 * because with Redis they travel between processes; subscribers resolve what they show
 * through the schema.
 */
export type BusEvent =
  | { type: 'presence'; userId: number; isOnline: boolean; lastSeenAt: string | null }
  /** Control events, handled by each instance's transports rather than by subscriptions. */
  | { type: 'userBanned'; userId: number }
  | { type: 'deviceRevoked'; userId: number; deviceId: number };

/** Topic names in one place: per user, per conversation, and one rare control topic. */
export const topics = {
  presence: (userId: number | string) => `presence:${userId}`,
  user: (userId: number | string) => `user:${userId}`,
  conversation: (conversationId: number | string) => `conversation:${conversationId}`,
  control: () => 'control',
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

  private constructor(
    private readonly engine: PubSubEngine,
    private readonly redis?: { publisher: Redis; subscriber: Redis },
  ) {}

  static inProcess(): EventBus {
    return new EventBus(new PubSub());
  }

  static redis(url: string): EventBus {
    // Subscribing puts a Redis connection in subscriber mode, so publishing needs its own.
    const options = { maxRetriesPerRequest: null, lazyConnect: false };
    const publisher = new Redis(url, options);
    const subscriber = new Redis(url, options);
    return new EventBus(new RedisPubSub({ publisher, subscriber }), { publisher, subscriber });
  }

  get mode(): 'redis' | 'in-process' {
    return this.redis ? 'redis' : 'in-process';
  }

  publish(topic: string, event: BusEvent): Promise<void> {
    return this.engine.publish(topic, event);
  }

  /** Calls `onEvent` for each event on `topic` until the returned function is called. */
  async listen(topic: string, onEvent: (event: BusEvent) => void): Promise<() => void> {
    const id = await this.engine.subscribe(topic, onEvent, {});
    this.perTopic.set(topic, (this.perTopic.get(topic) ?? 0) + 1);
    this.listeners++;
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

  /** An async iterator over the events of several topics, released when the consumer stops. */
  subscribe(topicList: string[], filter?: (event: BusEvent) => boolean): AsyncIterableIterator<BusEvent> {
    return new Repeater<BusEvent>(async (push, stop) => {
      const releases = await Promise.all(
        topicList.map((topic) => this.listen(topic, (event) => (!filter || filter(event)) && void push(event))),
      );
      await stop;
      for (const release of releases) release();
    });
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
