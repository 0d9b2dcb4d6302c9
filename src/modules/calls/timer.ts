import type { Services } from '../../services/services.ts';
import type { Logger } from '../../lib/logger.ts';
import { expireRingingCalls } from './service.ts';

/**
 * Turns unanswered calls into MISSED. Each instance times the calls it started, and also
 * sweeps now and then for calls left ringing by an instance that went away.
 */
export class CallTimer {
  private readonly ringing = new Map<number, NodeJS.Timeout>();
  private sweeper?: NodeJS.Timeout;
  private services?: Services;
  /** The sweep under way, which stop() waits for so it never runs on a closed database. */
  private running?: Promise<void>;

  constructor(
    private readonly timeoutSeconds: number,
    private readonly log: Logger,
  ) {}

  start(services: Services): void {
    this.services = services;
    this.sweeper = setInterval(() => void this.expire(), Math.max(1000, (this.timeoutSeconds * 1000) / 3));
    this.sweeper.unref();
  }

  ring(callId: number): void {
    const timer = setTimeout(() => {
      this.ringing.delete(callId);
      void this.expire();
    }, this.timeoutSeconds * 1000 + 250); // a little past the deadline the sweep checks
    timer.unref();
    this.ringing.set(callId, timer);
  }

  stopRinging(callId: number): void {
    clearTimeout(this.ringing.get(callId));
    this.ringing.delete(callId);
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    for (const timer of this.ringing.values()) clearTimeout(timer);
    this.ringing.clear();
    const services = this.services;
    this.services = undefined;
    if (services) await this.running;
  }

  private expire(): Promise<void> {
    const services = this.services;
    if (!services) return Promise.resolve();
    this.running = (async () => {
      await this.running;
      try {
        await expireRingingCalls(services, this.timeoutSeconds);
      } catch (err) {
        this.log.warn({ err }, 'expiring unanswered calls failed');
      }
    })();
    return this.running;
  }
}

declare module '../../services/services.ts' {
  interface Services {
    /** Calls that ring out become MISSED. */
    calls: CallTimer;
  }
}
