import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { containerCgroupsPath } from '../cgroups/cgroup-paths.js';
import type { CgroupDriver } from '../core/config/config.js';
import { OomWatch } from '../cgroups/oom-watch.js';
import { nowNs } from '../core/clock.js';
import { FailedPreconditionError, InternalError, InvalidArgumentError } from '../core/errors.js';
import { failpoint } from '../core/failpoints.js';
import { newId } from '../core/ids.js';
import { metrics } from '../core/metrics.js';
import type { Logger } from '../core/logger.js';
import { ObjectStore, type Watcher } from '../core/object-store.js';
import { secondsToTimerMs, within } from '../core/timers.js';
import { UndoStack } from '../core/undo.js';
import { ownBoundingSet, resolveCapabilities } from '../oci/capabilities.js';
import { makeBundleDir, writeBundleConfig } from '../oci/container-bundle.js';
import type { ContainerSpec } from '../oci/container-spec.js';
import { detectHostLsm } from '../oci/lsm.js';
import { ownOomScoreAdjFloor } from '../oci/oom-score.js';
import type { RootfsStore } from '../storage/rootfs-store.js';
import { conmonLaunchFor, launchWithConmon, type ConmonLaunch } from './conmon.js';
import { restoreImagesDir, restoreWithConmon, unpackWritableLayer } from './container-restore.js';
import type { ContainerPlan } from './container-plan.js';
import { type ContainerFilter, type ContainerRecord, containerState, matchesFilter } from './container-record.js';
import { ContainerRecovery } from './container-recovery.js';
import { ContainerRemovals } from './container-removals.js';
import { ArchiveWriter } from './checkpoint-archive.js';
import { ContainerIO } from './container-io.js';
import { checkMounts } from './mount-checks.js';
import { containerLogPath, prepareLogFile } from './container-log.js';
import { teardownContainer, type TeardownContext } from './container-teardown.js';
import { ExitWatcher, type ContainerExit } from './exit-watcher.js';
import { signalInit } from './init-signal.js';
import { OciRuntime } from './oci-runtime.js';
import type { HandlerFeatures, RuntimeHandlerRegistry } from './runtime-handlers.js';
import { StatsSampler, type ContainerStatsSample } from './stats-sampler.js';
import { idmapVolumes, rootfsIdmap } from './user-namespace.js';

export interface ContainerManagerOptions {
  root: string;
  runroot: string;
  conmon: () => string;
  logSizeMax: () => number;
  defaultUlimits: () => readonly string[];
  appArmorDefaultProfile: () => string;
  cgroupDriver: CgroupDriver;
  rootfs: RootfsStore;
  runtimes: RuntimeHandlerRegistry;
  logger: Logger;
}

/** How long a SIGKILLed container may take to be reported gone. */
const KILL_WAIT_MS = 10_000;

/**
 * Container lifecycle through conmon and the OCI runtime of the pod's
 * RuntimeHandler. State lives in memory (status and lists never touch disk
 * or spawn) and in one record per container; exits arrive through conmon's
 * exit files. A create or remove is recorded before its first step, so a
 * crash at any point is undone or finished at the next start.
 */
export class ContainerManager {
  private readonly store: ObjectStore<ContainerRecord>;
  private readonly exits: ExitWatcher;
  private readonly exitWaiters = new Map<string, Array<() => void>>();
  private readonly available = ownBoundingSet();
  private readonly oomFloor = ownOomScoreAdjFloor();
  private readonly lsm = detectHostLsm();
  private readonly sampler: StatsSampler;
  private readonly oomWatch = new OomWatch();
  private readonly teardownContext: TeardownContext;
  private readonly removals: ContainerRemovals;
  /** Exec, attach, live updates and log reopening on running containers. */
  readonly io: ContainerIO;

  constructor(private readonly opts: ContainerManagerOptions) {
    this.store = new ObjectStore<ContainerRecord>(opts.root, 'containers-records', 'container');
    this.sampler = new StatsSampler((id) => opts.rootfs.usage(id));
    this.exits = new ExitWatcher(join(opts.runroot, 'exits'), (e) => this.onExit(e), opts.logger);
    this.io = new ContainerIO(
      this.store,
      (h) => this.runtimeFor(h),
      (id) => this.bundle(id),
      (id) => join(opts.rootfs.dir, id, 'upper'),
      (h) => this.featuresOf(h),
      new ArchiveWriter(join(opts.root, 'unfinished-archives')),
    );
    this.teardownContext = {
      bundlesDir: join(opts.runroot, 'containers'),
      socketDir: this.socketDir,
      exitsDir: this.exits.dir,
      runtimeFor: (handler) => {
        try {
          return this.runtimeFor(handler);
        } catch {
          return undefined;
        }
      },
      rootfs: opts.rootfs,
      logger: opts.logger,
    };
    this.removals = new ContainerRemovals(this.store, this.teardownContext, opts.logger);
  }

