/**
 * Node's timers hold a signed 32-bit millisecond count: anything longer
 * (about 24.8 days) silently fires after 1 ms. Every duration that becomes
 * a timer goes through here first, so "wait 30 days" waits as long as a
 * timer can rather than not at all.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** `ms` as a timer can hold it: finite, at least 0, at most MAX_TIMER_MS. */
export function timerMs(ms: number): number {
  if (Number.isNaN(ms) || ms <= 0) return 0;
  return Math.min(ms, MAX_TIMER_MS);
}

/** CRI's seconds (int64, from the wire) as timer milliseconds; 0 stays 0. */
export function secondsToTimerMs(seconds: number | bigint): number {
  const s = typeof seconds === 'bigint' ? (seconds > BigInt(MAX_TIMER_MS) ? MAX_TIMER_MS : Number(seconds)) : seconds;
  return timerMs(s * 1000);
}

/** Resolves true if `p` settles within `ms`, false otherwise; the timer never outlives the wait. */
export async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timerMs(ms));
  });
  try {
    return await Promise.race([p.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
