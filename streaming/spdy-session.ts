import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from './spdy-dictionary.js';
import {
  decodeHeaderBlock,
  encodeHeaderBlock,
  FLAG_FIN,
  FrameReader,
  frames,
  FrameType,
  parseSynStream,
  RstStatus,
  SETTINGS_INITIAL_WINDOW_SIZE,
  dataFrame,
  type Frame,
} from './spdy-frames.js';

/**
 * Header blocks larger than this once inflated end the session: kubectl's
 * are a few hundred bytes, and a block that inflates a thousandfold (a
 * zlib bomb) must not be held in memory.
 */
export const MAX_HEADER_BLOCK = 64 * 1024;

/**
 * One zlib context for a direction of a session: SPDY compresses all
 * header blocks of a session as one zlib stream, flushed after each block.
 * Output beyond `limit` bytes per block destroys the context, and every
 * later block fails too (the shared stream cannot be resumed).
 */
class HeaderCodec {
  private queue: Promise<unknown> = Promise.resolve();
  private broken: Error | undefined;

  constructor(
    private readonly z: zlib.Inflate | zlib.Deflate,
    private readonly limit = Number.POSITIVE_INFINITY,
  ) {
    z.on('error', () => undefined);
  }

  run(input: Buffer): Promise<Buffer> {
    const next = this.queue.then(
      () =>
        new Promise<Buffer>((resolve, reject) => {
          if (this.broken) {
            reject(this.broken);
            return;
          }
          const out: Buffer[] = [];
          let size = 0;
          const detach = () => {
            this.z.off('data', onData);
            this.z.off('error', onError);
          };
          const onData = (d: Buffer) => {
            size += d.length;
            if (size <= this.limit) {
              out.push(d);
              return;
            }
            this.broken = new Error(`a SPDY header block inflates to more than ${this.limit} bytes`);
            detach();
            this.z.destroy();
            reject(this.broken);
          };
          const onError = (err: Error) => {
            detach();
            reject(err);
          };
          this.z.on('data', onData);
          this.z.once('error', onError);
          this.z.write(input);
          this.z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
            detach();
            if (!this.broken) resolve(Buffer.concat(out));
          });
        }),
    );
    this.queue = next.catch(() => undefined);
    return next;
  }

  close(): void {
    this.z.close();
  }
}

/** Streams a client may have open in one session (exec uses five, port-forward two per connection). */
const MAX_STREAMS = 1000;

/** Data bytes received before a WINDOW_UPDATE gives them back (half the 64 KiB default window). */
const WINDOW_REFILL = 32 * 1024;
/** Data frames written are cut at this size. */
const MAX_DATA_FRAME = 32 * 1024;

/**
 * A stream the client opened, as a Node duplex: reading gives its DATA
 * frames (buffered until someone reads, so nothing arriving before a
 * consumer is ready is lost), writing sends DATA frames back on it, and
 * ending sends FIN (SPDY streams carry data both ways).
 */
export class SpdyStream extends Duplex {
  /** The client finished sending (FIN or reset). */
  remoteEnded = false;
  /** We finished sending. */
  localEnded = false;
  private unacked = 0;

  constructor(
    readonly id: number,
    readonly headers: ReadonlyMap<string, string[]>,
    private readonly session: SpdySession,
  ) {
    super({ allowHalfOpen: true });
    this.on('error', () => undefined);
  }

  header(name: string): string | undefined {
    return this.headers.get(name.toLowerCase())?.[0];
  }

  /** The consumer wants more: what it has read goes back to the client's window. */
  override _read(): void {
    this.refill();
  }

  private refill(): void {
    if (this.unacked >= WINDOW_REFILL && !this.remoteEnded) {
      this.session.send(frames.windowUpdate(this.id, this.unacked));
      this.unacked = 0;
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.localEnded && !this.session.closed) {
      for (let off = 0; off < chunk.length; off += MAX_DATA_FRAME) this.session.send(dataFrame(this.id, 0, chunk.subarray(off, off + MAX_DATA_FRAME)));
    }
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.localEnded) {
      this.localEnded = true;
      if (!this.session.closed) this.session.send(dataFrame(this.id, FLAG_FIN, Buffer.alloc(0)));
      this.session.forgetIfDone(this);
    }
    callback();
  }

  /** Aborts the stream both ways. */
  reset(status: number = RstStatus.CANCEL): void {
    if (!this.localEnded && !this.session.closed) this.session.send(frames.rstStream(this.id, status));
    this.localEnded = true;
    this.onRemoteEnd();
    this.destroy();
  }

  /** @internal */
  onData(payload: Buffer, fin: boolean): void {
    if (payload.length > 0 && !this.remoteEnded) {
      this.unacked += payload.length;
      // A consumer that keeps up gets the window back at once; a slow one
      // holds it until it reads (_read), which stops a client that respects
      // windows from piling data up here.
      if (this.push(payload)) this.refill();
    }
    if (fin) this.onRemoteEnd();
  }

  /** @internal */
  onRemoteEnd(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    this.push(null);
    this.session.forgetIfDone(this);
  }
}

