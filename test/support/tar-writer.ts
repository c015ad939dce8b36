/**
 * A minimal ustar writer for test images: regular files, directories,
 * symlinks, hard links and device nodes, with any name, including ones a
 * real tool would refuse (`../escape`), which is what malformed-layer tests
 * need.
 */
export interface TarEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';
  content?: Buffer | string;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  mtime?: number;
  /** PAX extended header records (e.g. SCHILY.xattr.security.capability). */
  pax?: Record<string, string | Buffer>;
}

const TYPEFLAG = { file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' } as const;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(name: string, entry: TarEntry, size: number, typeflag: string): Buffer {
  const h = Buffer.alloc(512);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new Error(`tar name too long for ustar: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  h.write(base, 0, 100);
  h.write(octal(entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644), 8), 100);
  h.write(octal(entry.uid ?? 0, 8), 108);
  h.write(octal(entry.gid ?? 0, 8), 116);
  h.write(octal(size, 12), 124);
  h.write(octal(entry.mtime ?? 1_700_000_000, 12), 136);
  h.write('        ', 148);
  h.write(typeflag, 156);
  h.write(entry.linkname ?? '', 157, 100);
  h.write('ustar\0', 257);
  h.write('00', 263);
  h.write(octal(entry.devmajor ?? 0, 8), 329);
  h.write(octal(entry.devminor ?? 0, 8), 337);
  h.write(prefix, 345, 155);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${octal(sum, 7)} `, 148);
  return h;
}

function padded(data: Buffer): Buffer[] {
  const rest = data.length % 512;
  return rest === 0 ? [data] : [data, Buffer.alloc(512 - rest)];
}

function paxRecords(records: Record<string, string | Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(records)) {
    const body = Buffer.concat([Buffer.from(` ${key}=`), Buffer.isBuffer(value) ? value : Buffer.from(value), Buffer.from('\n')]);
    // The length prefix counts itself.
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    parts.push(Buffer.concat([Buffer.from(String(len)), body]));
  }
  return Buffer.concat(parts);
}

export function tarArchive(entries: readonly TarEntry[]): Buffer {
  const out: Buffer[] = [];
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const data = type === 'file' ? Buffer.from(entry.content ?? '') : Buffer.alloc(0);
    if (entry.pax && Object.keys(entry.pax).length > 0) {
      const pax = paxRecords(entry.pax);
      out.push(header(`PaxHeaders/${entry.name.slice(0, 80)}`, { name: 'PaxHeaders', mode: 0o644 }, pax.length, 'x'), ...padded(pax));
    }
    out.push(header(entry.name, entry, data.length, TYPEFLAG[type]), ...padded(data));
  }
  out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}
