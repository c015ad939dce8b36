import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { chown, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, errorMessage, NotFoundError } from '../core/errors.js';
import { ensureDir } from '../core/fs-util.js';
import type { Logger } from '../core/logger.js';
import { RecordStore, type VersionedRecord } from '../core/record-store.js';
import { loadNative } from '../native/index.js';
import { idmappedBind, unmountAllUnder } from './mounts.js';
import { diskUsage, type DiskUsage } from './disk-usage.js';
import { Semaphore } from '../core/semaphore.js';
import type { LayerReferences } from './layer-references.js';
import type { LayerStore } from './layer-store.js';
import { step } from '../core/tracing.js';

/** A container's root filesystem: which image it was made from and the layers it holds. */
export interface RootfsRecord extends VersionedRecord {
  schema: 1;
  imageId: string;
  /** Chain ids, lowest first. */
  layers: string[];
  /** Set for a container in a user namespace: its layers are idmapped. */
  idmap?: RootfsIdmap;
}

/** A writable layer's size is walked at most this often per container. */
const USAGE_TTL_MS = 10_000;
/**
 * Walks at once: kubelet's stats poll finds every container's cached size
 * stale together, and hundreds of walks queued at once would hold the
 * thread pool that the poll's own reads (and every record write) need.
 */
const walkSlots = new Semaphore(2);

const owner = (id: string) => `container:${id}`;

/**
 * Containers' root filesystems: `<dir>/<id>/{upper,work,merged}`, an
 * overlay of the image's layers under a writable layer. Each has a record,
 * written before anything is made, that holds the image's layers, so no
 * layer a container uses (created, running or exited, until it is removed)
 * can be collected, across restarts and reboots. Removal unmounts, moves
 * the directory out of sight in one rename, drops the record and deletes
 * the files in the background; start-up finishes what a crash interrupted.
 */
export class RootfsStore {
  private readonly records = new Map<string, RootfsRecord>();
  private readonly store: RecordStore<RootfsRecord>;
  private readonly usageCache = new Map<string, { at: number; usage: DiskUsage }>();
  private readonly walks = new Map<string, Promise<DiskUsage>>();
  private readonly deletions = new Set<Promise<void>>();

  constructor(
    /** `<root>/containers`: also what ImageFsInfo reports as the containers' filesystem. */
    readonly dir: string,
    recordsDir: string,
    private readonly layers: LayerStore,
    private readonly refs: LayerReferences,
    private readonly logger: Logger,
  ) {
    ensureDir(dir, 0o711);
    this.store = new RecordStore<RootfsRecord>(recordsDir, 'root filesystem');
  }

  /** Records (each holding its layers again); what an interrupted removal left is deleted. */
  async load(): Promise<void> {
    for (const rec of this.store.loadAll(this.logger)) this.index(rec);
    for (const name of await readdir(this.dir)) {
      if (!name.includes('.trash-')) continue;
      await unmountAllUnder(join(this.dir, name));
      await rm(join(this.dir, name), { recursive: true, force: true });
    }
  }

  private index(rec: RootfsRecord): void {
    this.records.set(rec.id, rec);
    this.refs.hold(owner(rec.id), rec.layers);
  }

  has(id: string): boolean {
    return this.records.has(id);
  }

  /** Containers whose root filesystem was made from `imageId`. */
  usersOf(imageId: string): string[] {
    return [...this.records.values()].filter((r) => r.imageId === imageId).map((r) => r.id);
  }

  /**
   * Takes the reference at once (synchronously: an image resolved in the
   * same turn cannot be collected in between), then makes the writable
   * layer and mounts the overlay. Returns the root filesystem's path.
   * `seed` fills the writable layer before the overlay is mounted (a
   * restored container's files, whiteouts included).
   */
  create(id: string, imageId: string, layers: readonly string[], idmap?: RootfsIdmap, seed?: (upper: string) => Promise<void>): Promise<string> {
    for (const c of layers) if (!this.layers.get(c)) return Promise.reject(new NotFoundError(`layer ${c} of image ${imageId} is missing`));
    const rec: RootfsRecord = { schema: 1, id, imageId, layers: [...layers], ...(idmap ? { idmap } : {}) };
    this.store.write(rec);
    this.index(rec);
    return step('rootfs mounted', () => this.mount(rec, seed));
  }

  /**
   * A container created before root filesystems had records (an upgrade):
   * it holds its image's layers from now on.
   */
  adopt(id: string, imageId: string, layers: readonly string[]): void {
    if (this.records.has(id)) return;
    const rec: RootfsRecord = { schema: 1, id, imageId, layers: [...layers] };
    this.store.write(rec);
    this.index(rec);
  }

  private mount(rec: RootfsRecord, seed?: (upper: string) => Promise<void>): Promise<string> {
    return mountLayers(this.layers, rec.layers, join(this.dir, rec.id), rec.idmap, seed);
  }

  /** Unmounts and deletes a root filesystem and drops its reference. Unknown ids succeed. */
  remove(id: string): Promise<void> {
    return step('rootfs removed', () => this.removeNow(id));
  }

