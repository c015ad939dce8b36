import { constants, existsSync } from 'node:fs';
import { lstat, mkdir, open, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join, normalize, relative } from 'node:path';
import { nowNs } from '../core/clock.js';
import { errorMessage, FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError } from '../core/errors.js';
import { CGROUP_V2, diskUsage, pidsCurrent, readCgroupStats, removeCgroup, type CgroupStats } from './cgroup-stats.js';
import { cgroupDir, conmonScope, containerCgroupsPath, isSystemdCgroupsPath } from './cgroup-paths.js';
import { execSync, type ExecResult } from './exec-sync.js';
import { execStream } from './exec-stream.js';
import { attachStream } from './attach-stream.js';
import type { ClientIO, CommandResult } from '../streaming/remote-command.js';
import { IdIndex } from '../core/id-index.js';
import { matchesSelector } from '../core/labels.js';
import { newId } from '../core/ids.js';
import { KeyedLock } from '../core/keyed-lock.js';
import type { Logger } from '../core/logger.js';
import { NameRegistrar } from '../core/name-registrar.js';
import { RecordStore } from '../core/record-store.js';
import { UndoStack } from '../core/undo.js';
import type { ImageService } from '../image/image-service.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import { ownBoundingSet, resolveCapabilities } from './capabilities.js';
import { launchWithConmon } from './conmon.js';
import { containerName, containerState, type ContainerRecord, type ContainerState } from './container-record.js';
import type { ContainerResources, ContainerSpec } from './container-spec.js';
import { ExitWatcher, type ContainerExit } from './exit-watcher.js';
import { OomWatch } from './oom-watch.js';
import { appArmorProfile, detectHostLsm, relabelTree, selinuxLabels } from './lsm.js';
import { loadNative } from './native/index.js';
import { ociSpec } from './oci-spec.js';
import { allHostDevices, hostDevice } from './devices.js';
import { ensureImageVolumes } from './image-volumes.js';
import { ownOomScoreAdjFloor } from './oom-score.js';
import { parseUlimit } from '../core/ulimit.js';
import { OciRuntime } from './oci-runtime.js';
import type { RuntimeHandlerRegistry } from './runtime-handlers.js';
import { resolveUser } from './user.js';

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
  runtimes: RuntimeHandlerRegistry;
  logger: Logger;
}

export interface ContainerFilter {
  id?: string;
  sandboxId?: string;
  state?: ContainerState;
  labels?: Readonly<Record<string, string>>;
}




export interface ContainerStatsSample {
  timestamp: bigint;
  cgroup: CgroupStats | undefined;
  nanoCores: bigint | undefined;
  writable: { bytes: number; inodes: number };
}

/** A writable layer's size is walked at most this often per container. */
const DISK_USAGE_TTL_MS = 10_000;

/** How long a SIGKILLed container may take to be reported gone. */
const KILL_WAIT_MS = 10_000;


