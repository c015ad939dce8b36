import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../core/errors.js';
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
  result: Record<string, unknown>;
}

export class CniCache {
  private readonly store: RecordStore<CniCacheEntry>;

  constructor(private readonly dir: string) {
    this.store = new RecordStore<CniCacheEntry>(dir, 'CNI result');
  }

  static key(containerId: string, ifName: string): string {
    return `${containerId}-${ifName}`;
  }

  save(entry: CniCacheEntry): void {
    this.store.write(entry);
  }

  async load(containerId: string, ifName: string): Promise<CniCacheEntry | undefined> {
    try {
      return JSON.parse(await readFile(join(this.dir, `${CniCache.key(containerId, ifName)}.json`), 'utf8')) as CniCacheEntry;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  remove(containerId: string, ifName: string): void {
    this.store.remove(CniCache.key(containerId, ifName));
  }

  all(logger: Logger): CniCacheEntry[] {
    return this.store.loadAll(logger);
  }

}
