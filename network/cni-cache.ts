import { RecordStore } from '../core/record-store.js';
import type { Logger } from '../core/logger.js';
import type { CniNetworkConfig } from './cni-config.js';

/**
 * What an ADD used, kept so that DEL can undo exactly that attachment after
 * a daemon restart, and after the network config changed or was deleted.
 */
export interface CniCacheEntry {
  schema: 1;
  /** `<containerId>-<ifName>` */
  id: string;
  containerId: string;
  ifName: string;
  network: CniNetworkConfig;
  args: string;
  capabilityArgs: Record<string, unknown>;
  /** Unset while ADD runs: written first, so a crash in ADD still leaves what DEL needs. */
  result: Record<string, unknown> | undefined;
}

export class CniCache {
  private readonly store: RecordStore<CniCacheEntry>;

  constructor(dir: string) {
    this.store = new RecordStore<CniCacheEntry>(dir, 'CNI result');
  }

  static key(containerId: string, ifName: string): string {
    return `${containerId}-${ifName}`;
  }

  save(entry: CniCacheEntry): void {
    this.store.write(entry);
  }

  load(containerId: string, ifName: string): CniCacheEntry | undefined {
    return this.store.read(CniCache.key(containerId, ifName));
  }

  remove(containerId: string, ifName: string): void {
    this.store.remove(CniCache.key(containerId, ifName));
  }

  all(logger: Logger): CniCacheEntry[] {
    return this.store.loadAll(logger);
  }
}
