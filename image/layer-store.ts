import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, symlinkSync, existsSync } from 'node:fs';
import { readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import { ensureDir } from '../core/fs-util.js';
import { KeyedLock } from '../core/keyed-lock.js';
import type { Logger } from '../core/logger.js';
import { LayerDownloadError, unpackLayer } from './layer-unpacker.js';
import type { UnpackSource } from './unpack-worker.js';

const DOWNLOAD_ATTEMPTS = 3;

export interface LayerInfo {
  chainId: string;
  diffId: string;
  /** Short name under `l/`, keeping overlay mount options under a page. */
  link: string;
  bytes: number;
  inodes: number;
}

/** chainID(L0) = diffID(L0); chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln)). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? diffId : `sha256:${createHash('sha256').update(`${prev} ${diffId}`).digest('hex')}`);
  }
  return out;
}

function hex(digest: string): string {
  return digest.replace(/^sha256:/, '');
}

/**
 * Unpacked layers, one directory per chain id, shared by every image built
 * on the same layers: `layers/<chain>/diff` plus `l/<link>` pointing at it.
 * A layer appears under its final name only once fully unpacked.
 */
export class LayerStore {
  private readonly layersDir: string;
  readonly linkDir: string;
  private readonly locks = new KeyedLock();
  private readonly known = new Map<string, LayerInfo>();

  constructor(
    root: string,
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

  /** Loads what is on disk; half-unpacked layers of a crashed daemon are removed. */
  async load(): Promise<void> {
    for (const name of await readdir(this.layersDir)) {
      const dir = join(this.layersDir, name);
      if (name.includes('.tmp-')) {
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
  }

  /**
   * Unpacks the layer `chainId` from `source` unless it exists; safe to call
   * concurrently. A broken-off download is tried again with a fresh source.
   */
  async ensure(chainId: string, diffId: string, source: () => Promise<UnpackSource>): Promise<LayerInfo> {
    const existing = this.known.get(chainId);
    if (existing) return existing;
    return this.locks.run(chainId, async () => {
      const again = this.known.get(chainId);
      if (again) return again;
      const tmp = join(this.layersDir, `${hex(chainId)}.tmp-${randomBytes(4).toString('hex')}`);
      try {
        const { bytes, inodes } = await this.unpackWithRetries(tmp, diffId, source);
        const info: LayerInfo = { chainId, diffId, link: randomBytes(13).toString('base64url').replace(/[-_]/g, 'x').slice(0, 16), bytes, inodes };
        writeFileSync(join(tmp, 'layer.json'), JSON.stringify(info));
        await rename(tmp, join(this.layersDir, hex(chainId)));
        const link = join(this.linkDir, info.link);
        if (!existsSync(link)) symlinkSync(join('..', 'layers', hex(chainId), 'diff'), link);
        this.known.set(chainId, info);
        return info;
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
    });
  }

  private async unpackWithRetries(tmp: string, diffId: string, source: () => Promise<UnpackSource>): Promise<{ bytes: number; inodes: number }> {
    for (let attempt = 1; ; attempt++) {
      await rm(tmp, { recursive: true, force: true });
      mkdirSync(join(tmp, 'diff'), { recursive: true, mode: 0o755 });
      try {
        return await unpackLayer({ source: await source(), dest: join(tmp, 'diff'), diffId });
      } catch (err) {
        if (!(err instanceof LayerDownloadError) || attempt >= DOWNLOAD_ATTEMPTS) throw err;
        this.logger.warn('layer download broke off; trying again', { attempt, error: errorMessage(err) });
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  }

  async remove(chainId: string): Promise<void> {
    const info = this.known.get(chainId);
    this.known.delete(chainId);
    if (info) await rm(join(this.linkDir, info.link), { force: true });
    await rm(join(this.layersDir, hex(chainId)), { recursive: true, force: true });
  }

  all(): LayerInfo[] {
    return [...this.known.values()];
  }
}
