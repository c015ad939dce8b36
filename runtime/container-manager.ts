import { constants, existsSync } from 'node:fs';
import { lstat, mkdir, open, readdir, rm, unlink } from 'node:fs/promises';
import { isAbsolute, join, normalize, relative } from 'node:path';
import { nowNs } from '../core/clock.js';
import { errorMessage, FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { failpoint } from '../core/failpoints.js';
import { IdIndex } from '../core/id-index.js';
import { newId } from '../core/ids.js';
import { KeyedLock } from '../core/keyed-lock.js';
import { matchesSelector } from '../core/labels.js';
import type { Logger } from '../core/logger.js';
import { NameRegistrar } from '../core/name-registrar.js';
import { RecordStore } from '../core/record-store.js';
import { secondsToTimerMs, within } from '../core/timers.js';
import { UndoStack } from '../core/undo.js';
import type { ImageService } from '../image/image-service.js';
import { parseReference } from '../image/reference.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import { isReady, type SandboxRecord } from '../sandbox/sandbox-spec.js';
import type { DiskUsage } from '../storage/disk-usage.js';
import type { Storage } from '../storage/storage.js';
import type { ClientIO, CommandResult } from '../streaming/remote-command.js';
import { attachStream } from './attach-stream.js';
import { ownBoundingSet, resolveCapabilities } from './capabilities.js';
import { cgroupDir, conmonScope, containerCgroupsPath, isSystemdCgroupsPath } from './cgroup-paths.js';
import { killCgroupProcesses, removeCgroup } from './cgroup-tree.js';
import { conmonAlive, launchWithConmon, stopConmon } from './conmon.js';
import { writeBundleConfig } from './container-bundle.js';
import { containerName, containerState, type ContainerRecord, type ContainerState } from './container-record.js';
import type { ContainerResources, ContainerSpec } from './container-spec.js';
import { execStream } from './exec-stream.js';
import { execSync, type ExecResult } from './exec-sync.js';
import { ExitWatcher, type ContainerExit } from './exit-watcher.js';
import { detectHostLsm } from './lsm.js';
import { checkPropagation } from './mount-propagation.js';
import { ociResources } from './oci-resources.js';
import { OciRuntime } from './oci-runtime.js';
import { ownOomScoreAdjFloor } from './oom-score.js';
import { OomWatch } from './oom-watch.js';
import { isAlive } from './process-tree.js';
import type { RuntimeHandlerRegistry } from './runtime-handlers.js';
import { StatsSampler, type CgroupSample } from './stats-sampler.js';

export interface ContainerManagerOptions {
  root: string;
  runroot: string;
  conmon: () => string;
  logSizeMax: () => number;
  defaultUlimits: () => readonly string[];
  appArmorDefaultProfile: () => string;
  cgroupManager: 'cgroupfs' | 'systemd';
  sandboxes: SandboxManager;
  images: ImageService;
  storage: Storage;
  runtimes: RuntimeHandlerRegistry;
  logger: Logger;
}

export interface ContainerFilter {
  id?: string;
  sandboxId?: string;
  state?: ContainerState;
  labels?: Readonly<Record<string, string>>;
}

export interface ContainerStatsSample extends CgroupSample {
  writable: DiskUsage;
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
  private readonly containers = new Map<string, ContainerRecord>();
  private readonly names = new NameRegistrar('container');
  private readonly index = new IdIndex('container');
  private readonly locks = new KeyedLock();
  private readonly store: RecordStore<ContainerRecord>;
  private readonly exits: ExitWatcher;
  private readonly exitWaiters = new Map<string, Array<() => void>>();
  private readonly available = ownBoundingSet();
  private readonly oomFloor = ownOomScoreAdjFloor();
  private readonly lsm = detectHostLsm();
  private readonly sampler = new StatsSampler();
  private readonly oomWatch = new OomWatch();

  constructor(private readonly opts: ContainerManagerOptions) {
    this.store = new RecordStore<ContainerRecord>(join(opts.root, 'containers-records'), 'container');
    this.exits = new ExitWatcher(join(opts.runroot, 'exits'), (e) => this.onExit(e), opts.logger);
  }

  private bundle(id: string): string {
    return join(this.opts.runroot, 'containers', id);
  }

  private get socketDir(): string {
    return join(this.opts.runroot, 'sockets');
  }

  /** Where containers' writable layers live (ImageFsInfo and stats report it). */
  get layersDir(): string {
    return this.opts.storage.rootfs.dir;
  }

  private runtimeFor(handler: string): OciRuntime {
    const h = this.opts.runtimes.list().find((x) => x.name === (handler || this.opts.runtimes.defaultHandler));
    if (!h) throw new FailedPreconditionError(`runtime handler "${handler}" is not configured`);
    return new OciRuntime(h.config.path, h.config.root, this.opts.cgroupManager === 'systemd');
  }

  /** The log file: the pod's log directory joined with the container's log path, never outside it. */
  private logPath(logDirectory: string, spec: ContainerSpec, sandboxId: string): string {
    if (!logDirectory || !spec.logPath) return join(this.opts.root, 'logs', sandboxId, `${spec.name}_${spec.attempt}.log`);
    if (!isAbsolute(logDirectory)) throw new InvalidArgumentError(`the pod's log_directory ${JSON.stringify(logDirectory)} must be absolute`);
    if (isAbsolute(spec.logPath)) throw new InvalidArgumentError(`log_path ${JSON.stringify(spec.logPath)} must be relative to the pod's log directory`);
    const path = normalize(join(logDirectory, spec.logPath));
    const rel = relative(logDirectory, path);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new InvalidArgumentError(`log_path ${JSON.stringify(spec.logPath)} leaves the pod's log directory`);
    return path;
  }

  /** What only the host can tell about a container's mounts: the paths exist, and rro is possible. */
  private checkMounts(spec: ContainerSpec, pod: SandboxRecord): void {
    for (const m of spec.mounts) {
      if (!existsSync(m.hostPath)) throw new InvalidArgumentError(`mount host path ${JSON.stringify(m.hostPath)} does not exist`);
      if (m.recursiveReadOnly) {
        if (!m.readonly || m.propagation !== 'private') throw new InvalidArgumentError(`mount ${m.containerPath}: recursive_read_only needs readonly and private propagation`);
        const handler = this.opts.runtimes.list().find((h) => h.name === (pod.spec.runtimeHandler || this.opts.runtimes.defaultHandler));
        if (!handler?.features.recursiveReadOnlyMounts) throw new InvalidArgumentError(`mount ${m.containerPath}: the runtime handler does not support recursive read-only mounts`);
      }
    }
    checkPropagation(spec.mounts);
  }

  async create(sandboxId: string, spec: ContainerSpec): Promise<ContainerRecord> {
    const { logger, sandboxes, images, storage } = this.opts;
    const pod = sandboxes.get(sandboxId);
    if (!isReady(pod)) throw new FailedPreconditionError(`pod sandbox "${pod.id}" is not ready`);
    const image = images.resolve(spec.image);
    if (!image) {
      parseReference(spec.image);
      throw new NotFoundError(`image "${spec.image}" not found; pull it first`);
    }
    this.checkMounts(spec, pod);
    const capabilities = resolveCapabilities(spec.security.capabilitiesAdd, spec.security.capabilitiesDrop, spec.security.privileged, this.available);
    const logPath = this.logPath(pod.spec.logDirectory, spec, pod.id);
    const runtime = this.runtimeFor(pod.spec.runtimeHandler);
    const targetPidNamespace = this.targetPidNamespace(spec, pod.id);
    const name = containerName(spec, pod.spec);
    const id = newId();
    this.names.reserve(name, id);
    const intent: ContainerRecord = {
      schema: 1,
      id,
      sandboxId: pod.id,
      spec,
      imageId: image.id,
      runtimeHandler: pod.spec.runtimeHandler,
      logPath,
      stopSignal: spec.stopSignal || image.config.stopSignal || 'SIGTERM',
      createdAt: nowNs(),
      startedAt: undefined,
      finishedAt: undefined,
      exitCode: undefined,
      reason: '',
      message: '',
      pid: undefined,
      cgroupsPath: containerCgroupsPath(this.opts.cgroupManager, pod.spec.cgroupParent, id),
      phase: 'creating',
    };
    // The intent and the root filesystem's hold on the image's layers are
    // written in the turn the image was resolved in: a removal of the image
    // sees this container, and a crash from here on is undone at start.
    const undo = new UndoStack();
    undo.push('release the name', () => this.names.release(name, id));
    let rootfs: Promise<string>;
    try {
      this.store.write(intent);
      undo.push('remove what the create made', async () => {
        await this.teardown(intent, true);
        this.store.remove(id);
      });
      rootfs = storage.rootfs.create(id, image.id, image.layers);
    } catch (err) {
      await undo.rollback(logger);
      throw err;
    }
    try {
      failpoint('CreateContainer/intent-recorded');
      const rootfsPath = await rootfs;
      failpoint('CreateContainer/rootfs-mounted');
      const bundle = this.bundle(id);
      await mkdir(join(bundle, 'persist'), { recursive: true, mode: 0o700 });
      await mkdir(join(logPath, '..'), { recursive: true });
      // A symlink left at the log path (broken, or pointing anywhere on the host) must not receive the container's output.
      if ((await lstat(logPath).catch(() => undefined))?.isSymbolicLink()) await unlink(logPath);
      await writeBundleConfig(bundle, {
        id,
        spec,
        image,
        rootfs: rootfsPath,
        pod,
        podFiles: {
          hostname: sandboxes.podFile(pod.id, 'hostname'),
          hosts: sandboxes.podFile(pod.id, 'hosts'),
          resolvConf: sandboxes.podFile(pod.id, 'resolv.conf'),
          shm: pod.shmMounted ? sandboxes.shmPath(pod.id) : undefined,
        },
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
      const pid = await launchWithConmon({
        conmon: this.opts.conmon(),
        runtime: runtime.path,
        runtimeArgs: runtime.globalArgs,
        id,
        name,
        bundle,
        exitDir: this.exits.dir,
        persistDir: join(bundle, 'persist'),
        socketDir: this.socketDir,
        logPath,
        logSizeMax: this.opts.logSizeMax(),
        tty: spec.tty,
        stdin: spec.stdin,
        leaveStdinOpen: !spec.stdinOnce,
        scope: this.opts.cgroupManager === 'systemd' ? conmonScope(id) : undefined,
      });
      failpoint('CreateContainer/runtime-created');
      const record: ContainerRecord = { ...intent, pid, phase: undefined };
      this.store.write(record);
      undo.commit();
      this.containers.set(id, record);
      this.index.add(id);
      this.oomWatch.watch(id, await this.sampler.dirOf(record));
      logger.info('container created', { id, name, pid });
      return record;
    } catch (err) {
      await undo.rollback(logger);
      throw err;
    }
  }

  /** pid TARGET: the PID namespace of a running container of the same pod. */
  private targetPidNamespace(spec: ContainerSpec, podId: string): string | undefined {
    if (spec.security.pidMode !== 'target') return undefined;
    const target = this.containers.get(this.index.resolve(spec.security.targetId));
    if (!target || target.sandboxId !== podId) throw new InvalidArgumentError(`target container "${spec.security.targetId}" is not in pod sandbox "${podId}"`);
    if (containerState(target) !== 'running' || target.pid === undefined) throw new FailedPreconditionError(`target container "${target.id}" is not running`);
    return `/proc/${target.pid}/ns/pid`;
  }

  async start(idOrPrefix: string): Promise<void> {
    const id = this.index.resolve(idOrPrefix);
    await this.locks.run(id, async () => {
      const rec = this.containers.get(id) as ContainerRecord;
      if (containerState(rec) !== 'created') throw new FailedPreconditionError(`container "${id}" is ${containerState(rec)}, it can only be started once`);
      await this.runtimeFor(rec.runtimeHandler).start(id);
      failpoint('StartContainer/runtime-started');
      // The exit may already have been seen (a command that ends at once): keep the times in order.
      const now = this.containers.get(id) as ContainerRecord;
      const startedAt = nowNs();
      this.save({ ...now, startedAt: now.finishedAt !== undefined && now.finishedAt < startedAt ? now.finishedAt : startedAt });
    });
  }

  /** Stop signal, then SIGKILL after `timeoutSeconds` (0: at once). Unknown and stopped containers succeed. */
  async stop(idOrPrefix: string, timeoutSeconds: number): Promise<void> {
    const id = this.index.find(idOrPrefix);
    if (id === undefined) return;
    const rec = this.containers.get(id);
    if (!rec || containerState(rec) === 'exited' || (containerState(rec) === 'created' && rec.pid === undefined)) return;
    const runtime = this.runtimeFor(rec.runtimeHandler);
    const gone = this.waitForExit(id);
    if (timeoutSeconds > 0) {
      await runtime.kill(id, rec.stopSignal);
      failpoint('StopContainer/signalled');
      if (await within(gone, secondsToTimerMs(timeoutSeconds))) return;
      this.opts.logger.info('container did not stop in time; killing it', { id, timeoutSeconds });
    }
    await runtime.kill(id, 'KILL');
    if (!(await within(gone, KILL_WAIT_MS))) throw new InternalError(`container "${id}" did not exit ${KILL_WAIT_MS / 1000}s after SIGKILL`);
  }

  private waitForExit(id: string): Promise<void> {
    const rec = this.containers.get(id);
    if (!rec || rec.finishedAt !== undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.exitWaiters.get(id) ?? [];
      list.push(resolve);
      this.exitWaiters.set(id, list);
    });
  }

  private onExit(exit: ContainerExit): void {
    const rec = this.containers.get(exit.id);
    if (!rec || rec.finishedAt !== undefined) return;
    const oom = existsSync(join(this.bundle(exit.id), 'persist', 'oom')) || this.oomWatch.killed(exit.id);
    this.oomWatch.forget(exit.id);
    const reason = oom ? 'OOMKilled' : exit.exitCode === 0 ? 'Completed' : 'Error';
    // The exit file's mtime comes from the kernel's coarse clock and can trail our start time by a tick.
    const floor = rec.startedAt ?? rec.createdAt;
    const finishedAt = exit.finishedAt > floor ? exit.finishedAt : floor + 1n;
    this.finish(rec, { finishedAt, exitCode: exit.exitCode, reason });
  }

  private finish(rec: ContainerRecord, exit: Pick<ContainerRecord, 'finishedAt' | 'exitCode' | 'reason'> & { message?: string }): void {
    this.save({ ...rec, ...exit, message: exit.message ?? rec.message, pid: undefined });
    this.opts.logger.info('container exited', { id: rec.id, exitCode: exit.exitCode, reason: exit.reason });
    for (const resolve of this.exitWaiters.get(rec.id) ?? []) resolve();
    this.exitWaiters.delete(rec.id);
  }

  /** Stops if needed, then deletes the OCI container, its root filesystem and record. Unknown ids succeed. */
  async remove(idOrPrefix: string): Promise<void> {
    const id = this.index.find(idOrPrefix);
    if (id === undefined) return;
    await this.stop(id, 0);
    await this.locks.run(id, async () => {
      const rec = this.containers.get(id);
      if (!rec) return;
      this.save({ ...rec, phase: 'removing' });
      failpoint('RemoveContainer/intent-recorded');
      await this.teardown(rec, false);
      failpoint('RemoveContainer/torn-down');
      this.forget(rec);
      this.opts.logger.info('container removed', { id });
    });
  }

  /**
   * Everything of a container outside its record, released; each step
   * accepts what is already gone, so a failed create, a removal and the
   * recovery of either after a crash all come here. `thorough`: the
   * request may have been cut short anywhere (a create), so monitors and
   * runtimes are searched for by the container's id and whatever is in its
   * cgroup is killed, instead of trusting pid files.
   */
  private async teardown(rec: ContainerRecord, thorough: boolean): Promise<void> {
    const bundle = this.bundle(rec.id);
    await stopConmon(bundle, rec.id, { search: thorough });
    const dir = rec.cgroupsPath ? cgroupDir(rec.cgroupsPath) : '';
    if (thorough && dir) await killCgroupProcesses(dir);
    let runtime: OciRuntime | undefined;
    try {
      runtime = this.runtimeFor(rec.runtimeHandler);
    } catch {
      this.opts.logger.warn('the runtime handler of a container is gone; deleting what is left without it', { id: rec.id, handler: rec.runtimeHandler });
    }
    await runtime?.delete(rec.id);
    failpoint('RemoveContainer/runtime-deleted');
    // systemd removes a scope itself once its processes are gone.
    if (dir && !isSystemdCgroupsPath(rec.cgroupsPath)) await removeCgroup(dir);
    await this.opts.storage.rootfs.remove(rec.id);
    await rm(bundle, { recursive: true, force: true });
    await rm(join(this.exits.dir, rec.id), { force: true });
    // conmon's link from the socket dir to the bundle, for short attach socket
    // paths: named by the id, cut short to fit a socket address on long paths.
    for (const name of await readdir(this.socketDir).catch(() => [] as string[])) {
      if (name.length >= 32 && rec.id.startsWith(name)) await rm(join(this.socketDir, name), { force: true });
    }
  }

  private forget(rec: ContainerRecord): void {
    this.store.remove(rec.id);
    this.containers.delete(rec.id);
    this.index.delete(rec.id);
    this.names.releaseHolder(rec.id);
    this.exits.forget(rec.id);
    this.sampler.forget(rec.id);
    this.oomWatch.forget(rec.id);
  }

  get(idOrPrefix: string): ContainerRecord {
    return this.containers.get(this.index.resolve(idOrPrefix)) as ContainerRecord;
  }

  list(filter: ContainerFilter = {}): ContainerRecord[] {
    const out: ContainerRecord[] = [];
    for (const rec of this.containers.values()) {
      if (filter.id && !rec.id.startsWith(filter.id)) continue;
      if (filter.sandboxId && !rec.sandboxId.startsWith(filter.sandboxId)) continue;
      if (filter.state && containerState(rec) !== filter.state) continue;
      if (!matchesSelector(rec.spec.labels, filter.labels)) continue;
      out.push(rec);
    }
    return out;
  }

  private running(idOrPrefix: string): ContainerRecord {
    const rec = this.get(idOrPrefix);
    if (containerState(rec) !== 'running') throw new FailedPreconditionError(`container "${rec.id}" is not running`);
    return rec;
  }

  async exec(idOrPrefix: string, cmd: readonly string[], timeoutSeconds: number): Promise<ExecResult> {
    if (cmd.length === 0 || cmd[0] === '') throw new InvalidArgumentError('cmd is empty');
    const rec = this.running(idOrPrefix);
    return execSync({ runtime: this.runtimeFor(rec.runtimeHandler), id: rec.id, bundle: this.bundle(rec.id), cmd, timeoutSeconds });
  }

  /** An interactive exec for the streaming server: the client's streams are the command's stdio. */
  async streamExec(idOrPrefix: string, cmd: readonly string[], tty: boolean, io: ClientIO): Promise<CommandResult> {
    const rec = this.running(idOrPrefix);
    const runtime = this.runtimeFor(rec.runtimeHandler);
    return execStream({ runtime, id: rec.id, bundle: this.bundle(rec.id), cmd, tty, io });
  }

  /** Attaches the streaming client to a running container's own stdio. */
  async streamAttach(idOrPrefix: string, tty: boolean, io: ClientIO): Promise<CommandResult> {
    const rec = this.running(idOrPrefix);
    return attachStream(this.bundle(rec.id), tty, io);
  }

  /** New limits on the live cgroup, mapped as a create maps them; the record keeps them for status. */
  async updateResources(idOrPrefix: string, resources: ContainerResources): Promise<void> {
    const rec = this.running(idOrPrefix);
    await this.locks.run(rec.id, async () => {
      await this.runtimeFor(rec.runtimeHandler).update(rec.id, ociResources(resources), this.bundle(rec.id));
      const now = this.containers.get(rec.id) as ContainerRecord;
      this.save({ ...now, spec: { ...now.spec, resources } });
    });
  }

  /** kubelet rotated the log file: conmon reopens it through its control FIFO. */
  async reopenLog(idOrPrefix: string): Promise<void> {
    const rec = this.running(idOrPrefix);
    const ctl = join(this.bundle(rec.id), 'ctl');
    const fd = await open(ctl, constants.O_WRONLY | constants.O_NONBLOCK).catch((err: unknown) => {
      throw new FailedPreconditionError(`cannot reach conmon of container "${rec.id}": ${errorMessage(err)}`);
    });
    try {
      await fd.write('2 0 0\n');
    } finally {
      await fd.close();
    }
  }

  processCount(rec: ContainerRecord): Promise<bigint> {
    return this.sampler.processCount(rec);
  }

  /** CPU and memory from the cgroup files, the writable layer from a cached walk; nothing is spawned. */
  async stats(rec: ContainerRecord): Promise<ContainerStatsSample> {
    return { ...(await this.sampler.sample(rec)), writable: await this.opts.storage.rootfs.usage(rec.id) };
  }

  /** For StopPodSandbox and RemovePodSandbox: every container of the pod. */
  async stopAll(sandboxId: string): Promise<void> {
    await Promise.all(this.list({ sandboxId }).map((c) => this.stop(c.id, 0)));
  }

  async removeAll(sandboxId: string): Promise<void> {
    for (const c of this.list({ sandboxId })) await this.remove(c.id);
  }

  private save(rec: ContainerRecord): ContainerRecord {
    this.store.write(rec);
    this.containers.set(rec.id, rec);
    return rec;
  }

  /**
   * Rebuilds state from records. A create the daemon died in is undone and
   * a removal finished; after a reboot (no bundle left) a container that
   * was not finished is recorded as exited. Then records are reconciled
   * with what really runs: exits that happened while the daemon was down
   * come from the exit files, a start that completed after the daemon died
   * from the runtime's state.
   */
  async recover(): Promise<void> {
    const { logger, storage, images } = this.opts;
    for (const loaded of this.store.loadAll(logger)) {
      if (loaded.phase !== undefined) {
        logger.info('finishing a container request the daemon was stopped in', { id: loaded.id, phase: loaded.phase });
        try {
          await this.teardown(loaded, true);
          this.store.remove(loaded.id);
          continue;
        } catch (err) {
          logger.warn('cannot finish an interrupted container request; RemoveContainer will try again', { id: loaded.id, error: errorMessage(err) });
        }
      }
      let r = loaded;
      if (r.finishedAt === undefined && !existsSync(join(this.bundle(r.id), 'config.json'))) {
        r = { ...r, finishedAt: nowNs(), exitCode: 255, reason: 'Error', message: 'the host restarted while the container ran', pid: undefined };
        this.store.write(r);
      }
      this.containers.set(r.id, r);
      this.index.add(r.id);
      const pod = this.opts.sandboxes.list({ id: r.sandboxId })[0];
      if (pod) this.names.reserve(containerName(r.spec, pod.spec), r.id);
      if (!storage.rootfs.has(r.id)) {
        const image = images.resolve(r.imageId);
        if (image) storage.rootfs.adopt(r.id, image.id, image.layers);
      }
    }
    await storage.rootfs.prune(new Set(this.containers.keys()));
    await this.removeOrphanBundles();
    await this.exits.start();
    await this.reconcile();
    for (const r of this.containers.values()) if (r.finishedAt === undefined && r.pid !== undefined) this.oomWatch.watch(r.id, await this.sampler.dirOf(r));
    logger.info('containers recovered', { count: this.containers.size });
  }

  /** Bundles without a record: a create from before records were written first. */
  private async removeOrphanBundles(): Promise<void> {
    const base = join(this.opts.runroot, 'containers');
    for (const id of await readdir(base).catch(() => [] as string[])) {
      if (this.containers.has(id)) continue;
      this.opts.logger.info('removing the bundle of a container that has no record', { id });
      await stopConmon(this.bundle(id), id, { search: true });
      await rm(this.bundle(id), { recursive: true, force: true });
    }
  }

  /**
   * Records against reality, for containers not known to have exited: a
   * StartContainer whose runtime start finished after the daemon died is
   * running (the runtime says so), and a container whose monitor died
   * without writing its exit file has exited with an unknown code.
   */
  private async reconcile(): Promise<void> {
    for (const initial of [...this.containers.values()]) {
      if (initial.finishedAt !== undefined || initial.pid === undefined) continue;
      if (initial.startedAt === undefined) {
        const status = await this.runtimeFor(initial.runtimeHandler)
          .state(initial.id)
          .catch(() => undefined);
        const now = this.containers.get(initial.id);
        if (status === 'running' && now && now.finishedAt === undefined && now.startedAt === undefined) {
          this.opts.logger.info('container was started while the daemon was down', { id: now.id });
          this.save({ ...now, startedAt: nowNs() });
        }
      }
      const rec = this.containers.get(initial.id);
      if (!rec || rec.finishedAt !== undefined || rec.pid === undefined) continue;
      if ((await isAlive(rec.pid)) || existsSync(join(this.exits.dir, rec.id)) || (await conmonAlive(this.bundle(rec.id), rec.id))) continue;
      this.finish(rec, { finishedAt: nowNs(), exitCode: 255, reason: 'Error', message: 'the container and its monitor (conmon) ended without recording an exit code' });
    }
  }

  stopWatching(): void {
    this.exits.stop();
    this.oomWatch.closeAll();
  }
}