  private async removeNow(id: string): Promise<void> {
    const dir = join(this.dir, id);
    // The overlay and any idmapped layer under it: the delete below must never reach a layer's files.
    await unmountAllUnder(dir);
    const trash = join(this.dir, `${id}.trash-${randomBytes(4).toString('hex')}`);
    let moved = true;
    await rename(dir, trash).catch((err: unknown) => {
      moved = false;
      if (errnoCode(err) !== 'ENOENT') throw err;
    });
    this.store.remove(id);
    this.records.delete(id);
    this.refs.release(owner(id));
    this.usageCache.delete(id);
    if (!moved) return;
    const deletion = rm(trash, { recursive: true, force: true })
      .catch((err: unknown) => this.logger.warn('cannot delete a removed root filesystem; the next start will', { dir: trash, error: errorMessage(err) }))
      .finally(() => this.deletions.delete(deletion));
    this.deletions.add(deletion);
  }

  /** Root filesystems of containers that have no record any more (a crash between the two), removed. */
  async prune(liveIds: ReadonlySet<string>): Promise<void> {
    const names = new Set([...(await readdir(this.dir)).filter((n) => !n.includes('.trash-')), ...this.records.keys()]);
    for (const id of names) {
      if (liveIds.has(id)) continue;
      this.logger.info('removing a root filesystem no container owns', { id });
      await this.remove(id).catch((err: unknown) => this.logger.warn('cannot remove an orphaned root filesystem', { id, error: errorMessage(err) }));
    }
  }

  /** Waits for background deletions (for shutdown and tests). */
  async settle(): Promise<void> {
    await Promise.all([...this.deletions]);
  }

  /**
   * The writable layer's size. Only a container's first sample waits for a
   * walk; later ones get the last figure at once while a stale one is
   * refreshed in the background, so stats calls do not scan disks.
   */
  async usage(id: string): Promise<DiskUsage> {
    const cached = this.usageCache.get(id);
    if (!cached) return this.walk(id);
    if (Date.now() - cached.at >= USAGE_TTL_MS && !this.walks.has(id)) void this.walk(id).catch(() => undefined);
    return cached.usage;
  }

  /** All writable layers together, from the same cached walks. */
  async totalUsage(): Promise<DiskUsage> {
    let bytes = 0;
    let inodes = 0;
    for (const id of this.records.keys()) {
      const u = await this.usage(id);
      bytes += u.bytes;
      inodes += u.inodes;
    }
    return { bytes, inodes };
  }

  private walk(id: string): Promise<DiskUsage> {
    const running = this.walks.get(id);
    if (running) return running;
    const walk = walkSlots
      .acquire()
      .then((release) => diskUsage(join(this.dir, id, 'upper')).finally(release))
      .then((usage) => {
        // A root filesystem removed during the walk keeps no cache entry.
        if (this.records.has(id)) this.usageCache.set(id, { at: Date.now(), usage });
        return usage;
      })
      .finally(() => this.walks.delete(id));
    this.walks.set(id, walk);
    return walk;
  }
}

/**
 * Mounts `layers` (chain ids, lowest first) as an overlay at `<dir>/merged`
 * with a fresh writable layer in `<dir>/upper`. Lower dirs are given as
 * short links relative to the layer store, so many layers fit in one page
 * of mount options.
 */
/** A root filesystem seen through a user namespace: its layers idmapped, its writable layer owned by the namespace's root. */
export interface RootfsIdmap {
  /** The pod's user namespace (a pin). */
  userns: string;
  /** The host uid and gid the namespace's root maps to. */
  rootUid: number;
  rootGid: number;
}

/**
 * Mounts `layers` (chain ids, lowest first) as an overlay at `<dir>/merged`
 * with a fresh writable layer in `<dir>/upper`. Lower dirs are given as
 * short paths relative to a working directory, so many layers fit in one
 * page of mount options. With `idmap`, each layer is first mounted
 * idmapped at `<dir>/lower/<n>` (so the image's root files are the
 * namespace's root's), and the writable layer belongs to the namespace's root.
 */
export async function mountLayers(
  store: LayerStore,
  layers: readonly string[],
  dir: string,
  idmap?: RootfsIdmap,
  seed?: (upper: string) => Promise<void>,
): Promise<string> {
  const merged = join(dir, 'merged');
  // Synchronous: three directory entries cost less than a wait in the thread pool behind other containers' removals.
  for (const d of ['upper', 'work', 'merged']) mkdirSync(join(dir, d), { recursive: true, mode: 0o755 });
  await seed?.(join(dir, 'upper'));
  const infos = [...layers].reverse().map((c) => {
    const info = store.get(c);
    if (!info) throw new NotFoundError(`layer ${c} is missing`);
    return info;
  });
  let cwd = store.root;
  let lower = infos.map((info) => `l/${info.link}`);
  if (idmap) {
    cwd = dir;
    lower = [];
    for (const [n, info] of infos.entries()) {
      const target = join(dir, 'lower', String(n));
      await mkdir(target, { recursive: true });
      await idmappedBind(join(store.root, 'layers', info.chainId.replace(/^sha256:/, ''), 'diff'), target, idmap.userns, false);
      lower.push(`lower/${n}`);
    }
    for (const d of ['upper', 'work']) await chown(join(dir, d), idmap.rootUid, idmap.rootGid);
  }
  if (lower.length === 0) {
    await mkdir(join(dir, 'empty'), { recursive: true });
    lower.push(join(dir, 'empty'));
  }
  const data = `lowerdir=${lower.join(':')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`;
  await step('overlay mount', () => loadNative().mountAt(cwd, 'overlay', merged, 'overlay', 0, data));
  return merged;
}
