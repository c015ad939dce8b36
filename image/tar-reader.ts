/**
 * A push parser for tar streams (ustar, PAX, GNU long names): chunks go in
 * through write(), entries come out through the sink, synchronously, so the
 * unpack worker can write files as data arrives without buffering layers.
 */

export type TarEntryType = 'file' | 'link' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  name: string;
  type: TarEntryType;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** From PAX SCHILY.xattr.* records: name → raw value. */
  xattrs: Map<string, Buffer>;
}

export interface TarSink {
  entry(header: TarHeader): void;
  data(chunk: Buffer): void;
  entryEnd(): void;
}

export class TarFormatError extends Error {}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

function cstring(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + len ? start + len : end);
}

function numeric(buf: Buffer, start: number, len: number): number {
  if ((buf[start] as number) & 0x80) {
    // base-256: big-endian, first byte's top bit is the marker.
    let value = (buf[start] as number) & 0x7f;
    for (let i = start + 1; i < start + len; i++) value = value * 256 + (buf[i] as number);
    return value;
  }
  const text = cstring(buf, start, len).trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumOk(h: Buffer): boolean {
  let unsigned = 0;
  for (let i = 0; i < 512; i++) unsigned += i >= 148 && i < 156 ? 32 : (h[i] as number);
  return unsigned === numeric(h, 148, 8);
}

function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space === -1) break;
    const len = parseInt(data.toString('ascii', pos, space), 10);
    if (!Number.isFinite(len) || len <= 0 || pos + len > data.length) throw new TarFormatError('malformed PAX record');
    const record = data.subarray(space + 1, pos + len - 1);
    const eq = record.indexOf(0x3d);
    if (eq > 0) out.set(record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

type State = 'header' | 'data' | 'meta' | 'end';

export class TarReader {
  private state: State = 'header';
  private pending: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private padding = 0;
  private metaKind = '';
  private metaChunks: Buffer[] = [];
  private pax = new Map<string, Buffer>();
  private longName: string | undefined;
  private longLink: string | undefined;
  private zeroBlocks = 0;

  constructor(private readonly sink: TarSink) {}

  write(chunk: Buffer): void {
    let buf = this.pending.length > 0 ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = Buffer.alloc(0);
    while (buf.length > 0 && this.state !== 'end') {
      if (this.state === 'header') {
        if (buf.length < 512) break;
        this.header(buf.subarray(0, 512));
        buf = buf.subarray(512);
      } else {
        const take = Math.min(this.remaining, buf.length);
        if (take > 0) {
          const part = buf.subarray(0, take);
          if (this.state === 'data') this.sink.data(part);
          else this.metaChunks.push(Buffer.from(part));
          this.remaining -= take;
          buf = buf.subarray(take);
        }
        if (this.remaining > 0) break;
        const pad = Math.min(this.padding, buf.length);
        this.padding -= pad;
        buf = buf.subarray(pad);
        if (this.padding > 0) break;
        this.finishBody();
      }
    }
    if (buf.length > 0 && this.state !== 'end') this.pending = Buffer.from(buf);
  }

  /** Call once the stream has ended: a truncated archive is an error. */
  end(): void {
    if (this.state === 'data' || this.state === 'meta' || this.pending.length > 0) throw new TarFormatError('tar stream ended in the middle of an entry');
  }

  private header(h: Buffer): void {
    if (h.every((b) => b === 0)) {
      if (++this.zeroBlocks >= 2) this.state = 'end';
      return;
    }
    this.zeroBlocks = 0;
    if (!checksumOk(h)) throw new TarFormatError('tar header checksum mismatch (not a tar stream, or corrupt)');
    const flag = String.fromCharCode(h[156] as number);
    let size = numeric(h, 124, 12);
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      this.beginBody(size, 'meta');
      this.metaKind = flag;
      return;
    }
    const type = TYPES[flag];
    const magic = h.toString('ascii', 257, 262);
    let name = cstring(h, 0, 100);
    if (magic === 'ustar') {
      const prefix = cstring(h, 345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const pax = this.pax;
    this.pax = new Map();
    const paxText = (k: string) => pax.get(k)?.toString('utf8');
    name = paxText('path') ?? this.longName ?? name;
    const linkname = paxText('linkpath') ?? this.longLink ?? cstring(h, 157, 100);
    this.longName = undefined;
    this.longLink = undefined;
    if (paxText('size') !== undefined) size = Number(paxText('size'));
    if (type === undefined) {
      // Unknown entry types (sparse files, volume labels) are skipped with their data.
      this.beginBody(size, 'meta');
      this.metaKind = 'skip';
      return;
    }
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of pax) if (k.startsWith('SCHILY.xattr.')) xattrs.set(k.slice('SCHILY.xattr.'.length), v);
    const header: TarHeader = {
      name,
      type,
      mode: numeric(h, 100, 8) & 0o7777,
      uid: paxText('uid') !== undefined ? Number(paxText('uid')) : numeric(h, 108, 8),
      gid: paxText('gid') !== undefined ? Number(paxText('gid')) : numeric(h, 116, 8),
      size: type === 'file' ? size : 0,
      mtime: paxText('mtime') !== undefined ? Math.floor(Number(paxText('mtime'))) : numeric(h, 136, 12),
      linkname,
      devmajor: numeric(h, 329, 8),
      devminor: numeric(h, 337, 8),
      xattrs,
    };
    this.sink.entry(header);
    if (header.type === 'file' && size > 0) this.beginBody(size, 'data');
    else if (size > 0 && type !== 'file') {
      this.beginBody(size, 'meta');
      this.metaKind = 'skip';
      this.sink.entryEnd();
    } else this.sink.entryEnd();
  }

  private beginBody(size: number, state: State): void {
    this.remaining = size;
    this.padding = (512 - (size % 512)) % 512;
    this.state = state;
    this.metaChunks = [];
  }

  private finishBody(): void {
    if (this.state === 'data') {
      this.sink.entryEnd();
    } else {
      const data = Buffer.concat(this.metaChunks);
      if (this.metaKind === 'x') this.pax = parsePax(data);
      else if (this.metaKind === 'L') this.longName = cstring(data, 0, data.length);
      else if (this.metaKind === 'K') this.longLink = cstring(data, 0, data.length);
    }
    this.metaChunks = [];
    this.state = 'header';
  }
}
