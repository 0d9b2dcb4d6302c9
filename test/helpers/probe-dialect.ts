import { EventEmitter } from 'node:events';
import { GatewayError } from '../../src/gateway/gateway.ts';
import { ConnectRefused, handshakeToken, typedJsonFrames, type RealtimeDialect, type SocketIoDialect, type WsDialect } from '../../src/realtime/session.ts';
import { graphql } from '../generated/index.ts';

const ME = graphql(`query ProbeMe { me { id username } }`);
const EVENTS = graphql(`
  subscription ProbeEvents($id: ID!) {
    conversationEvents(conversationId: $id) { __typename ... on MessageAddedEvent { message { id content } } }
  }
`);

/** Emits `flooded` (userId) once a `flood` event has sent what it could. */
export const probeActivity = new EventEmitter();

/**
 * A dialect written once against the transport-agnostic session, mounted on Socket.IO and on
 * raw WebSocket, so one scenario suite can run over both adapters.
 */
const probe: RealtimeDialect = {
  name: 'probe',
  token: async (handshake) => handshakeToken(handshake),
  refuse(reason) {
    return new ConnectRefused(reason, { message: reason });
  },
  async onConnect(session) {
    session.send('welcome', { userId: session.user.id, params: session.handshake.params });
  },
  events: {
    async whoami(session) {
      const { me } = await session.run(ME);
      session.send('me', me);
      return me;
    },
    async watch(session, data) {
      await session.follow(`conversation:${data.id}`, EVENTS, { id: data.id }, ({ conversationEvents: e }) => {
        if (e.__typename === 'MessageAddedEvent') session.send('message', e.message);
      });
      session.send('watching', { id: data.id });
    },
    async join(session, data) {
      await session.join(String(data.room));
      session.send('joined', { room: data.room });
    },
    async say(session, data) {
      session.broadcast(String(data.room), 'said', { by: session.user.username, text: data.text });
    },
    async refuse() {
      throw GatewayError.badField('text', 'is required');
    },
    /** Sends `count` frames of 256 KB at once, for the backlog bound. */
    async flood(session, data) {
      const chunk = 'x'.repeat(256 * 1024);
      for (let i = 0; i < Number(data.count) && !session.isClosed; i++) session.send('chunk', { i, chunk });
      probeActivity.emit('flooded', session.user.id);
    },
  },
  errorPayload(err) {
    return { code: err.code, message: err.message };
  },
};

export const probeOnSocketIo: SocketIoDialect = { ...probe, namespace: '/probe' };
export const probeOnWs: WsDialect = { ...probe, path: '/probe/ws/:room', ...typedJsonFrames };
export const probeDialects = { socketDialects: [probeOnSocketIo], wsDialects: [probeOnWs] };
