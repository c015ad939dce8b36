import { mkdirSync } from 'node:fs';

/** Creates a directory and its parents; an existing one is fine. */
export function ensureDir(path: string, mode = 0o755): void {
  mkdirSync(path, { recursive: true, mode });
}
