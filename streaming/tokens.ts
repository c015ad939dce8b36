import { randomBytes } from 'node:crypto';
import { timerMs } from '../core/timers.js';

/**
 * Single-use tokens for streaming URLs: Exec, Attach and PortForward hand
 * out a URL, the first request on it consumes the token, and an unused one
 * expires after `ttlMs` (kubelet connects within seconds).
 */
export class TokenStore<T> {
  private readonly entries = new Map<string, { value: T; timer: NodeJS.Timeout }>();

  constructor(private readonly ttlMs: () => number) {}

  issue(value: T): string {
    // URL-safe, unguessable.
    const token = randomBytes(24).toString('base64url');
    const timer = setTimeout(() => this.entries.delete(token), timerMs(this.ttlMs()));
    timer.unref();
    this.entries.set(token, { value, timer });
    return token;
  }

  /** The request behind a token, once; undefined when unknown, used or expired. */
  consume(token: string): T | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    clearTimeout(e.timer);
    this.entries.delete(token);
    return e.value;
  }

  get size(): number {
    return this.entries.size;
  }

  clear(): void {
    for (const e of this.entries.values()) clearTimeout(e.timer);
    this.entries.clear();
  }
}
