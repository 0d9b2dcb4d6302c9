import { createInterface } from 'node:readline';
import { spawnServer, type ServerProcess } from '../helpers/process.ts';
import { atExit } from './services.ts';

export interface Metrics {
  websockets: number;
  subscriptions: number;
}

/** One server process of the pair, with what it logged at error level or worse. */
export class Instance {
  /** False once the suite killed or stopped it: senders and subscribers then go to the other. */
  alive = true;
  /** Error and fatal log messages, and lines written to stderr, by message, for the report. */
  readonly errors = new Map<string, number>();
  /** Its subscriptions before any client came: the control topic's listener. */
  baseline = 0;

  private constructor(
    readonly name: string,
    readonly process: ServerProcess,
  ) {
    // A second reader of the JSON log lines (spawnServer keeps its own for `logged`).
    createInterface({ input: process.child.stdout! }).on('line', (line) => {
      let entry: { level?: number; msg?: string; err?: { message?: string } };
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      if ((entry.level ?? 0) < 50) return;
      this.count(`${entry.msg}${entry.err?.message ? `: ${entry.err.message.split('\n')[0]}` : ''}`);
    });
    // What bypasses the logger (a library printing to the console); stack lines left out.
    createInterface({ input: process.child.stderr! }).on('line', (line) => {
      if (line.trim() && !/^\s/.test(line)) this.count(`stderr: ${line}`);
    });
  }

  private count(key: string): void {
    this.errors.set(key, (this.errors.get(key) ?? 0) + 1);
  }

  static async spawn(name: string, env: Record<string, string>): Promise<Instance> {
    const instance = new Instance(name, await spawnServer(env, { stderr: 'pipe' }));
    const { child, exited } = instance.process;
    void exited.then(atExit(() => child.kill('SIGKILL')));
    instance.baseline = (await instance.metrics()).subscriptions;
    return instance;
  }

  get url() {
    return this.process.url;
  }

  get wsUrl() {
    return this.process.wsUrl;
  }

  async metrics(): Promise<Metrics> {
    const res = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
    return (await res.json()) as Metrics;
  }

  /** Sends `signal` and resolves with the exit code once the process is gone. */
  async kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<number | null> {
    // Still counted as running until it is gone: requests and reconnects meanwhile meet the
    // refusal a client would meet, and go to the other instance.
    this.process.child.kill(signal);
    const code = await this.process.exited;
    this.alive = false;
    return code;
  }
}

/**
 * Two instances on one PostgreSQL and Redis. A scenario may kill one; the next scenario
 * starts with a fresh one in its place.
 */
export class Cluster {
  readonly instances: Instance[] = [];
  private spawned = 0;

  constructor(private readonly env: Record<string, string>) {}

  /** Both instances running: the first start applies the migrations (two racing is fine: advisory lock). */
  async ensure(): Promise<void> {
    const missing = [0, 1].filter((i) => !this.instances[i]?.alive);
    const started = await Promise.all(missing.map(() => Instance.spawn(`instance-${++this.spawned}`, this.env)));
    missing.forEach((slot, i) => (this.instances[slot] = started[i]));
  }

  /** The running instance for the n-th choice: alternates between the two, skipping a stopped one. */
  pick(n: number): Instance {
    const alive = this.instances.filter((i) => i.alive);
    const from = alive.length > 0 ? alive : this.instances;
    return from[((n % from.length) + from.length) % from.length];
  }

  /** Running instances, `home` first. */
  preferring(home: number): Instance[] {
    const ordered = [this.instances[home], ...this.instances.filter((_, i) => i !== home)];
    return ordered.filter((i) => i.alive);
  }

  async stop(): Promise<void> {
    await Promise.all(this.instances.filter((i) => i.alive).map((i) => i.kill('SIGTERM')));
  }
}
