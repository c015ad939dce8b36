import { watch, type FSWatcher } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, errorMessage } from '../core/errors.js';
import type { Condition } from '../core/condition.js';
import type { Logger } from '../core/logger.js';
import { CNI_CONFIG_EXTENSIONS, readNetworkConfig, type CniNetworkConfig } from './cni-config.js';
import { checkPluginVersions, statusNetworkList, versionAtLeast, type CniExecOptions } from './cni-network.js';
import { findPlugin } from './cni-plugin.js';

const RESCAN_DELAY_MS = 100;
const MISSING_DIR_POLL_MS = 1000;
/** How often a CNI 1.1 network's plugins are asked STATUS while it is the default network. */
const STATUS_INTERVAL_MS = 10_000;

/**
 * Tracks the default pod network: the first valid config in the conf dir in
 * lexical order. The directory is watched, so NetworkReady follows configs
 * being added or removed (a CNI daemonset writing its file after the node
 * started) without a disk scan per Status call.
 */
export class NetworkReadiness {
  private current: CniNetworkConfig | undefined;
  private condition: Condition;
  private watcher: FSWatcher | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private rescanTimer: NodeJS.Timeout | undefined;
  private scanning: Promise<void> = Promise.resolve();
  private statusTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly confDir: string,
    private readonly logger: Logger,
    private readonly exec: () => CniExecOptions,
  ) {
    this.condition = { ready: false, reason: 'NetworkPluginNotReady', message: `CNI config in ${confDir} has not been read yet` };
  }

  async start(): Promise<void> {
    await this.rescan();
    this.watchDir();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    clearTimeout(this.pollTimer);
    clearTimeout(this.rescanTimer);
    clearInterval(this.statusTimer);
  }

  readiness(): Condition {
    return this.condition;
  }

  defaultNetwork(): CniNetworkConfig | undefined {
    return this.current;
  }

  /** Resolves once every change seen so far has been scanned. */
  settled(): Promise<void> {
    return this.scanning;
  }

  private watchDir(): void {
    if (this.stopped) return;
    try {
      this.watcher = watch(this.confDir, { persistent: false }, () => this.scheduleRescan());
      this.watcher.on('error', () => this.rewatchLater());
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') this.logger.warn('cannot watch CNI conf dir', { dir: this.confDir, error: errorMessage(err) });
      this.rewatchLater();
    }
  }

  /** The dir does not exist (yet) or was removed: look again until it is back. */
  private rewatchLater(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.stopped) return;
    this.pollTimer = setTimeout(() => {
      this.scheduleRescan();
      this.watchDir();
    }, MISSING_DIR_POLL_MS);
    this.pollTimer.unref();
  }

  private scheduleRescan(): void {
    clearTimeout(this.rescanTimer);
    this.rescanTimer = setTimeout(() => void this.rescan(), RESCAN_DELAY_MS);
    this.rescanTimer.unref();
  }

  private rescan(): Promise<void> {
    this.scanning = this.scanning.then(() => this.scan());
    return this.scanning;
  }

  private async scan(): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(this.confDir)).filter((n) => CNI_CONFIG_EXTENSIONS.some((ext) => n.endsWith(ext))).sort();
    } catch (err) {
      const why = errnoCode(err) === 'ENOENT' ? `${this.confDir} does not exist` : `cannot read ${this.confDir}: ${errorMessage(err)}`;
      this.update(undefined, `no CNI network config: ${why}`);
      return;
    }
    const problems: string[] = [];
    for (const name of names) {
      try {
        const config = await readNetworkConfig(join(this.confDir, name));
        const binDirs = this.exec().binDirs;
        for (const plugin of config.plugins) await findPlugin(plugin.type, binDirs);
        await checkPluginVersions(config, this.exec());
        this.update(config, '');
        await this.checkStatus();
        return;
      } catch (err) {
        problems.push(`${name}: ${errorMessage(err)}`);
      }
    }
    const detail = problems.length > 0 ? `; invalid: ${problems.join('; ')}` : '';
    this.update(undefined, `no valid CNI network config in ${this.confDir}${detail}`);
  }

  /** CNI 1.1 networks answer STATUS: a plugin that cannot add pods now makes the network not ready. */
  private async checkStatus(): Promise<void> {
    clearInterval(this.statusTimer);
    const config = this.current;
    if (!config || !versionAtLeast(config.cniVersion, 1, 1)) return;
    const ask = async () => {
      try {
        await statusNetworkList(config, this.exec());
        if (this.current === config) this.update(config, '');
      } catch (err) {
        if (this.current === config) {
          const message = `CNI network ${config.name} reports it is not ready: ${errorMessage(err)}`;
          if (this.condition.ready || this.condition.message !== message) this.logger.warn('pod network not ready', { reason: message });
          this.condition = { ready: false, reason: 'NetworkPluginNotReady', message };
        }
      }
    };
    await ask();
    this.statusTimer = setInterval(() => void ask(), STATUS_INTERVAL_MS);
    this.statusTimer.unref();
  }

  private update(config: CniNetworkConfig | undefined, message: string): void {
    const before = this.current?.file;
    this.current = config;
    this.condition = config ? { ready: true, reason: '', message: '' } : { ready: false, reason: 'NetworkPluginNotReady', message };
    if (config?.file !== before) {
      if (config) this.logger.info('pod network ready', { network: config.name, file: config.file });
      else this.logger.warn('pod network not ready', { reason: message });
    }
  }
}
