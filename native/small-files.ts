import { loadNative } from './index.js';

/** libuv's thread pool has four threads unless UV_THREADPOOL_SIZE says otherwise. */
const POOL_THREADS = Math.max(1, Number(process.env.UV_THREADPOOL_SIZE) || 4);
/** Below this many files a second trip costs more than it saves. */
const MIN_SLICE = 64;

/**
 * Reads small kernel files (cgroup counters, /proc) whole; undefined where
 * one cannot be read. A node's stats read thousands at once, at 30-80 µs of
 * kernel time each (cgroup v1's memory.stat and cpuacct.usage sum over
 * CPUs and descendants): they go in a few slices side by side on the thread
 * pool, one trip each, where readFile would take four or five trips per file.
 */
export async function readSmallFiles(paths: readonly string[]): Promise<(string | undefined)[]> {
  const native = loadNative();
  const per = Math.max(MIN_SLICE, Math.ceil(paths.length / POOL_THREADS));
  const slices: Promise<(string | undefined)[]>[] = [];
  for (let i = 0; i < paths.length; i += per) slices.push(native.readFiles(paths.slice(i, i + per)));
  return (await Promise.all(slices)).flat();
}