  private bundle(id: string): string {
    return join(this.opts.runroot, 'containers', id);
  }

  private get socketDir(): string {
    return join(this.opts.runroot, 'sockets');
  }

  /** Where containers' writable layers live (ImageFsInfo and stats report it). */
  get layersDir(): string {
    return this.opts.rootfs.dir;
  }

  private featuresOf(handler: string): HandlerFeatures | undefined {
    return this.opts.runtimes.list().find((h) => h.name === (handler || this.opts.runtimes.defaultHandler))?.features;
  }

  private runtimeFor(handler: string): OciRuntime {
    const h = this.opts.runtimes.list().find((x) => x.name === (handler || this.opts.runtimes.defaultHandler));
    if (!h) throw new FailedPreconditionError(`runtime handler "${handler}" is not configured`);
    return new OciRuntime(h.config.path, h.config.root, this.opts.cgroupDriver === 'systemd');
  }

  async create(plan: ContainerPlan): Promise<ContainerRecord> {
    const { logger } = this.opts;
    const { spec, pod, image } = plan;
    checkMounts(spec, this.featuresOf(pod.runtimeHandler));
    const capabilities = resolveCapabilities(spec.security.capabilitiesAdd, spec.security.capabilitiesDrop, spec.security.privileged, this.available);
    const logPath = containerLogPath(this.opts.root, pod.logDirectory, spec, pod.id);
    // An unknown handler is refused before anything is made.
    this.runtimeFor(pod.runtimeHandler);
    const targetPidNamespace = this.targetPidNamespace(spec, pod.id);
    const idmap = rootfsIdmap(pod, spec);
    const id = newId();
    this.store.names.reserve(plan.name, id);
    const intent: ContainerRecord = {
      schema: 1,
      id,
      sandboxId: pod.id,
      name: plan.name,
      spec,
      imageId: image.id,
      runtimeHandler: pod.runtimeHandler,
      logPath,
      stopSignal: spec.stopSignal || image.config.stopSignal || 'SIGTERM',
      createdAt: nowNs(),
      startedAt: undefined,
      finishedAt: undefined,
      exitCode: undefined,
      reason: '',
      message: '',
      pid: undefined,
      cgroupsPath: containerCgroupsPath(this.opts.cgroupDriver, pod.cgroupParent, id),
      phase: 'creating',
    };
    // The intent and the root filesystem's hold on the image's layers are
    // written in one turn with the caller's look-up of the image: a removal
    // of the image sees this container, and a crash from here on is undone
    // at start.
    const undo = new UndoStack();
    undo.push('release the name', () => this.store.names.release(plan.name, id));
    let rootfs: Promise<string>;
    try {
      this.store.writeRecord(intent);
      undo.push('remove what the create made', async () => {
        await teardownContainer(intent, this.teardownContext, true);
        this.store.delete(id);
      });
      const diff = plan.restore?.rootfsDiff;
      rootfs = this.opts.rootfs.create(id, image.id, image.layers, idmap, diff ? (upper) => unpackWritableLayer(diff, upper) : undefined);
    } catch (err) {
      await undo.rollback(logger);
      throw err;
    }
    try {
      failpoint('CreateContainer/intent-recorded');
      const rootfsPath = await rootfs;
      failpoint('CreateContainer/rootfs-mounted');
      const bundle = this.bundle(id);
      await makeBundleDir(bundle);
      await prepareLogFile(logPath);
      await writeBundleConfig(bundle, {
        id,
        spec: { ...spec, mounts: await idmapVolumes(bundle, spec.mounts, idmap) },
        imageConfig: image.config,
        rootfs: rootfsPath,
        pod,
        cgroupsPath: intent.cgroupsPath,
        capabilities,
        oomScoreAdjFloor: this.oomFloor,
        lsm: this.lsm,
        defaultUlimits: this.opts.defaultUlimits(),
        appArmorDefaultProfile: this.opts.appArmorDefaultProfile(),
        targetPidNamespace,
      });
      failpoint('CreateContainer/bundle-written');
      await mkdir(this.socketDir, { recursive: true });
      // A restored container's processes come back at StartContainer, from the images kept in its bundle.
      if (plan.restore) await rename(plan.restore.imagesDir, restoreImagesDir(this.bundle(id)));
      const pid = plan.restore ? undefined : await launchWithConmon(this.launchOf(intent));
      failpoint('CreateContainer/runtime-created');
      const record = this.store.save({ ...intent, pid, phase: undefined, ...(plan.restore ? { restorePending: true as const } : {}) });
      undo.commit();
      if (pid !== undefined) this.oomWatch.watch(id, await this.sampler.dirOf(record));
      logger.info('container created', { id, name: plan.name, pid });
      return record;
    } catch (err) {
      await undo.rollback(logger);
      throw err;
    }
  }

