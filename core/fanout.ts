import { ResourceExhaustedError } from './errors.js';

interface Subscriber<T> {
  queue: T[];
  wake: (() => void) | undefined;
  failure: Error | undefined;
  onCut: (err: Error) => void;
}

/**
 * Hands each published item to every subscriber, in order. A subscriber
 * that falls more than `limit` items behind is cut off (its iterator
 * throws ResourceExhausted) instead of holding memory or the publisher:
 * publishing never waits for anyone.
 */
export class Fanout<T> {
  private readonly subscribers = new Set<Subscriber<T>>();

  constructor(
    private readonly limit: number,
    private readonly what: string,
  ) {}

  get size(): number {
    return this.subscribers.size;
  }

  /** `item` is made only when someone listens. */
  publish(item: () => T): void {
    if (this.subscribers.size === 0) return;
    const value = item();
    for (const sub of this.subscribers) {
      if (sub.queue.length >= this.limit) {
        this.cut(
          sub,
          new ResourceExhaustedError(`this ${this.what} subscriber fell more than ${this.limit} behind and was cut off; subscribe again (and relist)`),
        );
        continue;
      }
      sub.queue.push(value);
      this.wakeUp(sub);
    }
  }

  /**
   * Items published from now on (the subscription starts at this call, not
   * at the first read), until `signal` aborts (the iterator then ends) or
   * the subscriber is cut off (`onCut` is told at once, for a caller that
   * must act while nobody iterates; the iterator then throws).
   */
  subscribe(signal: AbortSignal, onCut: (err: Error) => void = () => {}): AsyncGenerator<T> {
    const sub: Subscriber<T> = { queue: [], wake: undefined, failure: undefined, onCut };
    this.subscribers.add(sub);
    const onAbort = () => {
      this.subscribers.delete(sub);
      this.wakeUp(sub);
    };
    signal.addEventListener('abort', onAbort);
    const drain = async function* (this: Fanout<T>): AsyncGenerator<T> {
      try {
        while (!signal.aborted) {
          const next = sub.queue.shift();
          if (next !== undefined) {
            yield next;
            continue;
          }
          if (sub.failure) throw sub.failure;
          await new Promise<void>((resolve) => {
            sub.wake = resolve;
          });
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
        this.subscribers.delete(sub);
      }
    };
    return drain.call(this);
  }

  private cut(sub: Subscriber<T>, err: Error): void {
    this.subscribers.delete(sub);
    sub.queue.length = 0;
    sub.failure = err;
    this.wakeUp(sub);
    sub.onCut(err);
  }

  private wakeUp(sub: Subscriber<T>): void {
    const wake = sub.wake;
    sub.wake = undefined;
    wake?.();
  }
}
