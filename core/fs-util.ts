import { existsSync, type FSWatcher, mkdirSync, watch } from 'node:fs';
import { dirname } from 'node:path';
import { within } from './timers.js';

/** Creates a directory and its parents; an existing one is fine. */
export function ensureDir(path: string, mode = 0o755): void {
  mkdirSync(path, { recursive: true, mode });
}

/**
 * Resolves true once `path` exists, false if it does not within `ms`: its
 * directory is watched (no polling), and the path checked again on each
 * event.
 */
export async function waitForFile(path: string, ms: number): Promise<boolean> {
  if (existsSync(path)) return true;
  let watcher: FSWatcher | undefined;
  const appeared = new Promise<void>((resolve) => {
    try {
      watcher = watch(dirname(path), { persistent: false }, () => {
        if (existsSync(path)) resolve();
      });
    } catch {
      // the directory itself is gone: the file cannot appear
    }
    // Made between the first check and the watch.
    if (existsSync(path)) resolve();
  });
  try {
    return await within(appeared, ms);
  } finally {
    watcher?.close();
  }
}

/** Linux's NAME_MAX and PATH_MAX, in bytes. */
const NAME_MAX = 255;
const PATH_MAX = 4096;

/** Why the kernel would refuse `path` for its length (ENAMETOOLONG), or undefined. */
export function pathLengthProblem(path: string): string | undefined {
  const bytes = Buffer.byteLength(path);
  if (bytes >= PATH_MAX) return `is ${bytes} bytes long; a path takes at most ${PATH_MAX - 1}`;
  const long = path.split('/').find((part) => Buffer.byteLength(part) > NAME_MAX);
  if (long !== undefined) return `has a ${Buffer.byteLength(long)}-byte name in it; a file name takes at most ${NAME_MAX} bytes`;
  return undefined;
}