  /** How conmon is run for `rec`: to create it, or with `restore`, to restore it from CRIU's images there. */
  private launchOf(rec: ContainerRecord, restore?: string): ConmonLaunch {
    const env = { conmon: this.opts.conmon(), exitDir: this.exits.dir, socketDir: this.socketDir, logSizeMax: this.opts.logSizeMax() };
    return conmonLaunchFor(rec, this.runtimeFor(rec.runtimeHandler), this.bundle(rec.id), env, restore);
  }

  /** pid TARGET: the PID namespace of a running container of the same pod. */
  private targetPidNamespace(spec: ContainerSpec, podId: string): string | undefined {
    if (spec.security.pidMode !== 'target') return undefined;
    const target = this.store.get(spec.security.targetId);
    if (target.sandboxId !== podId) throw new InvalidArgumentError(`target container "${spec.security.targetId}" is not in pod sandbox "${podId}"`);
    if (containerState(target) !== 'running' || target.pid === undefined) throw new FailedPreconditionError(`target container "${target.id}" is not running`);
    return `/proc/${target.pid}/ns/pid`;
  }

  async start(idOrPrefix: string): Promise<void> {
    const id = this.store.get(idOrPrefix).id;
    await this.store.locks.run(id, async () => {
      const rec = this.store.get(id);
      if (containerState(rec) !== 'created') throw new FailedPreconditionError(`container "${id}" is ${containerState(rec)}, it can only be started once`);
      const restored = rec.restorePending ? await restoreWithConmon(this.launchOf(rec, restoreImagesDir(this.bundle(id)))) : undefined;
      if (!restored) await this.runtimeFor(rec.runtimeHandler).start(id);
      failpoint('StartContainer/runtime-started');
      // The exit may already have been seen (a command that ends at once): keep the times in order.
      const now = this.store.get(id);
      const startedAt = nowNs();
      const saved = this.store.save({
        ...now,
        startedAt: now.finishedAt !== undefined && now.finishedAt < startedAt ? now.finishedAt : startedAt,
        ...(restored ? { pid: now.finishedAt === undefined ? restored : undefined, restorePending: undefined } : {}),
      });
      if (!restored) return;
      await rm(restoreImagesDir(this.bundle(id)), { recursive: true, force: true });
      if (saved.finishedAt === undefined) this.oomWatch.watch(id, await this.sampler.dirOf(saved));
    });
  }

  /** Stop signal, then SIGKILL after `timeoutSeconds` (0: at once). Unknown and stopped containers succeed. */
  async stop(idOrPrefix: string, timeoutSeconds: number): Promise<void> {
    const id = this.store.find(idOrPrefix);
    const rec = id === undefined ? undefined : this.store.peek(id);
    if (!rec || containerState(rec) === 'exited' || (containerState(rec) === 'created' && rec.pid === undefined)) return;
    const runtime = this.runtimeFor(rec.runtimeHandler);
    const gone = this.waitForExit(rec.id);
    if (timeoutSeconds > 0) {
      if (!signalInit(rec, rec.stopSignal)) await runtime.kill(rec.id, rec.stopSignal);
      failpoint('StopContainer/signalled');
      if (await within(gone, secondsToTimerMs(timeoutSeconds))) return;
      this.opts.logger.info('container did not stop in time; killing it', { id: rec.id, timeoutSeconds });
    }
    if (!signalInit(rec, 'KILL')) await runtime.kill(rec.id, 'KILL');
    if (!(await within(gone, KILL_WAIT_MS))) throw new InternalError(`container "${rec.id}" did not exit ${KILL_WAIT_MS / 1000}s after SIGKILL`);
  }

