import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, statSync } from 'node:fs';
import { readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { CradleError, errorMessage, InternalError } from '../core/errors.js';
import { ensureDir } from '../core/fs-util.js';

/** A blob whose bytes do not match its descriptor: not retried, nothing kept. */
export class DigestMismatchError extends InternalError {}

const RETRIES = 3;

/**
 * Content-addressed blobs (`blobs/sha256/<hex>`). Downloads stream into
 * `ingest/` while being hashed and counted, and move into place only when
 * size and digest match, so a torn or corrupted download is never visible.
 */
export class ContentStore {
  private readonly blobs: string;
  private readonly ingestDir: string;

  constructor(root: string) {
    this.blobs = join(root, 'blobs', 'sha256');
    this.ingestDir = join(root, 'ingest');
    ensureDir(this.blobs, 0o700);
    ensureDir(this.ingestDir, 0o700);
  }

  path(digest: string): string {
    return join(this.blobs, digest.replace(/^sha256:/, ''));
  }

  has(digest: string, size: number): boolean {
    try {
      return statSync(this.path(digest)).size === size;
    } catch {
      return false;
    }
  }

  async read(digest: string): Promise<Buffer> {
    return readFile(this.path(digest));
  }

  /** Stores `data` (already in memory, e.g. a manifest) under its digest. */
  async put(digest: string, data: Buffer): Promise<void> {
    await this.ingest(digest, data.length, async () => Readable.from([data]));
  }

  /**
   * Downloads a blob unless it is already here. `open` is called again for
   * each retry of a transient failure; a digest or size mismatch is final.
   */
  async fetch(digest: string, size: number, open: () => Promise<WebReadableStream<Uint8Array> | ReadableStream<Uint8Array> | Readable>): Promise<void> {
    if (this.has(digest, size)) return;
    if (!digest.startsWith('sha256:')) throw new InternalError(`unsupported digest algorithm in ${digest}`);
    await this.ingest(digest, size, async () => {
      const source = await open();
      return source instanceof Readable ? source : Readable.fromWeb(source as WebReadableStream<Uint8Array>);
    });
  }

  private async ingest(digest: string, size: number, open: () => Promise<Readable>): Promise<void> {
    let lastError: unknown;
    for (let attempt = 0; attempt < RETRIES; attempt++) {
      const tmp = join(this.ingestDir, `${digest.slice(7, 19)}-${randomBytes(6).toString('hex')}`);
      try {
        const hash = createHash('sha256');
        let received = 0;
        const source = await open();
        await pipeline(
          source,
          async function* (chunks: AsyncIterable<Buffer>) {
            for await (const chunk of chunks) {
              received += chunk.length;
              if (received > size) throw new DigestMismatchError(`blob ${digest} is larger than its descriptor says (${size} bytes)`);
              hash.update(chunk);
              yield chunk;
            }
          },
          createWriteStream(tmp, { mode: 0o600 }),
        );
        const actual = `sha256:${hash.digest('hex')}`;
        if (received !== size) throw new DigestMismatchError(`blob ${digest} is ${received} bytes, its descriptor says ${size}`);
        if (actual !== digest) throw new DigestMismatchError(`blob ${digest} has digest ${actual}: corrupted in the registry or in transit`);
        await rename(tmp, this.path(digest));
        return;
      } catch (err) {
        await rm(tmp, { force: true });
        lastError = err;
        // Mismatches and domain errors (auth, not found) do not get better by retrying.
        if (err instanceof CradleError) throw err;
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
    throw new InternalError(`cannot download blob ${digest} after ${RETRIES} attempts: ${errorMessage(lastError)}`);
  }

  async remove(digest: string): Promise<void> {
    await rm(this.path(digest), { force: true });
  }

  async listDigests(): Promise<string[]> {
    return (await readdir(this.blobs)).map((h) => `sha256:${h}`);
  }

  /** Partial downloads of a crashed daemon. */
  async clearIngest(): Promise<void> {
    for (const f of await readdir(this.ingestDir)) await rm(join(this.ingestDir, f), { force: true, recursive: true });
  }
}
