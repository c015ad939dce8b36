/**
 * SPDY/3.1 framing (the transport kubelet, kubectl and the API server use
 * for exec, attach and port-forward). Every frame has an 8-byte header:
 * control frames carry a version and type, data frames a stream id; both
 * end with 8 bits of flags and a 24-bit length.
 */

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;

/** RST_STREAM status codes used here. */
export const RstStatus = { PROTOCOL_ERROR: 1, INVALID_STREAM: 2, REFUSED_STREAM: 3, CANCEL: 5, INTERNAL_ERROR: 6 } as const;

export const SETTINGS_INITIAL_WINDOW_SIZE = 7;

export type Frame = { kind: 'control'; type: number; flags: number; payload: Buffer } | { kind: 'data'; streamId: number; flags: number; payload: Buffer };

const MAX_PAYLOAD = 0xffffff;

/** Splits a byte stream into frames, however the bytes arrive. */
export class FrameReader {
  private buffered: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const frames: Frame[] = [];
    while (this.buffered.length >= 8) {
      const length = this.buffered.readUIntBE(5, 3);
      if (this.buffered.length < 8 + length) break;
      const head = this.buffered.readUInt32BE(0);
      const flags = this.buffered[4] as number;
      const payload = this.buffered.subarray(8, 8 + length);
      this.buffered = this.buffered.subarray(8 + length);
      if (head & 0x80000000) {
        const version = (head >>> 16) & 0x7fff;
        if (version !== SPDY_VERSION) throw new Error(`SPDY version ${version} is not supported (3 is)`);
        frames.push({ kind: 'control', type: head & 0xffff, flags, payload });
      } else {
        frames.push({ kind: 'data', streamId: head & 0x7fffffff, flags, payload });
      }
    }
    return frames;
  }
}

function header(first: number, flags: number, length: number): Buffer {
  if (length > MAX_PAYLOAD) throw new Error(`SPDY frame of ${length} bytes is too large`);
  const b = Buffer.alloc(8);
  b.writeUInt32BE(first >>> 0, 0);
  b[4] = flags;
  b.writeUIntBE(length, 5, 3);
  return b;
}

export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  return Buffer.concat([header((0x80000000 | (SPDY_VERSION << 16) | type) >>> 0, flags, payload.length), payload]);
}

export function dataFrame(streamId: number, flags: number, payload: Buffer): Buffer {
  return Buffer.concat([header(streamId & 0x7fffffff, flags, payload.length), payload]);
}

function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  for (const [i, v] of values.entries()) b.writeUInt32BE(v >>> 0, i * 4);
  return b;
}

export const frames = {
  synReply: (streamId: number, headerBlock: Buffer, fin = false) =>
    controlFrame(FrameType.SYN_REPLY, fin ? FLAG_FIN : 0, Buffer.concat([u32(streamId & 0x7fffffff), headerBlock])),
  rstStream: (streamId: number, status: number) => controlFrame(FrameType.RST_STREAM, 0, u32(streamId & 0x7fffffff, status)),
  ping: (id: number) => controlFrame(FrameType.PING, 0, u32(id)),
  goAway: (lastStreamId: number, status = 0) => controlFrame(FrameType.GOAWAY, 0, u32(lastStreamId & 0x7fffffff, status)),
  windowUpdate: (streamId: number, delta: number) => controlFrame(FrameType.WINDOW_UPDATE, 0, u32(streamId & 0x7fffffff, delta & 0x7fffffff)),
  settings: (entries: ReadonlyArray<readonly [number, number]>) =>
    controlFrame(FrameType.SETTINGS, 0, Buffer.concat([u32(entries.length), ...entries.map(([id, value]) => u32(id & 0xffffff, value))])),
};

/** A SYN_STREAM's fixed part; the rest of the payload is the compressed header block. */
export function parseSynStream(payload: Buffer): { streamId: number; associatedId: number; headerBlock: Buffer } {
  if (payload.length < 10) throw new Error('SYN_STREAM frame is too short');
  return { streamId: payload.readUInt32BE(0) & 0x7fffffff, associatedId: payload.readUInt32BE(4) & 0x7fffffff, headerBlock: payload.subarray(10) };
}

/** The uncompressed header block: a count, then length-prefixed names and values (several values joined by NUL). */
export function encodeHeaderBlock(headers: Readonly<Record<string, string | readonly string[]>>): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [u32(entries.length)];
  for (const [name, value] of entries) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(typeof value === 'string' ? value : value.join('\0'), 'utf8');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

export function decodeHeaderBlock(block: Buffer): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let off = 0;
  const take = (n: number): Buffer => {
    if (off + n > block.length) throw new Error('SPDY header block is truncated');
    const b = block.subarray(off, off + n);
    off += n;
    return b;
  };
  const count = take(4).readUInt32BE(0);
  for (let i = 0; i < count; i++) {
    const name = take(take(4).readUInt32BE(0)).toString('utf8').toLowerCase();
    const value = take(take(4).readUInt32BE(0)).toString('utf8');
    out.set(name, [...(out.get(name) ?? []), ...value.split('\0')]);
  }
  return out;
}
