import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, Socket } from 'node:net';
import { hostname as hostHostname } from 'node:os';
import { join } from 'node:path';
import { nowNs } from '../core/clock.js';
import { errnoCode, errorMessage, FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { failpoint } from '../core/failpoints.js';
import { IdIndex } from '../core/id-index.js';
import { matchesSelector } from '../core/labels.js';
import { newId } from '../core/ids.js';
import { KeyedLock } from '../core/keyed-lock.js';
import type { Logger } from '../core/logger.js';
import { NameRegistrar } from '../core/name-registrar.js';
import { RecordStore } from '../core/record-store.js';
import { UndoStack } from '../core/undo.js';
import type { PodNetworks } from '../network/pod-network.js';
import { loadNative, type ExitWatch, type PinnableNamespace } from '../runtime/native/index.js';
import { checkCgroupParent, type CgroupDriver } from '../runtime/cgroup-paths.js';
import { isPodInit, pinAlive, pinNamespaces, unmountAndRemove, unpinNamespaces, type Pins } from './namespace-pins.js';
import { hostsFile, resolvConf } from './pod-files.js';
import { removePodInitCgroup, startPodInit, stopPodInit, type PodInitPlacement } from './pod-init.js';
import { killPodProcesses, mountPointsOf } from './pod-processes.js';
import { isReady, sandboxName, type SandboxRecord, type SandboxSpec, type SandboxState } from './sandbox-spec.js';
import { validateSysctls } from './sysctls.js';

export interface SandboxManagerOptions {
  /** Persistent state: records and pod files. */
  root: string;
  /** Volatile state: namespace pins and /dev/shm mounts. */
  runroot: string;
  shmSizeBytes: () => number;
  /** The init of pods with a pod-wide PID namespace (catatonit). */
  podInit: () => string;
  runtimeHandlers: () => readonly string[];
  defaultRuntimeHandler: () => string;
  /** cgroup_parent is checked against it: kubelet must use the same driver. */
  cgroupDriver: CgroupDriver;
  network: PodNetworks;
  logger: Logger;
}

/** What stopping or removing a pod does to its containers first (set by the container manager). */
export interface SandboxContainerHooks {
  stopAll(sandboxId: string): Promise<void>;
  removeAll(sandboxId: string): Promise<void>;
}

/** The holder of a name while its pod is being created. */
const PENDING = '(being created)';

export interface SandboxFilter {
  id?: string;
  state?: SandboxState;
  labels?: Readonly<Record<string, string>>;
}

/**
 * Pod sandbox lifecycle. A sandbox is a set of pinned namespaces (net, ipc,
 * uts), a /dev/shm tmpfs, a CNI attachment, pod files for containers to
 * mount, and a record. Every step of Run registers its undo, so a failed Run
 * leaves nothing behind.
 */
export class SandboxManager {
  private readonly sandboxes = new Map<string, SandboxRecord>();
  private readonly names = new NameRegistrar('pod sandbox');
  private readonly index = new IdIndex('pod sandbox');
  private readonly locks = new KeyedLock();
  private readonly store: RecordStore<SandboxRecord>;
  /** Runs still in progress, by name: a kubelet retry waits for the first attempt. */
  private readonly inflight = new Map<string, Promise<SandboxRecord>>();
  /** Sandboxes whose RunPodSandbox caller gave up before the answer: its retry gets them. */
  private readonly abandoned = new Set<string>();
  private hooks: SandboxContainerHooks | undefined;
  /** Exit watches on the PID-namespace inits, by sandbox id. */
  private readonly initWatches = new Map<string, ExitWatch>();

  constructor(private readonly opts: SandboxManagerOptions) {
    this.store = new RecordStore<SandboxRecord>(join(opts.root, 'pods-records'), 'pod sandbox');
  }

  setContainerHooks(hooks: SandboxContainerHooks): void {
    this.hooks = hooks;
  }

  private podDir(id: string): string {
    return join(this.opts.root, 'pods', id);
  }

  private podRunDir(id: string): string {
    return join(this.opts.runroot, 'pods', id);
  }

  shmPath(id: string): string {
    return join(this.podRunDir(id), 'shm');
  }

  /** Files containers bind-mount: hostname, hosts, resolv.conf. */
  podFile(id: string, name: 'hostname' | 'hosts' | 'resolv.conf'): string {
    return join(this.podDir(id), name);
  }

  async run(spec: SandboxSpec, signal?: AbortSignal): Promise<SandboxRecord> {
    const name = sandboxName(spec);
    const pending = this.inflight.get(name);
    if (pending) await pending.catch(() => undefined);
    const holder = this.names.holder(name);
    if (holder !== undefined && this.abandoned.delete(holder)) {
      const existing = this.sandboxes.get(holder);
      if (existing) {
        this.opts.logger.info('returning the pod sandbox an earlier, abandoned RunPodSandbox created', { id: holder, name });
        return existing;
      }
    }
    this.names.reserve(name, PENDING);
    const attempt = this.create(spec, name);
    this.inflight.set(name, attempt);
    try {
      const record = await attempt;
      if (signal?.aborted) this.abandoned.add(record.id);
      return record;
    } finally {
      this.inflight.delete(name);
    }
  }

  private async create(spec: SandboxSpec, name: string): Promise<SandboxRecord> {
    const { logger, network } = this.opts;
    const undo = new UndoStack();
    undo.push('release name', () => this.names.release(name, PENDING));
    try {
      const handler = spec.runtimeHandler || this.opts.defaultRuntimeHandler();
      if (!this.opts.runtimeHandlers().includes(handler)) {
        throw new InvalidArgumentError(`runtime handler "${spec.runtimeHandler}" is not configured (configured: ${this.opts.runtimeHandlers().join(', ')})`);
      }
      checkCgroupParent(this.opts.cgroupDriver, spec.cgroupParent);
      const hostNetwork = spec.namespaces.network === 'node';
      const hostIpc = spec.namespaces.ipc === 'node';
      const sysctls = validateSysctls(spec.sysctls, spec.namespaces.network, spec.namespaces.ipc);
      const id = newId();
      const netRequest = (netns: string) => ({
        podId: id,
        name: spec.name,
        namespace: spec.namespace,
        uid: spec.uid,
        netns,
        portMappings: spec.portMappings,
        dns: spec.dns,
        annotations: spec.annotations,
      });
      // Bad annotations are the caller's error: find them before creating anything.
      if (!hostNetwork) network.capabilityArgs(netRequest(''));

      // The intent comes first: from here on a crash leaves a record that recovery undoes.
      const intent: SandboxRecord = {
        schema: 1,
        id,
        spec: { ...spec, runtimeHandler: spec.runtimeHandler },
        createdAt: nowNs(),
        state: 'notready',
        pins: {},
        initPid: undefined,
        ips: [],
        networkAttached: false,
        shmMounted: false,
        phase: 'creating',
      };
      this.store.write(intent);
      undo.push('forget the pod record', () => this.store.remove(id));
      failpoint('RunPodSandbox/intent-recorded');

      const runDir = this.podRunDir(id);
      const dir = this.podDir(id);
      await mkdir(join(runDir, 'ns'), { recursive: true, mode: 0o711 });
      await mkdir(dir, { recursive: true, mode: 0o711 });
      undo.push('remove pod directories', async () => {
        await rm(runDir, { recursive: true, force: true });
        await rm(dir, { recursive: true, force: true });
      });

      const kinds: PinnableNamespace[] = [];
      if (!hostNetwork) kinds.push('net', 'uts');
      if (!hostIpc) kinds.push('ipc');
      const pins: Pins = await pinNamespaces(join(runDir, 'ns'), kinds, hostNetwork ? '' : spec.hostname, sysctls);
      undo.push('unpin namespaces', () => unpinNamespaces(pins));
      failpoint('RunPodSandbox/namespaces-pinned');

      let initPid: number | undefined;
      if (spec.namespaces.pid === 'pod') {
        const init = await startPodInit(id, this.opts.podInit(), pins, join(runDir, 'ns', 'pid'), this.placement(spec));
        initPid = init.pid;
        pins.pid = init.pin;
        undo.push('stop the pod init', () => stopPodInit(id, init.pid, init.pin, this.placement(spec)));
        failpoint('RunPodSandbox/init-started');
      }

      if (!hostIpc) {
        const native = loadNative();
        const shm = this.shmPath(id);
        await mkdir(shm, { mode: 0o1777 });
        await native.mount('shm', shm, 'tmpfs', native.constants.MS_NOSUID | native.constants.MS_NODEV | native.constants.MS_NOEXEC, `mode=1777,size=${this.opts.shmSizeBytes()}`);
        undo.push('unmount /dev/shm', () => unmountAndRemove(shm));
        failpoint('RunPodSandbox/shm-mounted');
      }

      let ips: string[] = [];
      if (!hostNetwork) {
        ips = await network.attach(netRequest(pins.net as string));
        undo.push('detach pod network', () => network.detach(id, pins.net as string));
      }

      const podHostname = spec.hostname || hostHostname();
      await writeFile(this.podFile(id, 'hostname'), podHostname + '\n');
      await writeFile(this.podFile(id, 'hosts'), hostsFile(podHostname, ips));
      await writeFile(this.podFile(id, 'resolv.conf'), resolvConf(spec.dns, await readHostResolvConf()));
      failpoint('RunPodSandbox/files-written');

      const record: SandboxRecord = { ...intent, state: 'ready', pins, initPid, ips, networkAttached: !hostNetwork, shmMounted: !hostIpc, phase: undefined };
      this.store.write(record);
      undo.commit();
      this.names.release(name, PENDING);
      this.names.reserve(name, id);
      this.index.add(id);
      this.sandboxes.set(id, record);
      this.watchInit(record);
      logger.info('pod sandbox ready', { id, name, ips });
      return record;
    } catch (err) {
      await undo.rollback(logger);
      throw err;
    }
  }

  /** Where the pod's init goes: its cgroup parent, for the daemon's driver. */
  private placement(spec: SandboxSpec): PodInitPlacement {
    return { driver: this.opts.cgroupDriver, parent: spec.cgroupParent };
  }

  /** A pod whose PID 1 died can take no more containers: it turns NOTREADY, as soon as it happens. */
  private watchInit(rec: SandboxRecord): void {
    if (rec.initPid === undefined) return;
    try {
      this.initWatches.set(
        rec.id,
        loadNative().watchExit(rec.initPid, () => {
          this.initWatches.delete(rec.id);
          void this.locks.run(rec.id, async () => {
            const now = this.sandboxes.get(rec.id);
            if (!now || now.state !== 'ready' || now.phase !== undefined || now.initPid !== rec.initPid) return;
            this.opts.logger.warn('pod init exited; the pod sandbox is NOTREADY', { id: rec.id, pid: rec.initPid });
            this.save({ ...now, state: 'notready', initPid: undefined });
          });
        }),
      );
    } catch (err) {
      this.opts.logger.warn('cannot watch pod init', { id: rec.id, error: errorMessage(err) });
    }
  }

  private unwatchInit(id: string): void {
    this.initWatches.get(id)?.close();
    this.initWatches.delete(id);
  }

  /** Tears down the network, /dev/shm and namespaces; the record stays (NOTREADY). Unknown ids succeed. */
  async stop(idOrPrefix: string): Promise<void> {
    const id = this.index.find(idOrPrefix);
    if (id === undefined) return;
    await this.hooks?.stopAll(id);
    await this.locks.run(id, () => this.stopLocked(id));
  }

  private async stopLocked(id: string): Promise<void> {
    let rec = this.sandboxes.get(id);
    if (!rec) return;
    const stopped = rec.state === 'notready' && Object.keys(rec.pins).length === 0 && !rec.networkAttached && !rec.shmMounted;
    if (stopped && rec.phase !== 'stopping') return;
    // Recorded first: a crash part-way is finished by recovery, never taken back to READY.
    const phase = rec.phase ?? 'stopping';
    rec = this.save({ ...rec, phase });
    failpoint('StopPodSandbox/intent-recorded');
    this.unwatchInit(id);
    if (rec.initPid !== undefined && rec.pins.pid !== undefined) await stopPodInit(id, rec.initPid, rec.pins.pid, this.placement(rec.spec));
    // An init that died on its own (or with the host) leaves its cgroup behind.
    else if (rec.spec.namespaces.pid === 'pod') await removePodInitCgroup(id, this.placement(rec.spec));
    if (rec.networkAttached) {
      await this.opts.network.detach(id, rec.pins.net ?? '');
      failpoint('StopPodSandbox/network-detached');
      rec = this.save({ ...rec, networkAttached: false });
    }
    if (rec.shmMounted) {
      await unmountAndRemove(this.shmPath(id));
      failpoint('StopPodSandbox/shm-unmounted');
      rec = this.save({ ...rec, shmMounted: false });
    }
    await unpinNamespaces(rec.pins);
    this.save({ ...rec, pins: {}, initPid: undefined, state: 'notready', phase: phase === 'stopping' ? undefined : phase });
    this.opts.logger.info('pod sandbox stopped', { id });
  }

  /** Stops if needed and removes everything of the sandbox. Unknown ids succeed. */
  async remove(idOrPrefix: string): Promise<void> {
    const id = this.index.find(idOrPrefix);
    if (id === undefined) return;
    await this.hooks?.removeAll(id);
    await this.locks.run(id, async () => {
      const rec = this.sandboxes.get(id);
      if (!rec) return;
      this.save({ ...rec, phase: 'removing' });
      failpoint('RemovePodSandbox/intent-recorded');
      await this.stopLocked(id);
      if (rec.spec.namespaces.pid === 'pod') await removePodInitCgroup(id, this.placement(rec.spec));
      await rm(this.podRunDir(id), { recursive: true, force: true });
      await rm(this.podDir(id), { recursive: true, force: true });
      failpoint('RemovePodSandbox/files-removed');
      this.forget(rec);
      this.opts.logger.info('pod sandbox removed', { id });
    });
  }

  private forget(rec: SandboxRecord): void {
    this.store.remove(rec.id);
    this.sandboxes.delete(rec.id);
    this.index.delete(rec.id);
    this.names.release(sandboxName(rec.spec), rec.id);
    this.abandoned.delete(rec.id);
  }

  /** The sandbox for a full id or unique prefix; NotFound otherwise. */
  /**
   * A TCP connection to `port` on the pod's loopback (port-forward): made
   * inside the pod's network namespace, or on the host's for host-network pods.
   */
  async connect(idOrPrefix: string, port: number): Promise<Socket> {
    const pod = this.get(idOrPrefix);
    if (!isReady(pod)) throw new FailedPreconditionError(`pod sandbox "${pod.id}" is not ready`);
    if (!pod.pins.net) {
      return new Promise((resolve, reject) => {
        const s = netConnect({ host: '127.0.0.1', port }, () => {
          s.off('error', reject);
          resolve(s);
        });
        s.once('error', reject);
      });
    }
    const fd = await loadNative().connectInNetns(pod.pins.net, port);
    return new Socket({ fd, readable: true, writable: true });
  }

  get(idOrPrefix: string): SandboxRecord {
    return this.sandboxes.get(this.index.resolve(idOrPrefix)) as SandboxRecord;
  }

  list(filter: SandboxFilter = {}): SandboxRecord[] {
    const out: SandboxRecord[] = [];
    for (const rec of this.sandboxes.values()) {
      if (filter.id && !rec.id.startsWith(filter.id)) continue;
      if (filter.state && (isReady(rec) ? 'ready' : 'notready') !== filter.state) continue;
      if (!matchesSelector(rec.spec.labels, filter.labels)) continue;
      out.push(rec);
    }
    return out;
  }

  private save(rec: SandboxRecord): SandboxRecord {
    this.store.write(rec);
    this.sandboxes.set(rec.id, rec);
    return rec;
  }

  /**
   * Rebuilds the in-memory view from records. A request a crash cut short
   * is finished (stop, remove) or undone (create) first. Pins that no
   * longer exist (the run dir was emptied by a reboot) make a pod NOTREADY;
   * directories, mounts and CNI attachments without a record are cleaned up.
   */
  async recover(): Promise<void> {
    const { logger } = this.opts;
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    const mounts = mountPointsOf(mountinfo);
    for (const loaded of this.store.loadAll(logger)) {
      let rec: SandboxRecord | undefined = loaded;
      if (rec.phase !== undefined) rec = await this.finishInterrupted(rec, mounts);
      if (!rec) continue;
      const pinsAlive = Object.values(rec.pins).every((p) => pinAlive(p, mountinfo));
      if (rec.state === 'ready' && !pinsAlive) {
        logger.warn('pod sandbox lost its namespaces (host rebooted?); it is NOTREADY now', { id: rec.id });
        rec = { ...rec, state: 'notready', pins: {}, initPid: undefined, shmMounted: false };
        this.store.write(rec);
      } else if (rec.state === 'ready' && rec.initPid !== undefined && !isPodInit(rec.initPid, rec.pins.pid ?? '')) {
        logger.warn('pod init exited while the daemon was down; the pod sandbox is NOTREADY', { id: rec.id, pid: rec.initPid });
        rec = { ...rec, state: 'notready', initPid: undefined };
        this.store.write(rec);
      }
      this.sandboxes.set(rec.id, rec);
      if (rec.state === 'ready') this.watchInit(rec);
      this.index.add(rec.id);
      // A pod being removed keeps no name: kubelet may create its successor meanwhile.
      if (rec.phase !== 'removing') this.names.reserve(sandboxName(rec.spec), rec.id);
    }
    await this.removeOrphanDirs(mounts);
    await this.opts.network.collectOrphans(new Set(this.sandboxes.keys()));
    await this.opts.network.collectGarbage([...this.sandboxes.values()].filter((r) => r.networkAttached).map((r) => r.id));
    logger.info('pod sandboxes recovered', { count: this.sandboxes.size });
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
    const { logger } = this.opts;
    logger.info('finishing a pod sandbox request the daemon was stopped in', { id: rec.id, phase: rec.phase });
    const nsDir = join(this.podRunDir(rec.id), 'ns');
    await killPodProcesses(nsDir, mounts);
    await removePodInitCgroup(rec.id, this.placement(rec.spec));
    const netns = join(nsDir, 'net');
    let networkAttached = false;
    await this.opts.network.detach(rec.id, mounts.has(netns) ? netns : '').catch((err: unknown) => {
      networkAttached = true;
      logger.warn('cannot release the network of an interrupted pod sandbox; StopPodSandbox will try again', { id: rec.id, error: errorMessage(err) });
    });
    await unmountAndRemove(this.shmPath(rec.id));
    for (const name of await readdir(nsDir).catch(() => [] as string[])) await unmountAndRemove(join(nsDir, name));
    if (rec.phase === 'stopping') {
      const stopped: SandboxRecord = { ...rec, state: 'notready', pins: {}, initPid: undefined, networkAttached, shmMounted: false, phase: undefined };
      this.store.write(stopped);
      return stopped;
    }
    if (networkAttached) {
      // Kept as a stopped pod, so that RemovePodSandbox (kubelet retries it) tries the network again.
      const kept: SandboxRecord = { ...rec, state: 'notready', pins: {}, initPid: undefined, networkAttached, shmMounted: false, phase: rec.phase === 'creating' ? 'removing' : rec.phase };
      this.store.write(kept);
      return kept;
    }
    await rm(this.podRunDir(rec.id), { recursive: true, force: true });
    await rm(this.podDir(rec.id), { recursive: true, force: true });
    this.store.remove(rec.id);
    return undefined;
  }

  private async removeOrphanDirs(mounts: ReadonlySet<string>): Promise<void> {
    for (const base of [join(this.opts.runroot, 'pods'), join(this.opts.root, 'pods')]) {
      let entries: string[];
      try {
        entries = await readdir(base);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue;
        throw err;
      }
      for (const id of entries) {
        if (this.sandboxes.has(id)) continue;
        const dir = join(base, id);
        this.opts.logger.info('removing what an interrupted RunPodSandbox left', { dir });
        await killPodProcesses(join(dir, 'ns'), mounts);
        // Deepest first, so nested mounts come off before their parents.
        for (const mp of [...mounts].filter((m) => m.startsWith(dir + '/')).sort().reverse()) {
          await unmountAndRemove(mp).catch((err: unknown) => this.opts.logger.warn('cannot unmount orphan', { path: mp, error: errorMessage(err) }));
        }
        await rm(dir, { recursive: true, force: true });
      }
    }
  }

  /** For shutdown: the init watches must not keep the process alive. */
  stopWatching(): void {
    for (const id of [...this.initWatches.keys()]) this.unwatchInit(id);
  }
}

async function readHostResolvConf(): Promise<string> {
  try {
    return await readFile('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}
