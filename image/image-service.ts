import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { nowNs } from '../core/clock.js';
import { errnoCode, errorMessage, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { ensureDir } from '../core/fs-util.js';
import type { Logger } from '../core/logger.js';
import { RecordStore } from '../core/record-store.js';
import { loadNative } from '../runtime/native/index.js';
import { ContentStore } from './content-store.js';
import { parseImageConfig, type ImageRecord } from './image-record.js';
import { chainIds, LayerStore } from './layer-store.js';
import { parseManifest, selectPlatform } from './manifest.js';
import { digestName, formatReference, parseReference, taggedName, type ImageReference } from './reference.js';
import { RegistryClient, type RegistryAuth, type RegistryHosts } from './registry-client.js';

const LAYER_DOWNLOADS = 3;
const ID = /^(?:sha256:)?([0-9a-f]{64})$/;

export interface ImageServiceOptions {
  /** `<root>/images` */
  dir: string;
  hosts: () => RegistryHosts;
  logger: Logger;
}

/** Runs `fn` over `items` with at most `limit` at once. */
async function bounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Images: pulls from registries into the content and layer stores, image
 * records and their names, removal and garbage collection, and overlay root
 * filesystems for containers.
 */
export class ImageService {
  private readonly records = new Map<string, ImageRecord>();
  /** repo tag or repo digest → image id */
  private readonly names = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<ImageRecord>>();
  private readonly store: RecordStore<ImageRecord>;
  readonly content: ContentStore;
  readonly layers: LayerStore;

  constructor(private readonly opts: ImageServiceOptions) {
    ensureDir(opts.dir, 0o711);
    this.store = new RecordStore<ImageRecord>(join(opts.dir, 'records'), 'image');
    this.content = new ContentStore(opts.dir);
    this.layers = new LayerStore(opts.dir, opts.logger);
  }

  /** Reads records and layers; `collect` removes what a crashed pull left (off for read-only tools). */
  async load(collect = true): Promise<void> {
    await this.layers.load();
    for (const rec of this.store.loadAll(this.opts.logger)) {
      if (rec.layers.some((c) => !this.layers.get(c))) {
        this.opts.logger.warn('image record refers to a missing layer; dropping it', { id: rec.id });
        this.store.remove(rec.id);
        continue;
      }
      this.index(rec);
    }
    if (collect) await this.collectGarbage();
    this.opts.logger.info('images loaded', { count: this.records.size });
  }

  private index(rec: ImageRecord): void {
    this.records.set(rec.id, rec);
    for (const n of [...rec.repoTags, ...rec.repoDigests]) this.names.set(n, rec.id);
  }

  /** An image by id (with or without `sha256:`), unique id prefix, tag or digest reference. */
  resolve(text: string): ImageRecord | undefined {
    const id = ID.exec(text);
    if (id) return this.records.get(`sha256:${id[1]}`);
    if (/^[0-9a-f]{6,63}$/.test(text)) {
      const matches = [...this.records.keys()].filter((k) => k.startsWith(`sha256:${text}`));
      if (matches.length === 1) return this.records.get(matches[0] as string);
    }
    let ref: ImageReference;
    try {
      ref = parseReference(text);
    } catch {
      return undefined;
    }
    const name = ref.digest ? digestName(ref, ref.digest) : (taggedName(ref) as string);
    const byName = this.names.get(name);
    return byName ? this.records.get(byName) : undefined;
  }

  list(): ImageRecord[] {
    return [...this.records.values()];
  }

  /** Pulls `text`; concurrent pulls of the same reference share one download. */
  async pull(text: string, auth: RegistryAuth | undefined): Promise<ImageRecord> {
    const ref = parseReference(text);
    const key = formatReference(ref);
    const running = this.inflight.get(key);
    if (running) return running;
    const pulling = this.doPull(ref, auth).finally(() => {
      this.inflight.delete(key);
      if (this.inflight.size === 0) void this.collectGarbage().catch((err: unknown) => this.opts.logger.warn('image GC failed', { error: errorMessage(err) }));
    });
    this.inflight.set(key, pulling);
    return pulling;
  }

  private async doPull(ref: ImageReference, auth: RegistryAuth | undefined): Promise<ImageRecord> {
    const name = formatReference(ref);
    const started = performance.now();
    const client = new RegistryClient(ref, this.opts.hosts(), auth);
    const top = await client.manifest(ref.digest ?? (ref.tag as string));
    let fetched = top;
    let doc = parseManifest(name, top.contentType, top.body);
    if (doc.kind === 'index') {
      const chosen = selectPlatform(name, doc.manifests);
      fetched = await client.manifest(chosen.digest, top.endpoint);
      doc = parseManifest(name, fetched.contentType, fetched.body);
      if (doc.kind !== 'manifest') throw new InvalidArgumentError(`image ${name}: an index points to another index`);
    }
    const { config: configDesc, layers } = doc;
    await this.content.fetch(configDesc.digest, configDesc.size, () => client.blob(configDesc.digest, fetched.endpoint));
    let parsed;
    try {
      parsed = parseImageConfig(name, await this.content.read(configDesc.digest));
    } catch (err) {
      throw new InvalidArgumentError(errorMessage(err));
    }
    if (parsed.diffIds.length !== layers.length) {
      throw new InvalidArgumentError(`image ${name}: the manifest has ${layers.length} layers but the config lists ${parsed.diffIds.length}`);
    }
    await this.content.put(top.digest, top.body);
    if (fetched !== top) await this.content.put(fetched.digest, fetched.body);
    const chains = chainIds(parsed.diffIds);
    await bounded(
      layers.map((desc, i) => ({ desc, chain: chains[i] as string, diffId: parsed.diffIds[i] as string })),
      LAYER_DOWNLOADS,
      async ({ desc, chain, diffId }) => {
        // Streamed from the registry into the layer directory; the compressed blob is not kept.
        await this.layers.ensure(chain, diffId, async () => ({ kind: 'http', ...(await client.blobRequest(desc.digest, fetched.endpoint)), digest: desc.digest, size: desc.size }));
      },
    );
    const record = this.commit(ref, configDesc.digest, top.digest, {
      size: configDesc.size + layers.reduce((n, l) => n + l.size, 0),
      layers: chains,
      os: parsed.os,
      architecture: parsed.architecture,
      config: parsed.config,
    });
    this.opts.logger.info('image pulled', { image: name, id: record.id, layers: layers.length, ms: Math.round(performance.now() - started) });
    return record;
  }

  /** Writes the record (merging names into an existing image) and moves the tag off any other image. */
  private commit(ref: ImageReference, id: string, manifestDigest: string, content: Pick<ImageRecord, 'size' | 'layers' | 'os' | 'architecture' | 'config'>): ImageRecord {
    const tag = taggedName(ref);
    const digestRef = digestName(ref, manifestDigest);
    if (tag) {
      const previous = this.names.get(tag);
      if (previous && previous !== id) this.dropName(previous, tag);
    }
    const existing = this.records.get(id);
    const record: ImageRecord = {
      schema: 1,
      id,
      repoTags: [...new Set([...(existing?.repoTags ?? []), ...(tag ? [tag] : [])])],
      repoDigests: [...new Set([...(existing?.repoDigests ?? []), digestRef])],
      manifestDigest,
      pinned: existing?.pinned ?? false,
      pulledAt: nowNs(),
      ...content,
    };
    this.store.write(record);
    this.index(record);
    return record;
  }

  private dropName(id: string, name: string): void {
    const rec = this.records.get(id);
    this.names.delete(name);
    if (!rec) return;
    const next = { ...rec, repoTags: rec.repoTags.filter((t) => t !== name), repoDigests: rec.repoDigests.filter((d) => d !== name) };
    this.store.write(next);
    this.records.set(id, next);
  }

  /**
   * Removes a name (tag or digest reference), or with an id every name; the
   * image goes when no name is left, and its layers when no other image
   * uses them. Unknown images succeed.
   */
  async remove(text: string): Promise<void> {
    const rec = this.resolve(text);
    if (!rec) return;
    const byId = ID.test(text) || /^[0-9a-f]{6,63}$/.test(text);
    let left = rec;
    if (!byId) {
      const ref = parseReference(text);
      const name = ref.digest ? digestName(ref, ref.digest) : (taggedName(ref) as string);
      this.dropName(rec.id, name);
      left = this.records.get(rec.id) as ImageRecord;
      // A digest name of the same repository as the removed tag goes with it, as in containerd.
      if (!ref.digest && left.repoTags.length === 0) left.repoDigests.forEach((d) => this.names.delete(d));
    }
    if (byId || left.repoTags.length === 0) {
      for (const n of [...left.repoTags, ...left.repoDigests]) this.names.delete(n);
      this.records.delete(rec.id);
      this.store.remove(rec.id);
      this.opts.logger.info('image removed', { id: rec.id });
      if (this.inflight.size === 0) await this.collectGarbage();
    }
  }

  /** Layers and blobs no image refers to: what a removal freed, or a crashed pull left. */
  async collectGarbage(): Promise<void> {
    if (this.inflight.size > 0) return;
    await this.content.clearIngest();
    const usedLayers = new Set([...this.records.values()].flatMap((r) => r.layers));
    for (const layer of this.layers.all()) if (!usedLayers.has(layer.chainId)) await this.layers.remove(layer.chainId);
    const keep = new Set([...this.records.values()].flatMap((r) => [r.id, r.manifestDigest]));
    for (const digest of await this.content.listDigests()) {
      // Layer blobs are not kept once unpacked; manifests of kept images are (small).
      if (!keep.has(digest) && !this.isManifestOfKept(digest)) await this.content.remove(digest);
    }
  }

  private isManifestOfKept(digest: string): boolean {
    for (const r of this.records.values()) if (r.repoDigests.some((d) => d.endsWith(`@${digest}`))) return true;
    return false;
  }

  /** Bytes and inodes the image store uses (unpacked layers). */
  usage(): { bytes: number; inodes: number } {
    let bytes = 0;
    let inodes = 0;
    for (const l of this.layers.all()) {
      bytes += l.bytes;
      inodes += l.inodes;
    }
    return { bytes, inodes };
  }

  get dir(): string {
    return this.opts.dir;
  }

  /**
   * Mounts the image's layers as an overlay at `<dir>/merged`, with a fresh
   * upper and work dir in `dir`. Lower dirs are given as short links
   * relative to the image store, so many layers fit in one page of mount
   * options.
   */
  async mountRootfs(imageId: string, dir: string): Promise<string> {
    const rec = this.records.get(imageId);
    if (!rec) throw new NotFoundError(`image "${imageId}" not found`);
    const merged = join(dir, 'merged');
    for (const d of ['upper', 'work', 'merged']) await mkdir(join(dir, d), { recursive: true, mode: 0o755 });
    const links = [...rec.layers].reverse().map((c) => {
      const info = this.layers.get(c);
      if (!info) throw new NotFoundError(`layer ${c} of image ${imageId} is missing`);
      return `l/${info.link}`;
    });
    if (links.length === 0) {
      await mkdir(join(dir, 'empty'), { recursive: true });
      links.push(join(dir, 'empty'));
    }
    const data = `lowerdir=${links.join(':')},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`;
    await loadNative().mountAt(this.opts.dir, 'overlay', merged, 'overlay', 0, data);
    return merged;
  }

  async unmountRootfs(dir: string): Promise<void> {
    const native = loadNative();
    try {
      await native.umount2(join(dir, 'merged'), native.constants.MNT_DETACH);
    } catch (err) {
      if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'ENOENT') throw err;
    }
    await rm(dir, { recursive: true, force: true });
  }
}
