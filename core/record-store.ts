import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, errorMessage } from './errors.js';
import { ensureDir } from './fs-util.js';
import type { Logger } from './logger.js';
import { stepSync } from './tracing.js';

/** Marks records written with escaped keys (below); older records have no marker. */
const ENCODING_KEY = '$encoding';
const ENCODING = 2;

/**
 * Records are JSON with one addition: a bigint (nanosecond timestamps) is
 * written as `{"$bigint": "<decimal>"}`. So that no data can pass for that
 * tag, every key that starts with "$" gets one more "$" in front: a CRI
 * client may send a label or annotation key like "$bigint", and it must
 * come back as the same map after a restart.
 */
function encode(value: unknown): unknown {
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (Array.isArray(value)) return value.map(encode);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k.startsWith('$') ? `$${k}` : k] = encode(v);
    return out;
  }
  return value;
}

function decode(value: unknown, escaped: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => decode(v, escaped));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value);
  const [first] = entries;
  if (entries.length === 1 && first?.[0] === '$bigint' && typeof first[1] === 'string' && /^-?\d+$/.test(first[1])) return BigInt(first[1]);
  const out: Record<string, unknown> = {};
  // Records from before escaping: no user key was changed, so none is changed back.
  for (const [k, v] of entries) out[escaped && k.startsWith('$') ? k.slice(1) : k] = decode(v, escaped);
  return out;
}

/** A record as written to disk. */
export function encodeRecord(record: object): string {
  return JSON.stringify({ [ENCODING_KEY]: ENCODING, ...(encode(record) as object) });
}

/** A record read from disk, by either encoding. */
export function decodeRecord<T>(text: string): T {
  const raw = JSON.parse(text) as Record<string, unknown>;
  const escaped = raw[ENCODING_KEY] === ENCODING;
  delete raw[ENCODING_KEY];
  return decode(raw, escaped) as T;
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
    stepSync(`${this.kind} record written`, () => this.writeNow(record));
  }

  private writeNow(record: T): void {
    const path = join(this.dir, `${record.id}.json`);
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, encodeRecord(record));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    this.syncDir();
  }

  /** One record, or undefined when there is none. */
  read(id: string): T | undefined {
    try {
      return decodeRecord<T>(readFileSync(join(this.dir, `${id}.json`), 'utf8'));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  remove(id: string): void {
    stepSync(`${this.kind} record removed`, () => {
      rmSync(join(this.dir, `${id}.json`), { force: true });
      this.syncDir();
    });
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
        out.push(decodeRecord<T>(readFileSync(path, 'utf8')));
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
