import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../core/logger.js';

/** How often the daemon looks at its own memory: a timer that never holds the process. */
const CHECK_MS = 5_000;
/** Quiet: the event loop was busy for less than this share of the last check period. */
const QUIET_UTILIZATION = 0.1;
/** What RSS must have grown by over the last low point before a reclaim is worth its pause. */
const GROWTH_BYTES = 4 * 1024 * 1024;
/** At most one reclaim per this long, so a daemon that grows and shrinks by itself does not pause for it over and over. */
const MIN_INTERVAL_MS = 60_000;

/**
 * V8 keeps the heap pages a burst of work filled (a hundred pods started, an
 * image pulled) committed long after most objects on them died, and glibc
 * keeps the freed native memory: measured, ~10 MiB of a daemon with 100
 * running containers, none of it given back within a minute by V8's own
 * memory reducer. A plain full GC frees the objects but leaves the pages
 * (old space stayed at 20.5 MiB committed for 15.3 used); only a compacting
 * one moves the survivors together and unmaps the rest. Node has no call for
 * either, so the gc extension is switched on just long enough to take its
 * function into a context of its own (the daemon's globals never see it),
 * and compaction is asked of V8 for that one collection only.
 */
export function compactingGc(): (() => void) | undefined {
  let gc: unknown;
  try {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc');
  } catch {
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
  if (typeof gc !== 'function') return undefined;
  return () => {
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

export interface QuietReclaimOptions {
  /** Frees the C heap's free pages (the addon's malloc_trim). */
  trim: () => void;
  logger: Logger;
  /** The process's resident set in bytes; tests pass their own. */
  rss?: () => number;
  /** The event loop's busy share since the previous call, 0 to 1; tests pass their own. */
  loopBusy?: () => number;
  /** The pause itself (a compacting GC); tests pass their own. */
  collect?: () => void;
  /** A monotonic clock in ms; tests pass their own. */
  now?: () => number;
}

/** The event loop's utilization since the previous call. */
function loopBusySinceLastCall(): () => number {
  let last = performance.eventLoopUtilization();
  return () => {
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, last).utilization;
    last = now;
    return busy;
  };
}

/**
 * Gives memory back once the daemon goes quiet after growing: a compacting
 * GC, then malloc_trim. Looked at every CHECK_MS; the pause (50-110 ms here
 * with 100 containers' worth of heap) is taken only when RSS has grown by
 * GROWTH_BYTES over its last low point and the event loop was nearly idle,
 * so a burst of calls is never slowed by it, and at most once a minute.
 */
export class QuietReclaim {
  private readonly rss: () => number;
  private readonly loopBusy: () => number;
  private readonly collect: (() => void) | undefined;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private low = Number.POSITIVE_INFINITY;
  private last = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: QuietReclaimOptions) {
    this.rss = options.rss ?? (() => process.memoryUsage.rss());
    this.loopBusy = options.loopBusy ?? loopBusySinceLastCall();
    this.collect = options.collect ?? compactingGc();
    this.now = options.now ?? (() => performance.now());
  }

  start(): void {
    this.stop();
    // Start-up's garbage (module compilation, config, recovery) goes at the first quiet check.
    this.low = 0;
    this.loopBusy();
    this.timer = setInterval(() => this.check(), CHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look: reclaims when quiet, grown and not done within MIN_INTERVAL_MS; true when it did. */
  check(): boolean {
    const busy = this.loopBusy();
    const rss = this.rss();
    this.low = Math.min(this.low, rss);
    const now = this.now();
    if (busy >= QUIET_UTILIZATION || rss - this.low < GROWTH_BYTES || now - this.last < MIN_INTERVAL_MS) return false;
    this.last = now;
    const t0 = performance.now();
    this.collect?.();
    const t1 = performance.now();
    this.options.trim();
    const t2 = performance.now();
    // V8 unmaps the freed pages on a helper thread: the next low point is taken at the next look.
    this.low = Number.POSITIVE_INFINITY;
    // The pause is the reclaim's own, not the daemon's work.
    this.loopBusy();
    this.options.logger.debug('memory reclaimed after a quiet spell', {
      gc: this.collect ? 'compacting' : 'unavailable',
      rssBeforeMiB: Math.round(rss / 1048576),
      gcMs: Math.round(t1 - t0),
      trimMs: Math.round(t2 - t1),
    });
    return true;
  }
}
