import { readFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ObjectStore } from '../core/object-store.js';
import type { PodNetworks } from '../network/pod-network.js';
import { isPodInit, pinAlive, unmountAndRemove } from './namespace-pins.js';
import { removePodInitCgroup, type PodInitPlacement } from './pod-init.js';
import { killPodProcesses, mountPointsOf } from './pod-processes.js';
import { sandboxName, type SandboxRecord, type SandboxSpec } from './sandbox-spec.js';

export interface SandboxRecoveryContext {
  store: ObjectStore<SandboxRecord>;
  root: string;
  runroot: string;
  network: PodNetworks;
  placement(spec: SandboxSpec): PodInitPlacement;
  watchInit(rec: SandboxRecord): void;
  logger: Logger;
}

/**
 * Rebuilds the pods' state at start. A request a crash cut short is
 * finished (stop, remove) or undone (create) first. Pins that no longer
 * exist (the run dir was emptied by a reboot) make a pod NOTREADY;
 * directories, mounts and CNI attachments without a record are cleaned up.
 */
export class SandboxRecovery {
  constructor(private readonly c: SandboxRecoveryContext) {}

  private podRunDir(id: string): string {
    return join(this.c.runroot, 'pods', id);
  }

  async run(): Promise<void> {
    const { store, logger } = this.c;
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    const mounts = mountPointsOf(mountinfo);
    for (const loaded of store.loadAll(logger)) {
      let rec: SandboxRecord | undefined = loaded;
      if (rec.phase !== undefined) rec = await this.finishInterrupted(rec, mounts);
      if (!rec) continue;
      const pinsAlive = Object.values(rec.pins).every((p) => pinAlive(p, mountinfo));
      if (rec.state === 'ready' && !pinsAlive) {
        logger.warn('pod sandbox lost its namespaces (host rebooted?); it is NOTREADY now', { id: rec.id });
        rec = { ...rec, state: 'notready', pins: {}, initPid: undefined, shmMounted: false };
        store.writeRecord(rec);
      } else if (rec.state === 'ready' && rec.initPid !== undefined && !isPodInit(rec.initPid, rec.pins.pid ?? '')) {
        logger.warn('pod init exited while the daemon was down; the pod sandbox is NOTREADY', { id: rec.id, pid: rec.initPid });
        rec = { ...rec, state: 'notready', initPid: undefined };
        store.writeRecord(rec);
      }
      store.show(rec);
      if (rec.state === 'ready') this.c.watchInit(rec);
      // A pod being removed keeps no name: kubelet may create its successor meanwhile.
      if (rec.phase !== 'removing') store.names.reserve(sandboxName(rec.spec), rec.id);
    }
    await this.removeOrphanDirs(mounts);
    const live = store.values();
    await this.c.network.collectOrphans(new Set(live.map((r) => r.id)));
    await this.c.network.collectGarbage(live.filter((r) => r.networkAttached).map((r) => r.id));
    logger.info('pod sandboxes recovered', { count: store.size });
  }

  /**
   * A create, stop or remove the daemon died in. Whatever the record says,
   * everything of the pod outside it is released by where it must be: the
   * processes in its pinned namespaces (the init, whose pid a cut-short
   * create never recorded), the CNI attachment (the cache holds what ADD
   * was given, written before ADD ran), /dev/shm and the pins. A stop ends
   * NOTREADY; a create or remove leaves nothing.
   */
  private async finishInterrupted(rec: SandboxRecord, mounts: ReadonlySet<string>): Promise<SandboxRecord | undefined> {
    const { logger, store } = this.c;
    logger.info('finishing a pod sandbox request the daemon was stopped in', { id: rec.id, phase: rec.phase });
    const nsDir = join(this.podRunDir(rec.id), 'ns');
    await killPodProcesses(nsDir, mounts);
    await removePodInitCgroup(rec.id, this.c.placement(rec.spec));
    const netns = join(nsDir, 'net');
    let networkAttached = false;
    await this.c.network.detach(rec.id, mounts.has(netns) ? netns : '').catch((err: unknown) => {
      networkAttached = true;
      logger.warn('cannot release the network of an interrupted pod sandbox; StopPodSandbox will try again', { id: rec.id, error: errorMessage(err) });
    });
    await unmountAndRemove(join(this.podRunDir(rec.id), 'shm'));
    for (const name of await readdir(nsDir).catch(() => [] as string[])) await unmountAndRemove(join(nsDir, name));
    const stopped = { ...rec, state: 'notready' as const, pins: {}, initPid: undefined, networkAttached, shmMounted: false };
    if (rec.phase === 'stopping') {
      const done: SandboxRecord = { ...stopped, phase: undefined };
      store.writeRecord(done);
      return done;
    }
    if (networkAttached) {
      // Kept as a pod being removed, so that RemovePodSandbox (kubelet retries it) tries the network again.
      const kept: SandboxRecord = { ...stopped, phase: 'removing' };
      store.writeRecord(kept);
      return kept;
    }
    await rm(this.podRunDir(rec.id), { recursive: true, force: true });
    await rm(join(this.c.root, 'pods', rec.id), { recursive: true, force: true });
    store.delete(rec.id);
    return undefined;
  }

  /** Directories of pods without a record: a Run from before records were written first. */
  private async removeOrphanDirs(mounts: ReadonlySet<string>): Promise<void> {
    for (const base of [join(this.c.runroot, 'pods'), join(this.c.root, 'pods')]) {
      let entries: string[];
      try {
        entries = await readdir(base);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue;
        throw err;
      }
      for (const id of entries) {
        if (this.c.store.has(id)) continue;
        const dir = join(base, id);
        this.c.logger.info('removing what an interrupted RunPodSandbox left', { dir });
        await killPodProcesses(join(dir, 'ns'), mounts);
        // Deepest first, so nested mounts come off before their parents.
        for (const mp of [...mounts]
          .filter((m) => m.startsWith(`${dir}/`))
          .sort()
          .reverse()) {
          await unmountAndRemove(mp).catch((err: unknown) => this.c.logger.warn('cannot unmount orphan', { path: mp, error: errorMessage(err) }));
        }
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
}
