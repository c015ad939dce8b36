import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { nowNs } from '../core/clock.js';
import { metrics } from '../core/metrics.js';
import { errorMessage, FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { failpoint } from '../core/failpoints.js';
import { ensureDir } from '../core/fs-util.js';
import type { Logger } from '../core/logger.js';
import { RecordStore } from '../core/record-store.js';
import type { Storage } from '../storage/storage.js';
import { chainIds } from './chain-ids.js';
import { ContentStore } from './content-store.js';
import { parseImageConfig, type ImageRecord, type ParsedImageConfig } from './image-record.js';
import { LayerDownloadError, unpackLayer } from './layer-unpacker.js';
import type { UnpackSource } from './unpack-worker.js';
import { parseManifest, selectPlatform } from './manifest.js';
import { digestName, formatReference, parseReference, taggedName, type ImageReference } from './reference.js';
import { RegistryClient, type RegistryAuth, type RegistryHosts } from './registry-client.js';
import { type PullProgress, PullProgressBoard } from './pull-progress.js';

const LAYER_DOWNLOADS = 3;
const DOWNLOAD_ATTEMPTS = 3;
const ID = /^(?:sha256:)?([0-9a-f]{64})$/;

export interface ImageServiceOptions {
  /** `<root>/images` */
  dir: string;
  hosts: () => RegistryHosts;
  /** Where layers are unpacked, and who else holds them. */
  storage: Storage;
  logger: Logger;
}

const owner = (id: string) => `image:${id}`;

/** Runs `fn` over `items` with at most `limit` at once. */
async function bounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Images: pulls from registries into the content store and storage's
 * layers, image records and their names, removal and garbage collection.
 * Each image holds its layers in storage by reference, as containers'
 * root filesystems do; an image a container was made from cannot be removed.
 */
export class ImageService {
  private readonly records = new Map<string, ImageRecord>();
  /** repo tag or repo digest → image id */
  private readonly names = new Map<string, string>();
  private readonly inflight = new Map<string, Promise<ImageRecord>>();
  private readonly progress = new PullProgressBoard();
  private readonly store: RecordStore<ImageRecord>;
  readonly content: ContentStore;
  private pulls = 0;

  constructor(private readonly opts: ImageServiceOptions) {
    ensureDir(opts.dir, 0o711);
    this.store = new RecordStore<ImageRecord>(join(opts.dir, 'records'), 'image');
    this.content = new ContentStore(opts.dir);
  }

  /**
   * Reads records (storage's layers must be loaded). Nothing is collected
   * here: root filesystems hold layers too, and are known only once the
   * containers are (see collectGarbage).
   */
  async load(): Promise<void> {
    const layers = this.opts.storage.layers;
    for (const rec of this.store.loadAll(this.opts.logger)) {
      if (rec.layers.some((c) => !layers.get(c))) {
        this.opts.logger.warn('image record refers to a missing layer; dropping it', { id: rec.id });
        this.store.remove(rec.id);
        continue;
      }
      this.index(rec);
    }
    this.opts.logger.info('images loaded', { count: this.records.size });
  }

  private index(rec: ImageRecord): void {
    this.records.set(rec.id, rec);
    this.opts.storage.refs.hold(owner(rec.id), rec.layers);
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

  /** Pulls under way, layer by layer (what `cradle pull` shows). */
  pullsUnderWay(): PullProgress[] {
    return this.progress.list();
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
    const started = performance.now();
    const fetched = { layers: 0, bytes: 0, total: 0 };
    try {
      const record = await this.download(ref, auth, fetched);
      metrics.imagePull('success', (performance.now() - started) / 1000, fetched.bytes, fetched.layers, fetched.total - fetched.layers);
      return record;
    } catch (err) {
      metrics.imagePull('failure', (performance.now() - started) / 1000, fetched.bytes, fetched.layers, 0);
      throw err;
    }
  }

  /** The pull itself; `counts` learns the layers fetched (and their compressed bytes) as they come. */
  private async download(ref: ImageReference, auth: RegistryAuth | undefined, counts: { layers: number; bytes: number; total: number }): Promise<ImageRecord> {
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
    counts.total = layers.length;
    const progress = this.progress.begin(name, layers);
    try {
      await this.content.fetch(configDesc.digest, configDesc.size, () => client.blob(configDesc.digest, fetched.endpoint));
      let parsed: ParsedImageConfig;
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
      // The pull holds its layers until the image record does, so no collection in between takes them.
      const pull = `pull:${++this.pulls}`;
      this.opts.storage.refs.hold(pull, chains);
      let record: ImageRecord;
      try {
        await bounded(
          layers.map((desc, i) => ({ desc, i, chain: chains[i] as string, diffId: parsed.diffIds[i] as string })),
          LAYER_DOWNLOADS,
          async ({ desc, i, chain, diffId }) => {
            let fetchedHere = false;
            // Streamed from the registry into the layer directory; the compressed blob is not kept.
            await this.opts.storage.layers.ensure(chain, diffId, (dest) => {
              fetchedHere = true;
              counts.layers++;
              counts.bytes += desc.size;
              return this.unpackWithRetries(
                dest,
                diffId,
                async () => {
                  progress.downloading(i);
                  return { kind: 'http', ...(await client.blobRequest(desc.digest, fetched.endpoint)), digest: desc.digest, size: desc.size };
                },
                (bytes) => progress.received(i, bytes),
              );
            });
            progress.finished(i, fetchedHere);
          },
        );
        failpoint('PullImage/layers-unpacked');
        record = this.commit(ref, configDesc.digest, top.digest, {
          size: configDesc.size + layers.reduce((n, l) => n + l.size, 0),
          layers: chains,
          os: parsed.os,
          architecture: parsed.architecture,
          config: parsed.config,
        });
      } finally {
        this.opts.storage.refs.release(pull);
      }
      this.opts.logger.info('image pulled', { image: name, id: record.id, layers: layers.length, ms: Math.round(performance.now() - started) });
      return record;
    } finally {
      progress.end();
    }
  }

  /** Unpacks into `dest`; a broken-off download is tried again with a fresh source. */
  private async unpackWithRetries(
    dest: string,
    diffId: string,
    source: () => Promise<UnpackSource>,
    onProgress?: (received: number) => void,
  ): Promise<{ bytes: number; inodes: number }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await unpackLayer({ source: await source(), dest, diffId }, onProgress);
      } catch (err) {
        if (!(err instanceof LayerDownloadError) || attempt >= DOWNLOAD_ATTEMPTS) throw err;
        this.opts.logger.warn('layer download broke off; trying again', { attempt, error: errorMessage(err) });
        await rm(dest, { recursive: true, force: true });
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
      }
    }
  }

  /** Writes the record (merging names into an existing image) and moves the tag off any other image. */
  private commit(
    ref: ImageReference,
    id: string,
    manifestDigest: string,
    content: Pick<ImageRecord, 'size' | 'layers' | 'os' | 'architecture' | 'config'>,
  ): ImageRecord {
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
   * image goes when no name is left, and its layers when nothing else
   * holds them. An image that containers were made from stays until they
   * are removed. Unknown images succeed.
   */
  async remove(text: string): Promise<void> {
    const rec = this.resolve(text);
    if (!rec) return;
    const byId = ID.test(text) || /^[0-9a-f]{6,63}$/.test(text);
    let name: string | undefined;
    if (!byId) {
      const ref = parseReference(text);
      name = ref.digest ? digestName(ref, ref.digest) : (taggedName(ref) as string);
    }
    const goes = byId || rec.repoTags.every((t) => t === name);
    // Checked before anything changes: a refused removal keeps every name.
    if (goes) this.refuseIfUsed(rec, text);
    if (!goes) {
      this.dropName(rec.id, name as string);
      return;
    }
    // A digest name of the same repository as the removed tag goes with it, as in containerd.
    for (const n of [...rec.repoTags, ...rec.repoDigests]) this.names.delete(n);
    this.records.delete(rec.id);
    this.store.remove(rec.id);
    failpoint('RemoveImage/record-removed');
    this.opts.storage.refs.release(owner(rec.id));
    this.opts.logger.info('image removed', { id: rec.id });
    await this.collectGarbage();
  }

  /** An image containers were made from cannot go (CRI-O answers the same); kubelet removes only unused images. */
  private refuseIfUsed(rec: ImageRecord, text: string): void {
    const users = this.opts.storage.rootfs.usersOf(rec.id);
    if (users.length === 0) return;
    const shown = users.slice(0, 5).join(', ') + (users.length > 5 ? ` and ${users.length - 5} more` : '');
    throw new FailedPreconditionError(`image ${JSON.stringify(text)} (${rec.id}) is in use by container(s) ${shown}: remove them first`);
  }

  /**
   * Layers nothing holds and blobs no image refers to: what a removal
   * freed, or a crashed pull left. Partial downloads are cleared only
   * while no pull runs.
   */
  async collectGarbage(): Promise<void> {
    await this.opts.storage.collectLayers();
    if (this.inflight.size > 0) return;
    await this.content.clearIngest();
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
    return this.opts.storage.layers.usage();
  }

  get dir(): string {
    return this.opts.dir;
  }
}
