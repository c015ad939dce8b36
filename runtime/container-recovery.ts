import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { nowNs } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ObjectStore } from '../core/object-store.js';
import { unmountAllUnder } from '../storage/mounts.js';
import type { RootfsStore } from '../storage/rootfs-store.js';
import { conmonAlive, stopConmon } from './conmon.js';
import { containerName, type ContainerRecord } from './container-record.js';
import { teardownContainer, type TeardownContext } from './container-teardown.js';
import type { ExitWatcher } from './exit-watcher.js';
import type { OciRuntime } from './oci-runtime.js';
import { isAlive } from './process-tree.js';

export interface ContainerRecoveryContext {
  store: ObjectStore<ContainerRecord>;
  exits: ExitWatcher;
  teardown: TeardownContext;
  rootfs: RootfsStore;
  runtimeFor(handler: string): OciRuntime;
  finish(rec: ContainerRecord, exit: Pick<ContainerRecord, 'finishedAt' | 'exitCode' | 'reason'> & { message: string }): void;
  logger: Logger;
  /** For records from before containers kept their name and held their image's layers. */
  legacy: {
    podMetadata(sandboxId: string): { name: string; namespace: string; uid: string } | undefined;
    imageLayers(imageId: string): readonly string[] | undefined;
  };
}

/**
 * Rebuilds the containers' state at start. A create the daemon died in is
 * undone and a removal finished; after a reboot (no bundle left) a
 * container that was not finished is recorded as exited. Then records are
 * reconciled with what really runs: exits that happened while the daemon
 * was down come from the exit files, a start that completed after the
 * daemon died from the runtime's state.
 */
export class ContainerRecovery {
  constructor(private readonly c: ContainerRecoveryContext) {}

  async run(): Promise<void> {
    const { store, rootfs, logger } = this.c;
    for (const loaded of store.loadAll(logger)) {
      if (loaded.phase !== undefined && (await this.finishInterrupted(loaded))) continue;
      let r = loaded;
      if (r.finishedAt === undefined && !existsSync(join(this.c.teardown.bundlesDir, r.id, 'config.json'))) {
        r = { ...r, finishedAt: nowNs(), exitCode: 255, reason: 'Error', message: 'the host restarted while the container ran', pid: undefined };
        store.writeRecord(r);
      }
      store.show(r);
      const pod = r.name === undefined ? this.c.legacy.podMetadata(r.sandboxId) : undefined;
      const name = r.name ?? (pod ? containerName(r.spec, pod) : undefined);
      if (name !== undefined) store.names.reserve(name, r.id);
      if (!rootfs.has(r.id)) {
        const layers = this.c.legacy.imageLayers(r.imageId);
        if (layers) rootfs.adopt(r.id, r.imageId, layers);
      }
    }
    await rootfs.prune(store.ids());
    await this.removeOrphanBundles();
    await this.c.exits.start();
    await this.reconcile();
    logger.info('containers recovered', { count: store.size });
  }

  /** Undoes a create, finishes a removal; false when that failed and the record stays for RemoveContainer. */
  private async finishInterrupted(rec: ContainerRecord): Promise<boolean> {
    this.c.logger.info('finishing a container request the daemon was stopped in', { id: rec.id, phase: rec.phase });
    try {
      await teardownContainer(rec, this.c.teardown, true);
      this.c.store.delete(rec.id);
      return true;
    } catch (err) {
      this.c.logger.warn('cannot finish an interrupted container request; RemoveContainer will try again', { id: rec.id, error: errorMessage(err) });
      return false;
    }
  }

  /** Bundles without a record: a create from before records were written first. */
  private async removeOrphanBundles(): Promise<void> {
    const base = this.c.teardown.bundlesDir;
    for (const id of await readdir(base).catch(() => [] as string[])) {
      if (this.c.store.has(id)) continue;
      this.c.logger.info('removing the bundle of a container that has no record', { id });
      await stopConmon(join(base, id), id, { search: true });
      await unmountAllUnder(join(base, id));
      await rm(join(base, id), { recursive: true, force: true });
    }
  }

  /**
   * A restore the daemon died in while conmon ran it: if the runtime has
   * the container running, it is, with the pid conmon's runtime wrote.
   * Otherwise it stays created, and StartContainer may restore it again.
   */
  private async adoptRestore(rec: ContainerRecord): Promise<void> {
    const status = await this.c
      .runtimeFor(rec.runtimeHandler)
      .state(rec.id)
      .catch(() => undefined);
    if (status === undefined) return;
    const pid = Number.parseInt(await readFile(join(this.c.teardown.bundlesDir, rec.id, 'pidfile'), 'utf8').catch(() => ''), 10);
    if (status !== 'running' || !(pid > 0)) {
      // A half-done restore the runtime still holds would refuse the next one.
      await this.c
        .runtimeFor(rec.runtimeHandler)
        .delete(rec.id)
        .catch(() => undefined);
      return;
    }
    this.c.logger.info('container was restored while the daemon was down', { id: rec.id, pid });
    this.c.store.save({ ...rec, pid, startedAt: nowNs(), restorePending: undefined });
  }

  /**
   * Records against reality, for containers not known to have exited: a
   * StartContainer whose runtime start finished after the daemon died is
   * running (the runtime says so), and a container whose monitor died
   * without writing its exit file has exited with an unknown code.
   */
  private async reconcile(): Promise<void> {
    const { store } = this.c;
    for (const pending of store.values().filter((r) => r.restorePending && r.finishedAt === undefined)) await this.adoptRestore(pending);
    for (const initial of store.values()) {
      if (initial.finishedAt !== undefined || initial.pid === undefined) continue;
      if (initial.startedAt === undefined) {
        const status = await this.c
          .runtimeFor(initial.runtimeHandler)
          .state(initial.id)
          .catch(() => undefined);
        const now = store.peek(initial.id);
        if (status === 'running' && now && now.finishedAt === undefined && now.startedAt === undefined) {
          this.c.logger.info('container was started while the daemon was down', { id: now.id });
          store.save({ ...now, startedAt: nowNs() });
        }
      }
      const rec = store.peek(initial.id);
      if (!rec || rec.finishedAt !== undefined || rec.pid === undefined) continue;
      const bundle = join(this.c.teardown.bundlesDir, rec.id);
      if ((await isAlive(rec.pid)) || existsSync(join(this.c.exits.dir, rec.id)) || (await conmonAlive(bundle, rec.id))) continue;
      this.c.finish(rec, {
        finishedAt: nowNs(),
        exitCode: 255,
        reason: 'Error',
        message: 'the container and its monitor (conmon) ended without recording an exit code',
      });
    }
  }
}