/**
 * Container lifecycle through conmon and the OCI runtime of the pod's
 * RuntimeHandler. State lives in memory (status and lists never touch disk
 * or spawn) and in one record per container; exits arrive through conmon's
 * exit files.
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
  private readonly lastCpu = new Map<string, { usage: bigint; at: bigint }>();
  private readonly diskCache = new Map<string, { at: number; usage: { bytes: number; inodes: number } }>();
  private readonly diskWalks = new Map<string, Promise<{ bytes: number; inodes: number }>>();
  private readonly oomFloor = ownOomScoreAdjFloor();
  private readonly lsm = detectHostLsm();
  /** Where each running container's stats are read (see statsDir). */
  private readonly statsDirs = new Map<string, string>();
  private readonly oomWatch = new OomWatch();

  constructor(private readonly opts: ContainerManagerOptions) {
    this.store = new RecordStore<ContainerRecord>(join(opts.root, 'containers-records'), 'container');
    this.exits = new ExitWatcher(join(opts.runroot, 'exits'), (e) => this.onExit(e), opts.logger);
  }

  private bundle(id: string): string {
    return join(this.opts.runroot, 'containers', id);
  }

  /** Where containers' writable layers live (ImageFsInfo and stats report it). */
  get layersDir(): string {
    return join(this.opts.root, 'containers');
  }

  private rootfsDir(id: string): string {
    return join(this.opts.root, 'containers', id);
  }

  private runtimeFor(handler: string): OciRuntime {
    const h = this.opts.runtimes.list().find((x) => x.name === (handler || this.opts.runtimes.defaultHandler));
    if (!h) throw new FailedPreconditionError(`runtime handler "${handler}" is not configured`);
    return new OciRuntime(h.config.path, h.config.root, this.opts.cgroupManager === 'systemd');
  }

  /** The log file: the pod's log directory joined with the container's log path, never outside it. */
  private logPath(logDirectory: string, spec: ContainerSpec, sandboxId: string): string {
    if (!logDirectory || !spec.logPath) return join(this.opts.root, 'logs', sandboxId, `${spec.name}_${spec.attempt}.log`);
    if (isAbsolute(spec.logPath)) throw new InvalidArgumentError(`log_path ${JSON.stringify(spec.logPath)} must be relative to the pod's log directory`);
    const path = normalize(join(logDirectory, spec.logPath));
    const rel = relative(logDirectory, path);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new InvalidArgumentError(`log_path ${JSON.stringify(spec.logPath)} leaves the pod's log directory`);
    return path;
  }

  async create(sandboxId: string, spec: ContainerSpec): Promise<ContainerRecord> {
    const { logger, sandboxes, images } = this.opts;
    const pod = sandboxes.get(sandboxId);
    if (pod.state !== 'ready') throw new FailedPreconditionError(`pod sandbox "${pod.id}" is not ready`);
    const image = images.resolve(spec.image);
    if (!image) throw new NotFoundError(`image "${spec.image}" not found; pull it first`);
    for (const m of spec.mounts) {
      if (!isAbsolute(m.containerPath)) throw new InvalidArgumentError(`mount container path ${JSON.stringify(m.containerPath)} must be absolute`);
      if (!existsSync(m.hostPath)) throw new InvalidArgumentError(`mount host path ${JSON.stringify(m.hostPath)} does not exist`);
      if (m.recursiveReadOnly) {
        if (!m.readonly || m.propagation !== 'private') throw new InvalidArgumentError(`mount ${m.containerPath}: recursive_read_only needs readonly and private propagation`);
        const handler = this.opts.runtimes.list().find((h) => h.name === (pod.spec.runtimeHandler || this.opts.runtimes.defaultHandler));
        if (!handler?.features.recursiveReadOnlyMounts) throw new InvalidArgumentError(`mount ${m.containerPath}: the runtime handler does not support recursive read-only mounts`);
      }
    }
    const capabilities = resolveCapabilities(spec.security.capabilitiesAdd, spec.security.capabilitiesDrop, spec.security.privileged, this.available);
    const name = containerName(spec, pod.spec);
    const id = newId();
    this.names.reserve(name, id);
    const undo = new UndoStack();
    undo.push('release name', () => this.names.release(name, id));
    try {
      const logPath = this.logPath(pod.spec.logDirectory, spec, pod.id);
      const runtime = this.runtimeFor(pod.spec.runtimeHandler);
      const bundle = this.bundle(id);
      await mkdir(join(bundle, 'persist'), { recursive: true, mode: 0o700 });
      undo.push('remove bundle', () => rm(bundle, { recursive: true, force: true }));
      const rootfsDir = this.rootfsDir(id);
      undo.push('remove rootfs', () => images.unmountRootfs(rootfsDir));
      const rootfs = await images.mountRootfs(image.id, rootfsDir);
      await mkdir(join(logPath, '..'), { recursive: true });
      // A symlink left at the log path (broken, or pointing anywhere on the host) must not receive the container's output.
      if ((await lstat(logPath).catch(() => undefined))?.isSymbolicLink()) await unlink(logPath);
      const user = resolveUser(rootfs, {
        runAsUser: spec.security.runAsUser,
        runAsGroup: spec.security.runAsGroup,
        runAsUsername: spec.security.runAsUsername,
        imageUser: image.config.user,
        supplementalGroups: spec.security.supplementalGroups,
      });
      const selinux = selinuxLabels(spec.security.selinux, this.lsm, spec.security.privileged);
      const cgroupsPath = containerCgroupsPath(this.opts.cgroupManager, pod.spec.cgroupParent, id);
      const config = ociSpec({
        id,
        spec,
        image: image.config,
        rootfs,
        user,
        capabilities,
        pins: pod.pins,
        podHostname: pod.spec.hostname,
        podFiles: {
          hostname: sandboxes.podFile(pod.id, 'hostname'),
          hosts: sandboxes.podFile(pod.id, 'hosts'),
          resolvConf: sandboxes.podFile(pod.id, 'resolv.conf'),
          shm: pod.shmMounted ? sandboxes.shmPath(pod.id) : undefined,
        },
        cgroupsPath,
        oomScoreAdjFloor: this.oomFloor,
        sysctls: {},
        devices: [...(spec.security.privileged ? allHostDevices() : []), ...spec.devices.map(hostDevice)],
        targetPidNamespace: this.targetPidNamespace(spec, pod.id),
        rlimits: this.opts.defaultUlimits().map(parseUlimit),
        appArmorProfile: appArmorProfile(spec.security.appArmor, this.lsm, this.opts.appArmorDefaultProfile(), spec.security.privileged),
        selinux,
        criAnnotations: {
          'io.kubernetes.cri.container-type': 'container',
          'io.kubernetes.cri.container-name': spec.name,
          'io.kubernetes.cri.sandbox-id': pod.id,
          'io.kubernetes.cri.sandbox-name': pod.spec.name,
          'io.kubernetes.cri.sandbox-namespace': pod.spec.namespace,
          'io.kubernetes.cri.sandbox-uid': pod.spec.uid,
          'io.kubernetes.cri.image-name': spec.image,
        },
      });
      await ensureImageVolumes(rootfs, image.config.volumes, spec.mounts);
      if (selinux.mountLabel) {
        const native = loadNative();
        for (const m of spec.mounts.filter((x) => x.selinuxRelabel)) await relabelTree(m.hostPath, selinux.mountLabel, (p, label) => native.lsetxattr(p, 'security.selinux', Buffer.from(label)));
      }
      await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
      await mkdir(join(this.opts.runroot, 'sockets'), { recursive: true });
      const pid = await launchWithConmon({
        conmon: this.opts.conmon(),
        runtime: runtime.path,
        runtimeArgs: runtime.globalArgs,
        id,
        name,
        bundle,
        exitDir: this.exits.dir,
        persistDir: join(bundle, 'persist'),
        socketDir: join(this.opts.runroot, 'sockets'),
        logPath,
        logSizeMax: this.opts.logSizeMax(),
        tty: spec.tty,
        stdin: spec.stdin,
        leaveStdinOpen: !spec.stdinOnce,
        scope: this.opts.cgroupManager === 'systemd' ? conmonScope(id) : undefined,
      });
      undo.push('delete the OCI container', () => runtime.delete(id));
      const record: ContainerRecord = {
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
        pid,
        cgroupsPath,
      };
      this.store.write(record);
      undo.commit();
      this.containers.set(id, record);
      this.index.add(id);
      this.oomWatch.watch(id, await this.statsDir(record));
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
      if (await this.within(gone, timeoutSeconds * 1000)) return;
      this.opts.logger.info('container did not stop in time; killing it', { id, timeoutSeconds });
    }
    await runtime.kill(id, 'KILL');
    if (!(await this.within(gone, KILL_WAIT_MS))) throw new InternalError(`container "${id}" did not exit ${KILL_WAIT_MS / 1000}s after SIGKILL`);
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

  private async within(p: Promise<void>, ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const t = new Promise<boolean>((r) => {
      timer = setTimeout(() => r(false), ms);
    });
    const done = await Promise.race([p.then(() => true), t]);
    clearTimeout(timer);
    return done;
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
    this.save({ ...rec, finishedAt, exitCode: exit.exitCode, reason, pid: undefined });
    this.opts.logger.info('container exited', { id: exit.id, exitCode: exit.exitCode, reason });
    for (const resolve of this.exitWaiters.get(exit.id) ?? []) resolve();
    this.exitWaiters.delete(exit.id);
  }

  /** Stops if needed, deletes the OCI container, its rootfs and record. Unknown ids succeed. */
  async remove(idOrPrefix: string): Promise<void> {
    const id = this.index.find(idOrPrefix);
    if (id === undefined) return;
    await this.stop(id, 0);
    await this.locks.run(id, async () => {
      const rec = this.containers.get(id);
      if (!rec) return;
      await this.runtimeFor(rec.runtimeHandler).delete(id);
      // systemd removes a scope itself once its processes are gone.
      if (rec.cgroupsPath && !isSystemdCgroupsPath(rec.cgroupsPath)) await removeCgroup(rec.cgroupsPath);
      await this.opts.images.unmountRootfs(this.rootfsDir(id));
      await rm(this.bundle(id), { recursive: true, force: true });
      await rm(join(this.exits.dir, id), { force: true });
      this.exits.forget(id);
      this.store.remove(id);
      this.containers.delete(id);
      this.index.delete(id);
      this.lastCpu.delete(id);
      this.diskCache.delete(id);
      this.statsDirs.delete(id);
      this.oomWatch.forget(id);
      const pod = this.opts.sandboxes.list({ id: rec.sandboxId })[0];
      if (pod) this.names.release(containerName(rec.spec, pod.spec), id);
      this.opts.logger.info('container removed', { id });
    });
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
    if (cmd.length === 0) throw new InvalidArgumentError('cmd is empty');
    const rec = this.running(idOrPrefix);
    const runtime = this.runtimeFor(rec.runtimeHandler);
    return execSync({
      conmon: this.opts.conmon(),
      runtimePath: runtime.path,
      runtimeArgs: runtime.globalArgs,
      id: rec.id,
      bundle: this.bundle(rec.id),
      socketDir: join(this.opts.runroot, 'sockets'),
      cmd,
      timeoutSeconds,
    });
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

  /** New limits on the live cgroup; the record keeps them for status. */
  async updateResources(idOrPrefix: string, resources: ContainerResources): Promise<void> {
    const rec = this.running(idOrPrefix);
    await this.locks.run(rec.id, async () => {
      const update: Record<string, object> = {};
      const cpu: Record<string, unknown> = {};
      if (resources.cpuShares > 0) cpu.shares = resources.cpuShares;
      if (resources.cpuQuota !== 0) cpu.quota = resources.cpuQuota;
      if (resources.cpuPeriod > 0) cpu.period = resources.cpuPeriod;
      if (resources.cpusetCpus) cpu.cpus = resources.cpusetCpus;
      if (resources.cpusetMems) cpu.mems = resources.cpusetMems;
      if (Object.keys(cpu).length > 0) update.cpu = cpu;
      if (resources.memoryLimit > 0) update.memory = { limit: resources.memoryLimit, ...(resources.memorySwapLimit > 0 ? { swap: resources.memorySwapLimit } : {}) };
      await this.runtimeFor(rec.runtimeHandler).update(rec.id, update, this.bundle(rec.id));
      const now = this.containers.get(rec.id) as ContainerRecord;
      this.save({ ...now, spec: { ...now.spec, resources: { ...now.spec.resources, ...resources } } });
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

  async processCount(rec: ContainerRecord): Promise<bigint> {
    return containerState(rec) === 'running' && rec.cgroupsPath ? pidsCurrent(cgroupDir(rec.cgroupsPath)) : 0n;
  }

  /** CPU and memory from the cgroup files, the writable layer from a cached walk; nothing is spawned. */
  async stats(rec: ContainerRecord): Promise<ContainerStatsSample> {
    const timestamp = nowNs();
    const cg = containerState(rec) === 'running' && rec.cgroupsPath ? await readCgroupStats(await this.statsDir(rec)) : undefined;
    let nanoCores: bigint | undefined;
    const prev = this.lastCpu.get(rec.id);
    if (cg && prev && timestamp > prev.at) nanoCores = ((cg.cpuUsageNs - prev.usage) * 1_000_000_000n) / (timestamp - prev.at);
    if (cg) this.lastCpu.set(rec.id, { usage: cg.cpuUsageNs, at: timestamp });
    return { timestamp, cgroup: cg, nanoCores, writable: await this.writableUsage(rec.id) };
  }

  /**
   * The cgroup a container's process is in, when that is inside its own
   * cgroup: crun (systemd driver, cgroup v2) runs it in a `container` child
   * of the scope and sets the limits there, so the scope alone would show
   * usage without the limit. Learnt once per container from /proc.
   */
  private async statsDir(rec: ContainerRecord): Promise<string> {
    const own = cgroupDir(rec.cgroupsPath);
    const known = this.statsDirs.get(rec.id);
    if (known !== undefined || !CGROUP_V2 || rec.pid === undefined) return known ?? own;
    const line = (await readFile(`/proc/${rec.pid}/cgroup`, 'utf8').catch(() => '')).split('\n').find((l) => l.startsWith('0::'));
    const dir = line !== undefined && line.slice(3).startsWith(`${own}/`) ? line.slice(3) : own;
    this.statsDirs.set(rec.id, dir);
    return dir;
  }

  /** All writable layers together, from the same cached walks as the per-container stats. */
  async writableLayersUsage(): Promise<{ bytes: number; inodes: number }> {
    let bytes = 0;
    let inodes = 0;
    for (const id of this.containers.keys()) {
      const u = await this.writableUsage(id);
      bytes += u.bytes;
      inodes += u.inodes;
    }
    return { bytes, inodes };
  }

  /**
   * The writable layer's size. Only a container's first sample waits for a
   * walk; later ones get the last figure at once while a stale one is
   * refreshed in the background, so stats calls do not scan disks.
   */
  private async writableUsage(id: string): Promise<{ bytes: number; inodes: number }> {
    const cached = this.diskCache.get(id);
    if (!cached) return this.walkWritable(id);
    if (Date.now() - cached.at >= DISK_USAGE_TTL_MS && !this.diskWalks.has(id)) void this.walkWritable(id).catch(() => undefined);
    return cached.usage;
  }

  private walkWritable(id: string): Promise<{ bytes: number; inodes: number }> {
    const running = this.diskWalks.get(id);
    if (running) return running;
    const walk = diskUsage(join(this.rootfsDir(id), 'upper'))
      .then((usage) => {
        // A container removed during the walk keeps no cache entry.
        if (this.containers.has(id)) this.diskCache.set(id, { at: Date.now(), usage });
        return usage;
      })
      .finally(() => this.diskWalks.delete(id));
    this.diskWalks.set(id, walk);
    return walk;
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
   * Rebuilds state from records; exits that happened while the daemon was
   * down come from the exit files. After a reboot (no bundle left) a
   * container that was not finished is recorded as exited.
   */
  async recover(): Promise<void> {
    for (const rec of this.store.loadAll(this.opts.logger)) {
      let r = rec;
      if (r.finishedAt === undefined && !existsSync(join(this.bundle(r.id), 'config.json'))) {
        r = { ...r, finishedAt: nowNs(), exitCode: 255, reason: 'Error', message: 'the host restarted while the container ran', pid: undefined };
        this.store.write(r);
      }
      this.containers.set(r.id, r);
      this.index.add(r.id);
      const pod = this.opts.sandboxes.list({ id: r.sandboxId })[0];
      if (pod) this.names.reserve(containerName(r.spec, pod.spec), r.id);
    }
    for (const r of this.containers.values()) if (r.finishedAt === undefined && r.pid !== undefined) this.oomWatch.watch(r.id, await this.statsDir(r));
    await this.exits.start();
    this.opts.logger.info('containers recovered', { count: this.containers.size });
  }

  stopWatching(): void {
    this.exits.stop();
    this.oomWatch.closeAll();
  }
}

