import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { TEST_JWT_SECRET } from './server.ts';

export interface ServerProcess {
  url: string;
  wsUrl: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  /** Its DATA_DIR (the embedded database, uploads, temporary files), removed when it exits. */
  dataDir: string;
  /** Resolves with the first log entry (printed already or to come) whose message matches. */
  logged(message: RegExp): Promise<LogEntry>;
}

export type LogEntry = { msg?: string; [field: string]: unknown };

/** The node flags of `npm start` (package.json), so a spawned server runs as an operator's does. */
async function startFlags(): Promise<string[]> {
  const { scripts } = JSON.parse(await readFile('package.json', 'utf8')) as { scripts: { start: string } };
  return scripts.start.split(/\s+/).filter((word) => word.startsWith('--'));
}

/**
 * Runs `npm start`'s entry point as its own process, as an operator would, on a free port.
 * Its stderr is the test's, unless `stderr: 'pipe'` (then `child.stderr` is for the caller to read).
 */
export async function spawnServer(env: Record<string, string> = {}, options: { stderr?: 'inherit' | 'pipe' } = {}): Promise<ServerProcess> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'chat-proc-'));
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : [];
  const child = spawn(process.execPath, [...profile, ...(await startFlags()), '--import', 'tsx', 'src/main.ts'], {
    env: {
      ...process.env,
      DATA_DIR: dataDir,
      PORT: '0',
      LOG_LEVEL: 'info',
      JWT_SECRET: TEST_JWT_SECRET,
      RATE_LIMITS: 'off',
      ...env,
    },
    stdio: ['ignore', 'pipe', options.stderr ?? 'inherit'],
  });
  // Its data directory (the embedded database, uploads) goes with the process.
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code))).then(async (code) => {
    await rm(dataDir, { recursive: true, force: true });
    return code;
  });
  // A piped stderr's first words go into a failed start's error (a config error is said there).
  let startErrors = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (startErrors.length < 4000) startErrors += chunk.toString();
  });
  const entries: LogEntry[] = [];
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => entries.push(JSON.parse(line) as LogEntry));
  const logged = (message: RegExp) =>
    new Promise<LogEntry>((resolve, reject) => {
      const found = entries.find((e) => message.test(e.msg ?? ''));
      if (found) return resolve(found);
      const onLine = () => {
        const entry = entries.at(-1)!;
        if (!message.test(entry.msg ?? '')) return;
        lines.off('line', onLine);
        resolve(entry);
      };
      lines.on('line', onLine);
      void exited.then((code) => reject(new Error(`server process exited with ${code} before logging ${message}${startErrors && `:\n${startErrors}`}`)));
    });
  const { url } = (await logged(/^listening$/)) as { url: string };
  return { url, wsUrl: `${url.replace(/^http/, 'ws')}/graphql`, child, exited, dataDir, logged };
}
