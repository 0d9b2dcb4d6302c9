import type { Redis } from 'ioredis';

/**
 * Who has an open connection, on every instance. Each connection is an entry with an expiry
 * that its instance keeps pushing forward; an instance that dies stops doing so and its
 * entries lapse, so its users do not stay online forever.
 *
 * `add` answers whether the user just came online, `remove` and `sweep` which users just went
 * offline. Each transition is reported to exactly one caller across all instances.
 */
export interface PresenceStore {
  add(userId: number, connectionId: string, expiresAt: number): Promise<boolean>;
  remove(userId: number, connectionId: string, now: number): Promise<boolean>;
  refresh(entries: Array<{ userId: number; connectionId: string }>, expiresAt: number): Promise<void>;
  sweep(now: number): Promise<number[]>;
  online(userIds: number[], now: number): Promise<boolean[]>;
}

export class MemoryPresenceStore implements PresenceStore {
  private readonly users = new Map<number, Map<string, number>>();

  async add(userId: number, connectionId: string, expiresAt: number) {
    const conns = this.users.get(userId) ?? new Map<string, number>();
    this.users.set(userId, conns);
    this.dropExpired(conns, Date.now());
    conns.set(connectionId, expiresAt);
    return conns.size === 1;
  }

  async remove(userId: number, connectionId: string, now: number) {
    const conns = this.users.get(userId);
    if (!conns?.delete(connectionId)) return false;
    this.dropExpired(conns, now);
    if (conns.size > 0) return false;
    this.users.delete(userId);
    return true;
  }

  async refresh(entries: Array<{ userId: number; connectionId: string }>, expiresAt: number) {
    for (const { userId, connectionId } of entries) {
      const conns = this.users.get(userId);
      if (conns?.has(connectionId)) conns.set(connectionId, expiresAt);
    }
  }

  async sweep(now: number) {
    const offline: number[] = [];
    for (const [userId, conns] of this.users) {
      this.dropExpired(conns, now);
      if (conns.size === 0) {
        this.users.delete(userId);
        offline.push(userId);
      }
    }
    return offline;
  }

  async online(userIds: number[], now: number) {
    return userIds.map((id) => [...(this.users.get(id)?.values() ?? [])].some((exp) => exp > now));
  }

  private dropExpired(conns: Map<string, number>, now: number) {
    for (const [id, exp] of conns) if (exp <= now) conns.delete(id);
  }
}

// Lua keeps each check-and-change atomic, which is what makes every transition reported once.
const ADD = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
return redis.call('ZCARD', KEYS[1])`;

const REMOVE = `
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
if removed == 1 and redis.call('ZCARD', KEYS[1]) == 0 then return 1 end
return 0`;

const SWEEP = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 500)
local offline = {}
for _, member in ipairs(expired) do
  redis.call('ZREM', KEYS[1], member)
  local sep = string.find(member, '|', 1, true)
  local userId = string.sub(member, 1, sep - 1)
  local key = ARGV[2] .. userId
  if redis.call('ZREM', key, string.sub(member, sep + 1)) == 1 then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[1])
    if redis.call('ZCARD', key) == 0 then table.insert(offline, userId) end
  end
end
return offline`;

export class RedisPresenceStore implements PresenceStore {
  private static readonly ALL = 'presence:connections';
  private static readonly USER_PREFIX = 'presence:user:';

  constructor(private readonly redis: Redis) {}

  private userKey(userId: number) {
    return RedisPresenceStore.USER_PREFIX + userId;
  }

  async add(userId: number, connectionId: string, expiresAt: number) {
    const count = await this.redis.eval(
      ADD, 2, this.userKey(userId), RedisPresenceStore.ALL,
      connectionId, expiresAt, Date.now(), `${userId}|${connectionId}`,
    );
    return Number(count) === 1;
  }

  async remove(userId: number, connectionId: string, now: number) {
    const wentOffline = await this.redis.eval(
      REMOVE, 2, this.userKey(userId), RedisPresenceStore.ALL, connectionId, now, `${userId}|${connectionId}`,
    );
    return Number(wentOffline) === 1;
  }

  async refresh(entries: Array<{ userId: number; connectionId: string }>, expiresAt: number) {
    if (entries.length === 0) return;
    const pipeline = this.redis.pipeline();
    for (const { userId, connectionId } of entries) {
      // XX: never resurrect an entry that a sweeper already removed.
      pipeline.zadd(this.userKey(userId), 'XX', expiresAt, connectionId);
      pipeline.zadd(RedisPresenceStore.ALL, 'XX', expiresAt, `${userId}|${connectionId}`);
    }
    await pipeline.exec();
  }

  async sweep(now: number) {
    const ids = (await this.redis.eval(SWEEP, 1, RedisPresenceStore.ALL, now, RedisPresenceStore.USER_PREFIX)) as string[];
    return ids.map(Number);
  }

  async online(userIds: number[], now: number) {
    if (userIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of userIds) pipeline.zcount(this.userKey(id), `(${now}`, '+inf');
    const results = (await pipeline.exec()) ?? [];
    return results.map(([, count]) => Number(count) > 0);
  }
}