  private waitForExit(id: string): Promise<void> {
    const rec = this.store.peek(id);
    if (!rec || rec.finishedAt !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.exitWaiters.get(id) ?? [];
      list.push(resolve);
      this.exitWaiters.set(id, list);
    });
  }

  private onExit(exit: ContainerExit): void {
    const rec = this.store.peek(exit.id);
    if (!rec || rec.finishedAt !== undefined) return;
    const oom = existsSync(join(this.bundle(exit.id), 'persist', 'oom')) || this.oomWatch.killed(exit.id);
    this.oomWatch.forget(exit.id);
    const reason = oom ? 'OOMKilled' : exit.exitCode === 0 ? 'Completed' : 'Error';
    // The exit file's mtime comes from the kernel's coarse clock and can trail our start time by a tick.
    const floor = rec.startedAt ?? rec.createdAt;
    const finishedAt = exit.finishedAt > floor ? exit.finishedAt : floor + 1n;
    this.finish(rec, { finishedAt, exitCode: exit.exitCode, reason });
  }

  /** Records an exit and wakes whoever waits for it. */
  private finish(rec: ContainerRecord, exit: Pick<ContainerRecord, 'finishedAt' | 'exitCode' | 'reason'> & { message?: string }): void {
    this.store.save({ ...rec, ...exit, message: exit.message ?? rec.message, pid: undefined });
    metrics.containerExit(exit.reason);
    this.opts.logger.info('container exited', { id: rec.id, exitCode: exit.exitCode, reason: exit.reason });
    for (const resolve of this.exitWaiters.get(rec.id) ?? []) resolve();
    this.exitWaiters.delete(rec.id);
  }

  /**
   * Stops if needed, then retires the container: gone from every list at
   * once, its OCI container, root filesystem and record deleted after the
   * answer (ContainerRemovals). Unknown ids succeed.
   */
  async remove(idOrPrefix: string): Promise<void> {
    const id = this.store.find(idOrPrefix);
    if (id === undefined) return;
    await this.stop(id, 0);
    await this.store.locks.run(id, async () => {
      const rec = this.store.peek(id);
      if (!rec) return;
      const retired: ContainerRecord = { ...rec, phase: 'removing' };
      this.store.retire(retired);
      failpoint('RemoveContainer/intent-recorded');
      this.forgetState(id);
      this.removals.start(retired);
    });
  }

  /** Resolves once the removals under way (of one pod's containers, or all) have deleted everything. */
  removalsSettled(sandboxId?: string): Promise<void> {
    return this.removals.settled(sandboxId);
  }

  private forgetState(id: string): void {
    this.exits.forget(id);
    this.sampler.forget(id);
    this.oomWatch.forget(id);
  }

  get(idOrPrefix: string): ContainerRecord {
    return this.store.get(idOrPrefix);
  }

  /** Each change of a container's record, as it is made (container events). */
  watch(watcher: Watcher<ContainerRecord>): () => void {
    return this.store.watch(watcher);
  }

  list(filter: ContainerFilter = {}): ContainerRecord[] {
    return this.store.values().filter((rec) => matchesFilter(rec, filter));
  }

  /** Containers' stats, read now (see StatsSampler.sampleAll); nothing is spawned. */
  stats(recs: readonly ContainerRecord[]): Promise<ContainerStatsSample[]> {
    return this.sampler.sampleAll(recs);
  }

  /** For StopPodSandbox and RemovePodSandbox: every container of the pod. */
  async stopAll(sandboxId: string): Promise<void> {
    await Promise.all(this.list({ sandboxId }).map((c) => this.stop(c.id, 0)));
  }

  async removeAll(sandboxId: string): Promise<void> {
    for (const c of this.list({ sandboxId })) await this.remove(c.id);
    await this.removals.settled(sandboxId);
  }

  /**
   * Rebuilds state from records and reality (see ContainerRecovery).
   * `legacy` answers for records written before containers kept their
   * name and held their image's layers.
   */
  async recover(legacy: {
    podMetadata(sandboxId: string): { name: string; namespace: string; uid: string } | undefined;
    imageLayers(imageId: string): readonly string[] | undefined;
  }): Promise<void> {
    await new ContainerRecovery({
      store: this.store,
      exits: this.exits,
      teardown: this.teardownContext,
      rootfs: this.opts.rootfs,
      runtimeFor: (h) => this.runtimeFor(h),
      finish: (rec, exit) => this.finish(rec, exit),
      logger: this.opts.logger,
      legacy,
    }).run();
    await this.io.archives.removeUnfinished(this.opts.logger);
    for (const r of this.store.values()) if (r.finishedAt === undefined && r.pid !== undefined) this.oomWatch.watch(r.id, await this.sampler.dirOf(r));
  }

  stopWatching(): void {
    this.exits.stop();
    this.oomWatch.closeAll();
  }
}
