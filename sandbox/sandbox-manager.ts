import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as netConnect, Socket } from 'node:net';
import { hostname as hostHostname } from 'node:os';
import { join } from 'node:path';
import { nowNs } from '../core/clock.js';
import { errnoCode, errorMessage, FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
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
import { sandboxName, type SandboxRecord, type SandboxSpec, type SandboxState } from './sandbox-spec.js';
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
    this.names.reserve(name, '(being created)');
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
    undo.push('release name', () => this.names.release(name, '(being created)'));
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

      let initPid: number | undefined;
      if (spec.namespaces.pid === 'pod') {
        const init = await this.spawnInit(pins, join(runDir, 'ns', 'pid'));
        initPid = init.pid;
        pins.pid = init.pin;
        undo.push('stop the pod init', () => killInit(init.pid, init.pin));
      }

      if (!hostIpc) {
        const native = loadNative();
        const shm = this.shmPath(id);
        await mkdir(shm, { mode: 0o1777 });
        await native.mount('shm', shm, 'tmpfs', native.constants.MS_NOSUID | native.constants.MS_NODEV | native.constants.MS_NOEXEC, `mode=1777,size=${this.opts.shmSizeBytes()}`);
        undo.push('unmount /dev/shm', () => unmountAndRemove(shm));
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

      const record: SandboxRecord = {
        schema: 1,
        id,
        spec: { ...spec, runtimeHandler: spec.runtimeHandler },
        createdAt: nowNs(),
        state: 'ready',
        pins,
        initPid,
        ips,
        networkAttached: !hostNetwork,
        shmMounted: !hostIpc,
      };
      this.store.write(record);
      undo.commit();
      this.names.release(name, '(being created)');
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

  /** PID 1 of a new PID namespace, inside the pod's net, ipc and uts namespaces. */
  private async spawnInit(pins: Pins, pidPin: string): Promise<{ pid: number; pin: string }> {
    const init = this.opts.podInit();
    const join = [pins.net, pins.ipc, pins.uts].filter((p): p is string => p !== undefined);
    try {
      return await loadNative().spawnPodInit(join, init, ['-P'], pidPin);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new FailedPreconditionError(`pod init ${init} does not exist; install catatonit or set sandbox.pod_init`);
      throw err;
    }
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
            if (!now || now.state !== 'ready' || now.initPid !== rec.initPid) return;
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
    if (rec.networkAttached) {
      const netns = rec.pins.net ?? '';
      await this.opts.network.detach(id, netns);
      rec = this.save({ ...rec, networkAttached: false });
    }
    if (rec.shmMounted) {
      await unmountAndRemove(this.shmPath(id));
      rec = this.save({ ...rec, shmMounted: false });
    }
    this.unwatchInit(id);
    if (rec.initPid !== undefined && rec.pins.pid !== undefined) await killInit(rec.initPid, rec.pins.pid);
    if (Object.keys(rec.pins).length > 0 || rec.state !== 'notready') {
      await unpinNamespaces(rec.pins);
      rec = this.save({ ...rec, pins: {}, initPid: undefined, state: 'notready' });
      this.opts.logger.info('pod sandbox stopped', { id });
    }
  }

  /** Stops if needed and removes everything of the sandbox. Unknown ids succeed. */
  async remove(idOrPrefix: string): Promise<void> {
    const id = this.index.find(idOrPrefix);
    if (id === undefined) return;
    await this.hooks?.removeAll(id);
    await this.locks.run(id, async () => {
      const rec = this.sandboxes.get(id);
      if (!rec) return;
      await this.stopLocked(id);
      await rm(this.podRunDir(id), { recursive: true, force: true });
      await rm(this.podDir(id), { recursive: true, force: true });
      this.store.remove(id);
      this.sandboxes.delete(id);
      this.index.delete(id);
      this.names.release(sandboxName(rec.spec), id);
      this.abandoned.delete(id);
      this.opts.logger.info('pod sandbox removed', { id });
    });
  }

  /** The sandbox for a full id or unique prefix; NotFound otherwise. */
  /**
   * A TCP connection to `port` on the pod's loopback (port-forward): made
   * inside the pod's network namespace, or on the host's for host-network pods.
   */
  async connect(idOrPrefix: string, port: number): Promise<Socket> {
    const pod = this.get(idOrPrefix);
    if (pod.state !== 'ready') throw new FailedPreconditionError(`pod sandbox "${pod.id}" is not ready`);
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
      if (filter.state && rec.state !== filter.state) continue;
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
   * Rebuilds the in-memory view from records. Pins that no longer exist
   * (the run dir was emptied by a reboot) make a pod NOTREADY; directories,
   * mounts and CNI attachments without a record (a crash in the middle of
   * Run) are cleaned up.
   */
  async recover(): Promise<void> {
    const { logger } = this.opts;
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    for (let rec of this.store.loadAll(logger)) {
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
      this.names.reserve(sandboxName(rec.spec), rec.id);
    }
    await this.removeOrphanDirs(mountinfo);
    await this.opts.network.collectOrphans(new Set(this.sandboxes.keys()));
    await this.opts.network.collectGarbage([...this.sandboxes.values()].filter((r) => r.networkAttached).map((r) => r.id));
    logger.info('pod sandboxes recovered', { count: this.sandboxes.size });
  }

  private async removeOrphanDirs(mountinfo: string): Promise<void> {
    const mountPoints = mountinfo.split('\n').map((l) => l.split(' ')[4] ?? '');
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
        // Deepest first, so nested mounts come off before their parents.
        for (const mp of mountPoints.filter((m) => m.startsWith(dir + '/')).sort().reverse()) {
          await unmountAndRemove(mp).catch((err: unknown) => this.opts.logger.warn('cannot unmount orphan', { path: mp, error: errorMessage(err) }));
        }
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
}

/** Ends a pod init, if `pid` still is that init (never a recycled pid). */
async function killInit(pid: number, pin: string): Promise<void> {
  if (!isPodInit(pid, pin)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if (errnoCode(err) !== 'ESRCH') throw err;
  }
}

async function readHostResolvConf(): Promise<string> {
  try {
    return await readFile('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}
