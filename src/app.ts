import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.ts';
import type { Services } from './services/services.ts';
import { createGraphQLServer } from './graphql/yoga.ts';
import { applyHttpPolicy, graphqlBodyRefusal, limitGraphQLRequest } from './http/policy.ts';
import { SharedEventResults } from './graphql/shared-results.ts';
import { openDatabase, type Database } from './lib/db.ts';
import { EventBus, topics } from './lib/events.ts';
import { createLogger, type Logger } from './lib/logger.ts';
import { migrate } from './lib/migrate.ts';
import { MemoryPresenceStore, RedisPresenceStore } from './lib/presence-store.ts';
import { RateLimits } from './lib/rate-limit.ts';
import { loadJwtSecret, loadVapidKeys } from './lib/secrets.ts';
import { TokenService } from './lib/tokens.ts';
import { ensureAdmin } from './modules/auth/service.ts';
import { SessionCache } from './modules/viewer/sessions.ts';
import { LoginThrottle } from './modules/auth/throttle.ts';
import { CallTimer } from './modules/calls/timer.ts';
import { ensureDefaultRoom } from './modules/conversations/service.ts';
import { TypingTimers } from './modules/conversations/typing.ts';
import { DeliveryTracker } from './modules/messages/delivery.ts';
import { ConversationWatch } from './modules/live/watch.ts';
import { OutboxRelay } from './modules/outbox/relay.ts';
import { webhookConsumer } from './modules/webhooks/consumer.ts';
import { pushConsumer } from './modules/push/consumer.ts';
import { mqttConsumer } from './modules/mqtt/consumer.ts';
import { OutboundPolicy } from './lib/outbound-http.ts';
import { MessageWriter } from './modules/messages/writer.ts';
import { PresenceService } from './modules/presence/service.ts';
import { createGraphQLWebSocketServer } from './transports/graphql-ws.ts';
import { SocketRegistry } from './realtime/registry.ts';
import type { SocketIoDialect, WsDialect } from './realtime/session.ts';
import { sendGraphQLError, sendJson } from './transports/http.ts';
import { handleMultipart } from './transports/graphql-multipart.ts';
import { serveGraphiQLAsset } from './transports/graphiql-assets.ts';
import { GRAPHIQL_ASSETS_PATH } from './graphql/graphiql-page.ts';
import { serveHome, type DialectMount } from './transports/home.ts';
import { serveFile } from './transports/file-links.ts';
import { createStorage } from './storage/storage.ts';
import { restDialects, socketDialects, wsDialects } from './compat/dialects.ts';
import { Gateway } from './gateway/gateway.ts';
import { RestRouter } from './compat/rest.ts';
import { createSocketIoServer } from './transports/socket-io.ts';
import { createRawWebSocketServer } from './transports/raw-ws.ts';
import { upgradeHandler, type UpgradeRoute } from './transports/upgrade.ts';

/** Realtime dialects mounted besides this server's own (tests mount one on both transports). */
export interface AppOptions {
  socketDialects?: SocketIoDialect[];
  wsDialects?: WsDialect[];
}

export interface App {
  /** Listens on `port` (0 picks a free one) and resolves with the URL it serves. */
  start(port?: number, host?: string): Promise<string>;
  stop(): Promise<void>;
  services: Services;
  instanceId: string;
}

/**
 * Builds one instance: opens the database and applies migrations, connects pub/sub, and wires
 * every transport onto one node:http server. Nothing listens until `start`.
 */