export interface SpdySessionEvents {
  stream: [SpdyStream];
  close: [];
}

/**
 * The server end of a SPDY/3.1 session over an upgraded HTTP connection.
 * Clients open all streams (exec's stdin/stdout/..., port-forward's
 * data/error pairs); each gets a SYN_REPLY at once, since client libraries
 * wait for it. Flow control is honoured towards the client (windows are
 * refilled as data arrives); the peers' own windows are large and never
 * block what the daemon sends.
 */
export class SpdySession extends EventEmitter<SpdySessionEvents> {
  private readonly reader = new FrameReader();
  private readonly inflate = new HeaderCodec(zlib.createInflate({ dictionary: SPDY3_DICTIONARY }), MAX_HEADER_BLOCK);
  private readonly deflate = new HeaderCodec(zlib.createDeflate({ dictionary: SPDY3_DICTIONARY }));
  private readonly streams = new Map<number, SpdyStream>();
  private queue: Promise<void> = Promise.resolve();
  private lastStreamId = 0;
  private sessionUnacked = 0;
  closed = false;
  private tornDown = false;

  constructor(private readonly socket: Duplex) {
    super();
    socket.on('data', (chunk: Buffer) => {
      let parsed: Frame[];
      try {
        parsed = this.reader.push(chunk);
      } catch {
        this.close(1);
        return;
      }
      for (const f of parsed) this.queue = this.queue.then(() => this.handle(f)).catch(() => this.close(1));
    });
    // The peer finished sending (kubectl killed, a proxy closing its side): the session is over.
    socket.on('end', () => this.close());
    socket.on('close', () => this.teardown());
    socket.on('error', () => this.teardown());
    this.send(frames.settings([[SETTINGS_INITIAL_WINDOW_SIZE, 16 * 1024 * 1024]]));
  }

  /** @internal */
  send(frame: Buffer): void {
    if (!this.closed) this.socket.write(frame);
  }

  private async handle(frame: Frame): Promise<void> {
    if (this.closed) return;
    if (frame.kind === 'data') {
      this.sessionUnacked += frame.payload.length;
      if (this.sessionUnacked >= WINDOW_REFILL) {
        this.send(frames.windowUpdate(0, this.sessionUnacked));
        this.sessionUnacked = 0;
      }
      const stream = this.streams.get(frame.streamId);
      if (!stream) {
        this.send(frames.rstStream(frame.streamId, RstStatus.INVALID_STREAM));
        return;
      }
      stream.onData(frame.payload, (frame.flags & FLAG_FIN) !== 0);
      return;
    }
    switch (frame.type) {
      case FrameType.SYN_STREAM: {
        const syn = parseSynStream(frame.payload);
        const headers = decodeHeaderBlock(await this.inflate.run(syn.headerBlock));
        if (syn.streamId <= this.lastStreamId || syn.streamId % 2 === 0 || this.streams.size >= MAX_STREAMS) {
          this.send(frames.rstStream(syn.streamId, RstStatus.PROTOCOL_ERROR));
          return;
        }
        this.lastStreamId = syn.streamId;
        const stream = new SpdyStream(syn.streamId, headers, this);
        this.streams.set(stream.id, stream);
        this.send(frames.synReply(stream.id, await this.deflate.run(encodeHeaderBlock({}))));
        this.emit('stream', stream);
        if (frame.flags & FLAG_FIN) stream.onRemoteEnd();
        return;
      }
      case FrameType.RST_STREAM: {
        const stream = this.streams.get(frame.payload.readUInt32BE(0) & 0x7fffffff);
        if (stream) {
          stream.localEnded = true;
          stream.onRemoteEnd();
          stream.destroy();
        }
        return;
      }
      case FrameType.PING:
        // Pings the client starts have odd ids and are echoed.
        if (frame.payload.readUInt32BE(0) % 2 === 1) this.send(frames.ping(frame.payload.readUInt32BE(0)));
        return;
      case FrameType.GOAWAY:
        this.close();
        return;
      case FrameType.HEADERS:
        // Header blocks still advance the shared zlib context.
        await this.inflate.run(frame.payload.subarray(4));
        return;
      default:
        // SETTINGS and WINDOW_UPDATE: nothing the daemon's sending depends on.
        return;
    }
  }

  /** @internal */
  forgetIfDone(stream: SpdyStream): void {
    if (stream.localEnded && stream.remoteEnded) this.streams.delete(stream.id);
  }

  /** Says goodbye and closes the connection once what is queued is written. */
  close(status = 0): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end(frames.goAway(this.lastStreamId, status));
    this.endStreams();
    // A peer that never closes its side must not keep the socket.
    setTimeout(() => this.teardown(), 5000).unref();
  }

  private endStreams(): void {
    for (const s of [...this.streams.values()]) {
      s.localEnded = true;
      s.onRemoteEnd();
      s.destroy();
    }
    this.streams.clear();
  }

  private teardown(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    this.closed = true;
    this.endStreams();
    this.inflate.close();
    this.deflate.close();
    if (!this.socket.destroyed) this.socket.destroy();
    this.emit('close');
  }
}
