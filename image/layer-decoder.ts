import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import type { GzipDecoder, NativeAddon } from '../native/index.js';

/** Where a layer's tar bytes go, in order; a chunk is valid during the call only. */
export type TarBytes = (chunk: Buffer) => void;

/** The layer's compression is broken (truncated, corrupt, or its decompressor failed). */
export class LayerCompressionError extends Error {}

/**
 * Turns a layer blob's bytes, as they arrive, into its tar stream. The
 * compression is told by magic bytes, not the media type (some tools label
 * zstd as gzip). Gzip, nearly every layer, is decoded on the calling
 * thread into one reused buffer: the unpack worker is a thread of its own,
 * and per-chunk allocations and thread-pool trips were most of a pull's
 * cost (docs/BENCHMARKS.md).
 */
export class LayerDecoder {
  private head: Buffer | undefined = Buffer.alloc(0);
  private codec: Codec | undefined;

  /** `output`: the buffer gzip decodes into, reused for every chunk. */
  constructor(
    private readonly native: NativeAddon,
    private readonly output: Buffer,
    private readonly tar: TarBytes,
  ) {}

  /** The next bytes of the blob; a promise when the decoder needs the caller to wait. */
  write(chunk: Buffer): void | Promise<void> {
    if (this.codec) return this.codec.write(chunk);
    // Four bytes tell zstd; a blob may arrive a byte at a time.
    this.head = Buffer.concat([this.head ?? Buffer.alloc(0), chunk]);
    if (this.head.length < 4) return;
    return this.start(this.head);
  }

  /** Once the whole blob was written: the decoder's last output, and its verdict. */
  async end(): Promise<void> {
    if (!this.codec) {
      const head = this.head ?? Buffer.alloc(0);
      if (head.length === 0) return;
      await this.start(head);
    }
    await this.codec?.end();
  }

  /** Stops a decoder left unfinished (a failed download): ends its process, if it has one. */
  abort(): void {
    this.codec?.abort();
  }

  private start(head: Buffer): void | Promise<void> {
    this.head = undefined;
    if (head[0] === 0x1f && head[1] === 0x8b) this.codec = new GzipCodec(new this.native.Gunzip(), this.output, this.tar);
    else if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) this.codec = new ZstdCodec(this.tar);
    else this.codec = { write: (chunk) => this.tar(chunk), end: async () => undefined, abort: () => undefined };
    return this.codec.write(head);
  }
}

interface Codec {
  write(chunk: Buffer): void | Promise<void>;
  end(): Promise<void>;
  abort(): void;
}

class GzipCodec implements Codec {
  private ended = false;

  constructor(
    private readonly decoder: GzipDecoder,
    private readonly output: Buffer,
    private readonly tar: TarBytes,
  ) {}

  write(chunk: Buffer): void {
    let offset = 0;
    for (;;) {
      let step: ReturnType<GzipDecoder['inflate']>;
      try {
        step = this.decoder.inflate(offset === 0 ? chunk : chunk.subarray(offset), this.output);
      } catch (err) {
        this.decoder.close();
        throw new LayerCompressionError((err as Error).message);
      }
      offset += step.read;
      this.ended = step.end;
      if (step.written > 0) this.tar(this.output.subarray(0, step.written));
      // Done with this chunk once its input is used up and the output did not fill (nothing more is waiting in zlib).
      if (offset >= chunk.length && step.written < this.output.length) return;
      if (step.read === 0 && step.written === 0) throw new LayerCompressionError('gzip: the decoder made no progress');
    }
  }

  async end(): Promise<void> {
    this.decoder.close();
    if (!this.ended) throw new LayerCompressionError('gzip: the stream is truncated');
  }

  abort(): void {
    this.decoder.close();
  }
}

/** Node 20 has no zstd; Debian's zstd tool streams it. Its output comes back on the event loop, so writes wait for the pipe. */
class ZstdCodec implements Codec {
  private readonly child: ChildProcessWithoutNullStreams;
  /** Once zstd has exited and its output has all been read. */
  private readonly closed: Promise<number | null>;
  private stderr = '';
  private failure: Error | undefined;

  constructor(tar: TarBytes) {
    this.child = spawn('zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.child.stdin.on('error', () => undefined); // zstd quitting early is told by its exit code
    this.child.stdout.on('data', (d: Buffer) => {
      if (this.failure) return;
      try {
        tar(d);
      } catch (err) {
        // The tar stream was refused: stop decoding, and say so at the next write or at the end.
        this.failure = err as Error;
        this.child.kill('SIGKILL');
      }
    });
    this.closed = new Promise((resolve) => {
      this.child.on('close', resolve);
      this.child.on('error', (err) => {
        this.failure ??= new LayerCompressionError(`zstd: ${err.message}`);
        resolve(null);
      });
    });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    // The pipe keeps the bytes until zstd reads them; the caller's view does not live that long.
    if (!this.child.stdin.write(Buffer.from(chunk))) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.child.stdin.off('drain', done);
          resolve();
        };
        this.child.stdin.once('drain', done);
        void this.closed.then(done);
      });
    }
    if (this.failure) throw this.failure;
  }

  async end(): Promise<void> {
    this.child.stdin.end();
    const code = await this.closed;
    if (this.failure) throw this.failure;
    if (code !== 0) throw new LayerCompressionError(`zstd: ${this.stderr.trim() || `exit code ${String(code)}`}`);
  }

  abort(): void {
    this.child.kill('SIGKILL');
  }
}
