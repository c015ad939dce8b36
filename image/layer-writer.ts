import {
  chmodSync,
  closeSync,
  fchmodSync,
  linkSync,
  lchownSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { join, posix } from 'node:path';
import type { NativeAddon } from '../native/index.js';
import type { TarHeader, TarSink } from './tar-reader.js';

export class UnsafeLayerEntryError extends Error {}

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';

/**
 * Writes tar entries into one layer directory in the form overlayfs reads:
 * `.wh.NAME` becomes a 0:0 character device NAME, `.wh..wh..opq` becomes the
 * `trusted.overlay.opaque` xattr on its directory. Ownership, modes
 * (setuid/setgid included), xattrs, hard links, symlinks, device nodes and
 * mtimes are kept. An entry that would land outside the layer, or be written
 * through a symlink, is refused.
 */
export class LayerWriter implements TarSink {
  bytes = 0;
  inodes = 0;
  private fd = -1;
  private current: { path: string; header: TarHeader } | undefined;
  private readonly dirTimes: Array<{ path: string; mtime: number }> = [];

  constructor(
    private readonly root: string,
    private readonly native: NativeAddon,
  ) {}

  /** `a/./b/../c` → `a/c`; refuses anything that climbs out of the layer. */
  private relative(name: string): string {
    const clean = posix.normalize(name.replace(/^\/+/, ''));
    if (clean === '..' || clean.startsWith('../')) throw new UnsafeLayerEntryError(`layer entry ${JSON.stringify(name)} would land outside the layer`);
    return clean === '.' || clean === './' ? '' : clean.replace(/\/$/, '');
  }

  /** Creates missing parents; refuses a parent that is a symlink or not a directory. */
  private parentOf(rel: string, name: string): string {
    const parts = rel.split('/').slice(0, -1);
    let dir = this.root;
    for (const part of parts) {
      dir = join(dir, part);
      let st: Stats | undefined;
      try {
        st = lstatSync(dir);
      } catch {
        mkdirSync(dir, { mode: 0o755 });
        this.inodes++;
        continue;
      }
      if (st.isSymbolicLink()) throw new UnsafeLayerEntryError(`layer entry ${JSON.stringify(name)} passes through the symlink ${JSON.stringify(part)}`);
      if (!st.isDirectory()) throw new UnsafeLayerEntryError(`layer entry ${JSON.stringify(name)} is below ${JSON.stringify(part)}, which is not a directory`);
    }
    return dir;
  }

  /** An entry replaces what an earlier one in the same layer put there (directories merge). */
  private clear(path: string, keepDir: boolean): void {
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch {
      return;
    }
    if (keepDir && st.isDirectory()) return;
    if (st.isDirectory()) rmSync(path, { recursive: true, force: true });
    else unlinkSync(path);
  }

  entry(header: TarHeader): void {
    const rel = this.relative(header.name);
    if (rel === '') {
      // The layer root itself: keep its mode for the merged view.
      chmodSync(this.root, header.mode);
      return;
    }
    const base = posix.basename(rel);
    // AUFS metadata (.wh..wh.plnk/..., .wh..wh.aufs) has no meaning for overlayfs.
    if (base !== OPAQUE_MARKER && rel.split('/').some((c) => c.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`))) return;
    const parent = this.parentOf(rel, header.name);
    if (base === OPAQUE_MARKER) {
      this.native.lsetxattr(parent, 'trusted.overlay.opaque', Buffer.from('y'));
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const target = join(parent, base.slice(WHITEOUT_PREFIX.length));
      this.clear(target, false);
      this.native.mknod(target, this.native.constants.S_IFCHR | 0o000, 0, 0);
      this.inodes++;
      return;
    }
    const path = join(parent, base);
    this.clear(path, header.type === 'dir');
    switch (header.type) {
      case 'dir':
        try {
          mkdirSync(path, { mode: 0o700 });
          this.inodes++;
        } catch {
          // merged with an existing directory
        }
        this.dirTimes.push({ path, mtime: header.mtime });
        break;
      case 'file':
        this.fd = openSync(path, 'wx', 0o600);
        this.inodes++;
        break;
      case 'symlink':
        symlinkSync(header.linkname, path);
        this.inodes++;
        break;
      case 'link': {
        const targetRel = this.relative(header.linkname);
        const target = join(this.parentOf(targetRel, header.linkname), posix.basename(targetRel));
        linkSync(target, path);
        return; // a hard link shares the target's attributes
      }
      case 'char':
      case 'block':
      case 'fifo': {
        const kind =
          header.type === 'char' ? this.native.constants.S_IFCHR : header.type === 'block' ? this.native.constants.S_IFBLK : this.native.constants.S_IFIFO;
        this.native.mknod(path, kind | header.mode, header.devmajor, header.devminor);
        this.inodes++;
        break;
      }
    }
    this.current = { path, header };
    if (header.type !== 'file') this.finish();
  }

  data(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) off += writeSync(this.fd, chunk, off);
    this.bytes += chunk.length;
  }

  entryEnd(): void {
    if (this.current?.header.type === 'file') this.finish();
  }

  private finish(): void {
    const cur = this.current;
    this.current = undefined;
    if (!cur) return;
    const { path, header } = cur;
    if (this.fd >= 0) {
      // chown first: it clears setuid/setgid, which chmod then sets.
      lchownSync(path, header.uid, header.gid);
      fchmodSync(this.fd, header.mode);
      closeSync(this.fd);
      this.fd = -1;
    } else {
      lchownSync(path, header.uid, header.gid);
      if (header.type !== 'symlink') chmodSync(path, header.mode);
    }
    for (const [name, value] of header.xattrs) this.native.lsetxattr(path, name, value);
    if (header.type !== 'dir') lutimesSync(path, header.mtime, header.mtime);
  }

  /** A layer given up half way: the file being written is closed (the worker that holds it outlives the layer). */
  discard(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Directory mtimes last: writing into a directory changes its mtime. */
  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    for (const { path, mtime } of this.dirTimes.reverse()) lutimesSync(path, mtime, mtime);
  }
}
