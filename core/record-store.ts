import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, errorMessage } from './errors.js';
import { ensureDir } from './fs-util.js';
import type { Logger } from './logger.js';

/**
 * bigint is written as `{"$bigint": "<decimal>"}` so records keep nanosecond
 * timestamps exactly; '$' cannot start a Kubernetes label or annotation key,
 * so no user map is mistaken for one.
 */
function replacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? { $bigint: value.toString() } : value;
}

function reviver(_key: string, value: unknown): unknown {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const keys = Object.keys(value);
    const tagged = (value as { $bigint?: unknown }).$bigint;
    if (keys.length === 1 && typeof tagged === 'string' && /^-?\d+$/.test(tagged)) return BigInt(tagged);
  }
  return value;
}

export interface VersionedRecord {
  /** Lets a newer daemon read records an older one wrote. */
  schema: number;
  id: string;
}

/**
 * One JSON file per object, written atomically (temp file, fsync, rename,
 * fsync of the directory): a crash leaves either the old or the new record,
 * never half of one.
 */
export class RecordStore<T extends VersionedRecord> {
  constructor(
    private readonly dir: string,
    private readonly kind: string,
  ) {
    ensureDir(dir, 0o700);
  }

  write(record: T): void {
    const path = join(this.dir, `${record.id}.json`);
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(record, replacer));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    this.syncDir();
  }

  remove(id: string): void {
    rmSync(join(this.dir, `${id}.json`), { force: true });
    this.syncDir();
  }

  /** Every record; temp files of interrupted writes are removed, unreadable records logged and skipped. */
  loadAll(logger: Logger): T[] {
    const out: T[] = [];
    for (const name of readdirSync(this.dir)) {
      const path = join(this.dir, name);
      if (name.endsWith('.tmp')) {
        rmSync(path, { force: true });
        continue;
      }
      if (!name.endsWith('.json')) continue;
      try {
        out.push(JSON.parse(readFileSync(path, 'utf8'), reviver) as T);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue;
        logger.error(`unreadable ${this.kind} record skipped`, { path, error: errorMessage(err) });
      }
    }
    return out;
  }

  private syncDir(): void {
    const fd = openSync(this.dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
