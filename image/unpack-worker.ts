import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { Readable } from 'node:stream';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
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

/**
 * How often progress is reported: every this many bytes, or this long
 * after the last report on a slow link. Each report is a message to the
 * event loop: one per 256 KiB cost 3% of a fast pull.
 */
const PROGRESS_EVERY = 4 * 1024 * 1024;
const PROGRESS_EVERY_MS = 250;

class Failure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
  ) {
    super(message);
  }
}

/**
 * GET with node's http client, following redirects (a registry sends blobs
 * to its storage): the bytes arrive as Buffers, without the conversions
 * from fetch's web streams, which cost a third of a pull's time here.
 * Credentials go only to the origin they were given for.
 */
async function get(url: string, headers: Record<string, string>, signal: AbortSignal, redirects = 5): Promise<IncomingMessage> {
  const target = new URL(url);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const request = (target.protocol === 'https:' ? httpsGet : httpGet)(target, { headers, signal }, resolve);
    request.on('error', reject);
  });
  const location = res.headers.location;
  if (res.statusCode !== undefined && [301, 302, 303, 307, 308].includes(res.statusCode) && location !== undefined && redirects > 0) {
    res.resume();
    const next = new URL(location, target);
    const { authorization: _, ...anonymous } = headers;
    return get(next.href, next.origin === target.origin ? headers : anonymous, signal, redirects - 1);
  }
  return res;
}

/** The compressed bytes, checked against the descriptor as they pass when they come from a registry. */
async function* compressed(source: UnpackSource): AsyncGenerator<Buffer> {
  if (source.kind === 'file') {
    yield* createReadStream(source.path) as AsyncIterable<Buffer>;
    return;
  }
  let res: IncomingMessage;
  try {
    res = await get(source.url, source.headers, AbortSignal.timeout(30 * 60_000));
  } catch (err) {
    throw new Failure('network', `${source.url}: ${(err as { code?: string }).code ?? errorMessage(err)}`);
  }
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 299) {
    res.resume();
    throw new Failure('network', `${source.url}: HTTP ${status}`);
  }
  const hash = createHash('sha256');
  let received = 0;
  let reported = 0;
  let reportedAt = performance.now();
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received - reported >= PROGRESS_EVERY || performance.now() - reportedAt >= PROGRESS_EVERY_MS) {
        reported = received;
        reportedAt = performance.now();
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

/** Bytes per write into zlib: each write is a trip to the thread pool, and sockets deliver 16-64 KiB at a time. */
const INFLATE_INPUT = 1024 * 1024;
/** zlib's output chunk: 16 KiB by default, which made inflating cost 4 times what it does with this. */
const INFLATE_OUTPUT = 256 * 1024;

/** Joins small chunks into ones of at least `size` bytes. */
async function* coalesced(input: AsyncIterable<Buffer>, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let length = 0;
  for await (const chunk of input) {
    parts.push(chunk);
    length += chunk.length;
    if (length >= size) {
      yield parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, length);
      parts = [];
      length = 0;
    }
  }
  if (length > 0) yield Buffer.concat(parts, length);
}

/** Decompresses by magic bytes (media types lie: some tools label zstd as gzip). */
async function* decompressed(source: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  const input = coalesced(source, INFLATE_INPUT);
  const first = await input.next();
  if (first.done) return;
  const head = first.value;
  async function* all(): AsyncGenerator<Buffer> {
    yield head;
    yield* input;
  }
  if (head[0] === 0x1f && head[1] === 0x8b) {
    yield* Readable.from(all()).pipe(createGunzip({ chunkSize: INFLATE_OUTPUT })) as AsyncIterable<Buffer>;
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

// One layer at a time: the pool (layer-unpacker.ts) sends the next once this one's reply is out.
if (parentPort) {
  const port = parentPort;
  // Nice is per thread on Linux: this thread gives way to the event loop, so CRI calls stay quick while a pull runs.
  try {
    setPriority(10);
  } catch {
    // Without CAP_SYS_NICE a thread may still lower its own priority; if not, it runs at the daemon's.
  }
  port.on('message', (req: UnpackRequest) => void unpack(req).then((reply) => port.postMessage(reply)));
}
