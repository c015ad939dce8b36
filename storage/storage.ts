import { join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { LayerReferences } from './layer-references.js';
import { LayerStore } from './layer-store.js';
import { RootfsStore } from './rootfs-store.js';

export interface StorageOptions {
  /** Persistent root (`root` in the config). */
  root: string;
  logger: Logger;
}

/**
 * What containers stand on: unpacked layers, who holds them, and the
 * containers' root filesystems. Images and root filesystems hold layers by
 * reference; a layer is deleted only when nothing holds it.
 */
export class Storage {
  readonly layers: LayerStore;
  readonly refs = new LayerReferences();
  readonly rootfs: RootfsStore;

  constructor(private readonly opts: StorageOptions) {
    // Paths kept from before storage had a folder of its own, so existing nodes need no migration.
    this.layers = new LayerStore(join(opts.root, 'images'), opts.logger);
    this.rootfs = new RootfsStore(join(opts.root, 'containers'), join(opts.root, 'rootfs-records'), this.layers, this.refs, opts.logger);
  }

  async load(): Promise<void> {
    await this.layers.load();
    await this.rootfs.load();
  }

  /** Deletes every layer nothing holds; returns how many went. */
  async collectLayers(): Promise<number> {
    let removed = 0;
    for (const layer of this.layers.all()) {
      if (this.refs.isHeld(layer.chainId)) continue;
      try {
        if (await this.layers.remove(layer.chainId, () => !this.refs.isHeld(layer.chainId))) removed++;
      } catch (err) {
        this.opts.logger.warn('cannot delete an unused layer', { layer: layer.chainId, error: errorMessage(err) });
      }
    }
    return removed;
  }
}
