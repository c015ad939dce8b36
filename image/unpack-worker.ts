import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { parentPort, workerData } from 'node:worker_threads';
import { createGunzip } from 'node:zlib';
import { errorMessage } from '../core/errors.js';
import { loadNative } from '../native/index.js';
import { LayerWriter, UnsafeLayerEntryError } from './layer-writer.js';
import { TarReader } from './tar-reader.js';

/**
 * Runs in a worker thread: reads one layer blob (from a file, or streamed
 * straight from the registry), decompresses it, checks its digest, size and
 * diffID, and writes it into a directory with synchronous file calls that
 * would stall the daemon's event loop if they ran on it. Download,
 * decompression and writing overlap.
 */
export type UnpackSource = { kind: 'file'; path: string } | { kind: 'http'; url: string; headers: Record<string, string>; digest: string; size: number };

export interface UnpackRequest {
  source: UnpackSource;
  dest: string;
  diffId: string;
}

export type FailureKind = 'unsafe' | 'corrupt' | 'network' | 'other';
export type UnpackReply = { ok: true; bytes: number; inodes: number } | { ok: false; error: string; kind: FailureKind };
/** Sent while a registry download runs: the compressed bytes received so far. */
export interface UnpackProgress {
  progress: number;
}

/** How often progress is reported: every this many bytes. */
const PROGRESS_EVERY = 256 * 1024;

class Failure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

/** The compressed bytes, checked against the descriptor as they pass when they come from a registry. */
async function* compressed(source: UnpackSource): AsyncGenerator<Buffer> {
  if (source.kind === 'file') {
    yield* createReadStream(source.path) as AsyncIterable<Buffer>;
    return;
  }
  let res: Response;
  try {
    res = await fetch(source.url, { headers: source.headers, redirect: 'follow', signal: AbortSignal.timeout(30 * 60_000) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new Failure('network', `${source.url}: ${cause?.code ?? errorMessage(err)}`);
  }
  if (!res.ok || !res.body) throw new Failure('network', `${source.url}: HTTP ${res.status}`);
  const hash = createHash('sha256');
  let received = 0;
  let reported = 0;
  try {
    for await (const chunk of Readable.fromWeb(res.body as WebReadableStream<Uint8Array>) as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received - reported >= PROGRESS_EVERY) {
        reported = received;
        parentPort?.postMessage({ progress: received } satisfies UnpackProgress);
      }
      if (received > source.size) throw new Failure('corrupt', `blob ${source.digest} is larger than its descriptor says (${source.size} bytes)`);
      hash.update(chunk);
      yield chunk;
    }
  } catch (err) {
    if (err instanceof Failure) throw err;
    throw new Failure('network', `${source.url}: ${errorMessage(err)}`);
  }
  if (received !== source.size) throw new Failure('corrupt', `blob ${source.digest} is ${received} bytes, its descriptor says ${source.size}`);
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== source.digest) throw new Failure('corrupt', `blob ${source.digest} has digest ${actual}: corrupted in the registry or in transit`);
}

/** Decompresses by magic bytes (media types lie: some tools label zstd as gzip). */
async function* decompressed(input: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  const first = await input.next();
  if (first.done) return;
  const head = first.value;
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    yield* input;
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    yield* Readable.from(all()).pipe(createGunzip()) as AsyncIterable<Buffer>;
  } else if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) {
    // Node 20 has no zstd; Debian's zstd tool streams it.
    const child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const feeding = (async () => {
      for await (const chunk of all()) if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
      child.stdin.end();
    })();
    feeding.catch(() => child.kill('SIGKILL'));
    const exit = new Promise<number | null>((r) => child.on('close', r));
    yield* child.stdout as AsyncIterable<Buffer>;
    await feeding;
    const code = await exit;
    if (code !== 0) throw new Failure('other', `zstd: ${stderr.trim() || `exit code ${String(code)}`}`);
  } else {
    yield* all();
  }
}

async function unpack(req: UnpackRequest): Promise<UnpackReply> {
  const writer = new LayerWriter(req.dest, loadNative());
  const reader = new TarReader(writer);
  const hash = createHash('sha256');
  try {
    for await (const chunk of decompressed(compressed(req.source))) {
      hash.update(chunk);
      reader.write(chunk);
    }
    reader.end();
    writer.close();
  } catch (err) {
    const kind: FailureKind = err instanceof Failure ? err.kind : err instanceof UnsafeLayerEntryError ? 'unsafe' : 'other';
    return { ok: false, error: errorMessage(err), kind };
  }
  const diffId = `sha256:${hash.digest('hex')}`;
  if (diffId !== req.diffId) return { ok: false, error: `layer content is ${diffId}, but the image config says ${req.diffId}`, kind: 'corrupt' };
  return { ok: true, bytes: writer.bytes, inodes: writer.inodes };
}

if (parentPort) {
  const port = parentPort;
  void unpack(workerData as UnpackRequest).then((reply) => port.postMessage(reply));
}
