import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { errorMessage } from '../core/errors.js';
import { loadNative } from '../native/index.js';
import { BlobStreamError, type BodySink, streamBlob } from './blob-stream.js';
import { LayerDecoder } from './layer-decoder.js';
import { LayerWriter, UnsafeLayerEntryError } from './layer-writer.js';
import { TarReader } from './tar-reader.js';

/**
 * Runs in a worker thread: reads one layer blob (from a file, or streamed
 * straight from the registry), decompresses it, checks its digest, size and
 * diffID, and writes it into a directory with synchronous file calls that
 * would stall the daemon's event loop if they ran on it.
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

/** Bytes per socket or file read, into one buffer: a worker unpacks one layer at a time. */
const READ_BUFFER = Buffer.allocUnsafe(1024 * 1024);
/** What gzip decodes into, reused for every chunk. */
const INFLATE_OUTPUT = Buffer.allocUnsafe(256 * 1024);

/** A blob file, read into the reused buffer. */
async function readFile(path: string, sink: BodySink): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const n = readSync(fd, READ_BUFFER, 0, READ_BUFFER.length, null);
      if (n === 0) return;
      await sink(READ_BUFFER.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}

/** The blob from its registry, checked against its descriptor as it passes. */
async function download(source: Extract<UnpackSource, { kind: 'http' }>, sink: BodySink): Promise<void> {
  const hash = createHash('sha256');
  let received = 0;
  let reported = 0;
  let reportedAt = performance.now();
  const check: BodySink = (chunk) => {
    received += chunk.length;
    if (received - reported >= PROGRESS_EVERY || performance.now() - reportedAt >= PROGRESS_EVERY_MS) {
      reported = received;
      reportedAt = performance.now();
      parentPort?.postMessage({ progress: received } satisfies UnpackProgress);
    }
    if (received > source.size) throw new Failure('corrupt', `blob ${source.digest} is larger than its descriptor says (${source.size} bytes)`);
    hash.update(chunk);
    return sink(chunk);
  };
  try {
    await streamBlob(source.url, check, { headers: source.headers, signal: AbortSignal.timeout(30 * 60_000), buffer: READ_BUFFER });
  } catch (err) {
    if (err instanceof BlobStreamError || (err instanceof Error && err.name === 'TimeoutError')) throw new Failure('network', errorMessage(err));
    throw err;
  }
  if (received !== source.size) throw new Failure('corrupt', `blob ${source.digest} is ${received} bytes, its descriptor says ${source.size}`);
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== source.digest) throw new Failure('corrupt', `blob ${source.digest} has digest ${actual}: corrupted in the registry or in transit`);
}

/**
 * Read, checked, decompressed, digested and written in one pass: for gzip
 * every step runs synchronously on a view of the read buffer, so a chunk is
 * never copied or allocated in JavaScript.
 */
async function unpack(req: UnpackRequest): Promise<UnpackReply> {
  const native = loadNative();
  const writer = new LayerWriter(req.dest, native);
  const reader = new TarReader(writer);
  const diff = createHash('sha256');
  const layer = new LayerDecoder(native, INFLATE_OUTPUT, (chunk) => {
    diff.update(chunk);
    reader.write(chunk);
  });
  try {
    const sink: BodySink = (chunk) => layer.write(chunk);
    if (req.source.kind === 'file') await readFile(req.source.path, sink);
    else await download(req.source, sink);
    await layer.end();
    reader.end();
    writer.close();
  } catch (err) {
    layer.abort();
    writer.discard();
    const kind: FailureKind = err instanceof Failure ? err.kind : err instanceof UnsafeLayerEntryError ? 'unsafe' : 'other';
    return { ok: false, error: errorMessage(err), kind };
  }
  const diffId = `sha256:${diff.digest('hex')}`;
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
