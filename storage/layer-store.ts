import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import { failpoint } from '../core/failpoints.js';
import { ensureDir } from '../core/fs-util.js';
import { KeyedLock } from '../core/keyed-lock.js';
import type { Logger } from '../core/logger.js';

export interface LayerInfo {
  chainId: string;
  diffId: string;
  /** Short name under `l/`, keeping overlay mount options under a page. */
  link: string;
  bytes: number;
  inodes: number;
}

/** Fills an empty directory with a layer's files; says how much it wrote. */
export type LayerFill = (diffDir: string) => Promise<{ bytes: number; inodes: number }>;

function hex(digest: string): string {
  return digest.replace(/^sha256:/, '');
}

/** Names of directories on their way in (being unpacked) or out (being deleted). */
const PARTIAL = /\.(tmp|trash)-/;

/**
 * Unpacked layers, one directory per chain id, shared by every image and
 * container built on the same layers: `layers/<chain>/diff` plus `l/<link>`
 * pointing at it. A layer appears under its final name only once fully
 * unpacked, and leaves it in one rename before its files are deleted, so
 * a crash at any point leaves either a whole layer or debris that the next
 * start removes. Which layers may go is decided by references (see
 * LayerReferences), never here.
 */
export class LayerStore {
  private readonly layersDir: string;
  readonly linkDir: string;
  private readonly locks = new KeyedLock();
  private readonly known = new Map<string, LayerInfo>();

  constructor(
    /** The directory holding `layers/` and `l/`; overlay lower dirs are given relative to it. */
    readonly root: string,
    private readonly logger: Logger,
  ) {
    this.layersDir = join(root, 'layers');
    this.linkDir = join(root, 'l');
    ensureDir(this.layersDir, 0o700);
    ensureDir(this.linkDir, 0o700);
  }

  get(chainId: string): LayerInfo | undefined {
    return this.known.get(chainId);
  }

  all(): LayerInfo[] {
    return [...this.known.values()];
  }

  /** Loads what is on disk; half-unpacked or half-deleted layers and dangling links are removed. */
  async load(): Promise<void> {
    for (const name of await readdir(this.layersDir)) {
      const dir = join(this.layersDir, name);
      if (PARTIAL.test(name)) {
        await rm(dir, { recursive: true, force: true });
        continue;
      }
      try {
        const info = JSON.parse(readFileSync(join(dir, 'layer.json'), 'utf8')) as LayerInfo;
        this.known.set(info.chainId, info);
      } catch (err) {
        this.logger.warn('removing a layer without metadata', { dir, error: errorMessage(err) });
        await rm(dir, { recursive: true, force: true });
      }
    }
    const links = new Set(this.all().map((l) => l.link));
    for (const name of await readdir(this.linkDir)) {
      if (!links.has(name)) await rm(join(this.linkDir, name), { force: true });
    }
    // A crash between a layer's rename and its link leaves the link to make.
    for (const l of this.all()) this.link(l);
  }

  /**
   * The layer `chainId`, filled by `fill` unless it exists; safe to call
   * concurrently (one fill per chain id at a time).
   */
  async ensure(chainId: string, diffId: string, fill: LayerFill): Promise<LayerInfo> {
    const existing = this.known.get(chainId);
    if (existing) return existing;
    return this.locks.run(chainId, async () => {
      const again = this.known.get(chainId);
      if (again) return again;
      const tmp = join(this.layersDir, `${hex(chainId)}.tmp-${randomBytes(4).toString('hex')}`);
      try {
        mkdirSync(join(tmp, 'diff'), { recursive: true, mode: 0o755 });
        const { bytes, inodes } = await fill(join(tmp, 'diff'));
        const info: LayerInfo = { chainId, diffId, link: randomBytes(13).toString('base64url').replace(/[-_]/g, 'x').slice(0, 16), bytes, inodes };
        writeFileSync(join(tmp, 'layer.json'), JSON.stringify(info));
        await rename(tmp, join(this.layersDir, hex(chainId)));
        failpoint('PullImage/layer-renamed');
        this.link(info);
        this.known.set(chainId, info);
        return info;
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
    });
  }

  private link(info: LayerInfo): void {
    const link = join(this.linkDir, info.link);
    if (!existsSync(link)) symlinkSync(join('..', 'layers', hex(info.chainId), 'diff'), link);
  }

  /**
   * Deletes a layer if `unused()` still says so once no fill of it runs:
   * out of sight in one rename, then its link and files. Returns whether it went.
   */
  async remove(chainId: string, unused: () => boolean = () => true): Promise<boolean> {
    return this.locks.run(chainId, async () => {
      // Checked and forgotten in one turn: a pull taking the layer now unpacks it again.
      if (!unused()) return false;
      const info = this.known.get(chainId);
      this.known.delete(chainId);
      const dir = join(this.layersDir, hex(chainId));
      const trash = `${dir}.trash-${randomBytes(4).toString('hex')}`;
      await rename(dir, trash).catch(() => undefined);
      failpoint('RemoveImage/layer-trashed');
      if (info) await rm(join(this.linkDir, info.link), { force: true });
      await rm(trash, { recursive: true, force: true });
      return true;
    });
  }

  /** Bytes and inodes all layers use. */
  usage(): { bytes: number; inodes: number } {
    let bytes = 0;
    let inodes = 0;
    for (const l of this.known.values()) {
      bytes += l.bytes;
      inodes += l.inodes;
    }
    return { bytes, inodes };
  }
}
