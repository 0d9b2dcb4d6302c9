import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { appendFile, chown, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { freePort } from '../helpers/ports.ts';

export { freePort };

// The fault suite's own Redis and PostgreSQL: it stops, kills and restarts them, so it must
// never touch the machine's shared services on 5432 / 6379 (other suites and people use them).

/**
 * Every stop function registered here, run synchronously if the test process ends without its
 * afterAll (a hung hook, an interrupted run): no Redis, PostgreSQL or data directory is left behind.
 */
const leftovers = new Set<() => void>();
/** Registers `stop` to run if the process ends early; returns its unregistration. */
export function atExit(stop: () => void): () => void {
  leftovers.add(stop);
  return () => leftovers.delete(stop);
}
const cleanUp = () => leftovers.forEach((stop) => stop());
process.once('exit', cleanUp);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    cleanUp();
    process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
  });
}

export interface PrivateRedis {
  url: string;
  port: number;
  /** Kills the server at once (SIGKILL: nothing is flushed, clients see the connection drop). */
  kill(): Promise<void>;
  /** Starts it again on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Kills it for good. */
  destroy(): Promise<void>;
}

/** A Redis of our own: a foreground child, so it can be killed and started again on its port. */
export async function startRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async () => {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child = proc;
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    // Redis says when it accepts connections; it exits at once if the port is still taken.
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: proc.stdout! });
      lines.on('line', (line) => {
        if (/Ready to accept connections/.test(line)) resolve();
      });
      void exited.then(() => reject(new Error(`redis-server on port ${port} exited before it was ready`)));
    });
  };
  const kill = async () => {
    child?.kill('SIGKILL');
    await exited; // the port is free again once the process is gone
    child = undefined;
  };
  const leftover = () => child?.kill('SIGKILL');
  leftovers.add(leftover);

  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    start,
    async destroy() {
      await kill();
      leftovers.delete(leftover);
    },
  };
}

export interface PrivatePostgres {
  /** The database the servers use. */
  url: string;
  port: number;
  /** `pg_ctl restart -m fast`: every connection is ended, and the server is back when this resolves. */
  restart(): Promise<void>;
  /** `pg_ctl stop -m fast`. */
  stop(): Promise<void>;
  /** `pg_ctl start`, resolved once it accepts connections. */
  start(): Promise<void>;
  /** Stops the cluster and removes its files. */
  destroy(): Promise<void>;
}

/**
 * PostgreSQL refuses to run as root; as root (CI here) its commands run as the `postgres` user,
 * in a temporary directory that user owns.
 */
function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/** Runs a PostgreSQL command to its end; its output goes to the error when it fails. */
function run(command: string, args: string[], user: { uid: number; gid: number } | undefined, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // stdio is ignored where pg_ctl starts the server: the server would inherit (and hold) pipes.
    execFile(command, args, { ...user, cwd, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve();
    });
  });
}

/**
 * A PostgreSQL cluster of our own (initdb + pg_ctl): trust auth on 127.0.0.1:<free port>, its
 * unix socket in its own directory, durability off (a test cluster needs speed, not fsync).
 */
export async function startPostgres(): Promise<PrivatePostgres> {
  const port = await freePort();
  const user = postgresUser();
  const dir = await mkdtemp(path.join(tmpdir(), 'chat-faults-pg-'));
  if (user) await chown(dir, user.uid, user.gid);
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'postgres.log');
  await run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'], user, dir);
  // In postgresql.conf rather than on pg_ctl's command line, so start and restart need nothing more.
  await appendFile(
    path.join(data, 'postgresql.conf'),
    [`port = ${port}`, `listen_addresses = '127.0.0.1'`, `unix_socket_directories = '${dir}'`, 'fsync = off', 'synchronous_commit = off', 'full_page_writes = off', ''].join('\n'),
  );
  const pgCtl = (...args: string[]) => run('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '30', ...args], user, dir);
  const leftover = () => {
    try {
      execFileSync('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop'], { ...user, stdio: 'ignore' });
    } catch {
      // not running
    }
    rmSync(dir, { recursive: true, force: true });
  };
  leftovers.add(leftover);
  await pgCtl('start');

  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await admin.connect();
  await admin.query('CREATE DATABASE chat');
  await admin.end();

  return {
    url: `postgres://postgres@127.0.0.1:${port}/chat`,
    port,
    restart: () => pgCtl('-m', 'fast', 'restart'),
    stop: () => pgCtl('-m', 'fast', 'stop'),
    start: () => pgCtl('start'),
    async destroy() {
      await pgCtl('-m', 'fast', 'stop').catch(() => {});
      leftovers.delete(leftover);
      leftover(); // stops it if the fast stop did not (immediate), and removes the directory
    },
  };
}