export async function buildApp(config: Config, log: Logger = createLogger(config.LOG_LEVEL), options: AppOptions = {}): Promise<App> {
  const instanceId = randomUUID();
  const database = await openDatabase(config, log);
  let bus: EventBus | undefined;
  try {
    await migrate(database.pool, log);
    bus = config.REDIS_URL
      ? EventBus.redis(config.REDIS_URL, log, config.SUBSCRIPTION_MAX_QUEUED)
      : EventBus.inProcess(config.SUBSCRIPTION_MAX_QUEUED);
    const store = bus.redisClient ? new RedisPresenceStore(bus.redisClient) : new MemoryPresenceStore();
    const services: Services = {
      config,
      db: database.prisma,
      sql: database.pool,
      bus,
      presence: new PresenceService(store, bus, database.prisma, config.PRESENCE_TTL * 1000, log),
      typing: new TypingTimers(bus),
      conversationWatch: new ConversationWatch(database.pool, bus, log),
      outbound: new OutboundPolicy(config.WEBHOOK_ALLOW_PRIVATE === 'true', config.WEBHOOK_ALLOWED_NETWORKS),
      outbox: new OutboxRelay(database.pool, log, {
        maxAttempts: config.OUTBOX_MAX_ATTEMPTS,
        retryBase: config.OUTBOX_RETRY_BASE,
        retentionHours: config.OUTBOX_RETENTION,
        pollSeconds: config.OUTBOX_POLL,
        // Every consumer gives up on a try within WEBHOOK_TIMEOUT (push and MQTT within less).
        leaseSeconds: Math.max(10, 3 * config.WEBHOOK_TIMEOUT),
      }),
      delivery: new DeliveryTracker(database.pool, log),
      messageWriter: new MessageWriter(database.pool),
      calls: new CallTimer(config.CALL_RING_TIMEOUT, log),
      storage: createStorage(config),
      tokens: new TokenService(await loadJwtSecret(config), config.ACCESS_TOKEN_TTL),
      sessions: new SessionCache(),
      vapid: await loadVapidKeys(config),
      limits: new RateLimits(bus.redisClient, config.RATE_LIMITS === 'on', log),
      loginThrottle: new LoginThrottle(bus.redisClient, config.LOGIN_MAX_FAILURES, config.LOGIN_LOCK_SECONDS),
      counters: { operationsTimedOut: 0, operationsAbandoned: 0 },
      log,
    };
    await Promise.all([ensureAdmin(services), ensureDefaultRoom(services)]);
    services.outbox.register(webhookConsumer(database.pool, services.outbound, config.WEBHOOK_TIMEOUT * 1000));
    services.outbox.register(pushConsumer(services));
    if (config.MQTT_URL) services.outbox.register(mqttConsumer({ url: config.MQTT_URL, clientId: `chat-backend-${instanceId}`, log }));
    return assemble(services, database, instanceId, options);
  } catch (err) {
    await bus?.close().catch(() => {});
    await database.close().catch(() => {});
    throw err;
  }
}

