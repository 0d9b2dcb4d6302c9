import net from 'node:net';
import type { PGlite } from '@electric-sql/pglite';

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;

/**
 * Serves an embedded PGlite database over the PostgreSQL wire protocol on a loopback port, so
 * the ordinary `pg` driver (and Prisma's pg adapter) can use it.
 *
 * Why not @electric-sql/pglite-socket: its handler starts processing each incoming TCP chunk
 * as soon as it arrives, so two chunks can be parsed at the same time; under concurrent
 * queries that corrupts the message stream and the connection is dropped ("Connection
 * terminated unexpectedly"). Here the chunks of a connection are handled strictly in order.
 * PGlite is a single session, so this serves one connection at a time (our pool has one): a
 * connection's messages wait until every earlier connection has closed and what it left in
 * the session (an open transaction, prepared statements, settings) has been cleared, as
 * PostgreSQL would when a session ends; otherwise the next connection's prepared statements
 * would collide with the old ones.
 */
export async function servePGlite(db: PGlite): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  /** Settles once the latest connection so far has closed and its session state is cleared. */
  let sessionFree = Promise.resolve();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    let buffer = Buffer.alloc(0);
    let started = false;
    let chain = sessionFree;
    let ended!: () => void;
    sessionFree = new Promise((resolve) => (ended = resolve));

    const run = (message: Buffer) =>
      db.runExclusive(() =>
        db.execProtocolRawStream(new Uint8Array(message), {
          onRawData: (data) => {
            if (socket.writable) socket.write(data);
          },
        }),
      );

    const feed = async (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        // The first messages (SSL request, startup) have no type byte; later ones do.
        const headerSize = started ? 5 : 8;
        if (buffer.length < headerSize) return;
        const length = started ? 1 + buffer.readInt32BE(1) : buffer.readInt32BE(0);
        if (buffer.length < length) return;
        const message = buffer.subarray(0, length);
        buffer = buffer.subarray(length);
        if (!started) {
          const code = message.readInt32BE(4);
          if (code === SSL_REQUEST) {
            socket.write('N');
            continue;
          }
          if (code === CANCEL_REQUEST) continue;
          started = true;
        }
        await run(message);
      }
    };

    socket.on('data', (chunk) => {
      chain = chain.then(() => feed(chunk)).catch(() => {
        socket.destroy();
      });
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      sockets.delete(socket);
      void chain
        .then(async () => {
          if (db.isInTransaction()) await db.exec('ROLLBACK');
          await db.exec('DISCARD ALL');
        })
        .catch(() => {})
        .finally(ended);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