async function assemble(services: Services, database: Database, instanceId: string, options: AppOptions): Promise<App> {
  const { bus, presence, log, config } = services;
  const eventResults = new SharedEventResults();
  const yoga = createGraphQLServer(services, eventResults);
  const registry = new SocketRegistry();
  const wss = createGraphQLWebSocketServer(services, yoga, registry);
  const stopControl = await bus.listen(topics.control(), (event) => {
    services.sessions.forget(event);
    registry.handleControl(event);
  });
  const gateway = new Gateway(yoga);
  const rest = new RestRouter(services, gateway, restDialects);
  const startedAt = Date.now();
  const allWsDialects = [...wsDialects, ...(options.wsDialects ?? [])];
  const allSocketDialects = [...socketDialects, ...(options.socketDialects ?? [])];
  const mounts: DialectMount[] = restDialects.map((d) => ({
    name: d.name,
    rest: d.mount,
    socketIo: allSocketDialects.find((s) => s.name === d.name)?.namespace ?? null,
    webSocket: allWsDialects.find((w) => w.name === d.name)?.path ?? null,
  }));

  const server = http.createServer((req, res) => {
    const fail = (err: unknown) => {
      log.error({ err, url: req.url }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'Internal error' });
      else res.destroy();
    };
    // Stopping: the client's next request goes to another instance rather than this connection.
    if (stopping) res.setHeader('connection', 'close');
    try {
      route(req, res, fail);
    } catch (err) {
      fail(err);
    }
  });

  /** /graphql over HTTP: JSON (through Yoga) or a multipart upload, each counted by the rate limit. */
  async function graphql(req: http.IncomingMessage, res: http.ServerResponse) {
    const multipart = req.method === 'POST' && /^multipart\/form-data/i.test(req.headers['content-type'] ?? '');
    const refusal = multipart ? null : graphqlBodyRefusal(req);
    if (refusal) return sendGraphQLError(req, res, refusal.status, refusal.code, refusal.message);
    const limited = await limitGraphQLRequest(services, req, res);
    if (limited) return sendGraphQLError(req, res, 429, 'RATE_LIMITED', limited.message, limited.extensions);
    if (multipart) return handleMultipart(services, yoga, req, res);
    return yoga.handle(req, res);
  }

  let proxyWarned = false;
  function route(req: http.IncomingMessage, res: http.ServerResponse, fail: (err: unknown) => void) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const { pathname } = url;
    // Request id, CORS (preflights answered here), security headers: the same on every path.
    if (applyHttpPolicy(config, req, res, pathname)) return;
    if (!proxyWarned && config.TRUST_PROXY !== 'true' && req.headers['x-forwarded-for']) {
      // Every client then looks like the proxy: limits and sign-in locks would count them as one.
      proxyWarned = true;
      log.warn('requests arrive through a proxy (X-Forwarded-For) but TRUST_PROXY is not true: every client counts as the proxy for rate limits and sign-in locks');
    }
    if (pathname === '/') return void serveHome(req, res, config, mounts);
    // Liveness: the process answers (restart it if not). Readiness: /health and /health/ready,
    // 503 while the database or pub/sub does not answer (send it no traffic meanwhile).
    if (pathname === '/health/live') return void sendJson(res, 200, { status: 'ok', instanceId });
    if (pathname === '/health' || pathname === '/health/ready') return void health(res);
    if (pathname === '/metrics') return void sendJson(res, 200, metrics());
    // GraphiQL's own files, before /graphql: they are not operations, and count against no limit.
    if (pathname.startsWith(GRAPHIQL_ASSETS_PATH)) return void serveGraphiQLAsset(req, res, pathname).catch(fail);
    if (pathname === '/graphql' || pathname.startsWith('/graphql/')) return void graphql(req, res).catch(fail);
    if ((pathname.startsWith('/files/') || pathname.startsWith('/avatars/')) && (req.method === 'GET' || req.method === 'HEAD')) {
      return void serveFile(services, req, res, url).catch(fail);
    }
    if (rest.handle(req, res, url)) return;
    sendJson(res, 404, { error: 'Not found', path: pathname });
  }

  const socketIo = createSocketIoServer(server, services, gateway, registry, allSocketDialects);
  const rawWs = createRawWebSocketServer(services, gateway, registry);
  const upgradeRoutes: UpgradeRoute[] = [
    { path: '/graphql', take: (req, socket, head) => wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req)) },
    { path: '/socket.io/*', take: (req, socket, head) => socketIo.handleUpgrade(req, socket, head) },
    ...allWsDialects.map((dialect) => ({
      path: dialect.path,
      take: (req: http.IncomingMessage, socket: Duplex, head: Buffer, params: Record<string, string>) => rawWs.handleUpgrade(req, socket, head, dialect, params),
    })),
  ];
  server.on('upgrade', upgradeHandler(upgradeRoutes));

  async function health(res: http.ServerResponse) {
    const [dbOk, busOk] = await Promise.all([
      database.pool.query('SELECT 1').then(() => true, () => false),
      bus.ping().catch(() => false),
    ]);
    const ok = dbOk && busOk;
    // Each consumer's backlog: deliveries waiting, the oldest one's age, and the dead ones.
    const consumers = dbOk ? await services.outbox.stats().catch(() => undefined) : undefined;
    sendJson(res, ok ? 200 : 503, {
      status: ok ? 'ok' : 'unavailable',
      database: dbOk ? 'ok' : 'down',
      databaseMode: database.embedded ? 'embedded' : 'postgres',
      pubsub: busOk ? 'ok' : 'down',
      pubsubMode: bus.mode,
      instanceId,
      uptimeSeconds: Math.round((Date.now() - startedAt) / 1000),
      ...(consumers ? { consumers } : {}),
    });
  }

  /** Live counts, so leaks show (tests read them after many clients come and go). */
  function metrics() {
    const { subscriptions, topics: listening } = bus.stats();
    return {
      instanceId,
      websockets: wss.clients.size,
      signedInSockets: registry.size,
      socketIoClients: socketIo.io.engine.clientsCount,
      rawWebSockets: rawWs.clients.size,
      subscriptions,
      topics: listening,
      pubsubMode: bus.mode,
      // In Redis mode each topic this instance listens to is one subscribed Redis channel.
      redisChannels: bus.mode === 'redis' ? listening : 0,
      // Subscription results computed, and reused for another subscriber of the same selection.
      eventResults: { ...eventResults.stats },
      // Queries and mutations stopped by the time budget, and because their client had gone.
      operationsTimedOut: services.counters.operationsTimedOut,
      operationsAbandoned: services.counters.operationsAbandoned,
    };
  }

  let stopping: Promise<void> | undefined;
  return {
    services,
    instanceId,
    start(port = config.PORT, host = config.HOST) {
      presence.start();
      services.calls.start(services);
      services.outbox.start();
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const { address, port: bound } = server.address() as AddressInfo;
          const url = `http://${address.includes(':') ? `[${address}]` : address}:${bound}`;
          log.info({ url, instanceId }, 'listening');
          resolve(url);
        });
      });
    },
    /** Stops accepting, closes sockets (their users go offline), drains requests, disconnects. */
    stop() {
      stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Keep-alive connections busy now would be reused by their clients after their answer,
        // and kept the server open for the whole grace period: each is closed as soon as it is
        // idle, and answers from now on say `Connection: close` (see the request handler).
        server.closeIdleConnections();
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        for (const ws of wss.clients) ws.close(1001, 'Server shutting down');
        rawWs.close();
        await socketIo.close();
        const grace = setTimeout(() => server.closeAllConnections(), config.SHUTDOWN_GRACE * 1000);
        await closed;
        clearTimeout(grace);
        clearInterval(sweep);
        await presence.stop();
        services.typing.stop();
        services.conversationWatch.stop();
        await services.calls.stop();
        await services.delivery.flush();
        await services.outbox.stop();
        stopControl();
        await bus.close().catch((err) => log.warn({ err }, 'closing pub/sub failed'));
        await database.close().catch((err) => log.warn({ err }, 'closing database failed'));
        log.info({ instanceId }, 'stopped');
      })();
      return stopping;
    },
  };
}
