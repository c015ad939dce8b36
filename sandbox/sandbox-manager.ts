import { mkdir, rm } from 'node:fs/promises';
import { hostname as hostHostname } from 'node:os';
import { join } from 'node:path';
import { checkCgroupParent, podCgroupDir } from '../cgroups/cgroup-paths.js';
import { applyPodLimits, type PodLimits } from '../cgroups/pod-limits.js';
import type { CgroupDriver } from '../core/config/config.js';
import { nowNs } from '../core/clock.js';
import { errorMessage, FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { failpoint } from '../core/failpoints.js';
import { newId } from '../core/ids.js';
import { matchesSelector } from '../core/labels.js';
import type { Logger } from '../core/logger.js';
import { ObjectStore, type Watcher } from '../core/object-store.js';
import { UndoStack } from '../core/undo.js';
import { loadNative, type ExitWatch, type PinnableNamespace } from '../native/index.js';
import type { PodNetworks } from '../network/pod-network.js';
import { mountShm, pinNamespaces, unmountAndRemove, unpinNamespaces, type Pins } from './namespace-pins.js';
import { type PodFileName, writePodFiles } from './pod-files.js';
import { removePodInitCgroup, startPodInit, stopPodInit, type PodInitPlacement } from './pod-init.js';
import { SandboxRecovery } from './sandbox-recovery.js';
import { isReady, sandboxName, type SandboxRecord, type SandboxSpec, type SandboxState } from './sandbox-spec.js';
import { validateSysctls } from './sysctls.js';
import { step } from '../core/tracing.js';

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
  /** Whether pods can have user namespaces of their own (idmapped layers work here). */
  userNamespaces: () => boolean;
  network: PodNetworks;
  logger: Logger;
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
 * mount, and a record. A request is recorded before its first step and
 * every step of Run registers its undo, so neither a failed Run nor a
 * crash leaves anything behind. The pod's containers are not its business:
 * whoever stops or removes a pod stops or removes them first.
 */
export class SandboxManager {
  private readonly store: ObjectStore<SandboxRecord>;
  /** Runs still in progress, by name: a kubelet retry waits for the first attempt. */
  private readonly inflight = new Map<string, Promise<SandboxRecord>>();
  /** Sandboxes whose RunPodSandbox caller gave up before the answer: its retry gets them. */
  private readonly abandoned = new Set<string>();
  /** Exit watches on the PID-namespace inits, by sandbox id. */
  private readonly initWatches = new Map<string, ExitWatch>();

  constructor(private readonly opts: SandboxManagerOptions) {
    this.store = new ObjectStore<SandboxRecord>(opts.root, 'pods-records', 'pod sandbox');
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
  podFile(id: string, name: PodFileName): string {
    return join(this.podDir(id), name);
  }

  /** Where a pod's init goes: its cgroup parent, for the daemon's driver. */
  private placement(spec: SandboxSpec): PodInitPlacement {
    return { driver: this.opts.cgroupDriver, parent: spec.cgroupParent };
  }

  /**
   * RunPodSandbox. A pod made `restoring` (RestorePod's) is removed by the
   * next start unless `restored` is called first: a crash never leaves it
   * with only some of its containers.
   */
  async run(spec: SandboxSpec, signal?: AbortSignal, opts: { restoring?: boolean } = {}): Promise<SandboxRecord> {
    const name = sandboxName(spec);
    const pending = this.inflight.get(name);
    if (pending) await pending.catch(() => undefined);
    const holder = this.store.names.holder(name);
    if (holder !== undefined && !opts.restoring && this.abandoned.delete(holder)) {
      const existing = this.store.peek(holder);
      if (existing) {
        this.opts.logger.info('returning the pod sandbox an earlier, abandoned RunPodSandbox created', { id: holder, name });
        return existing;
      }
    }
    this.store.names.reserve(name, PENDING);
    const attempt = this.create(spec, name, opts.restoring === true);
    this.inflight.set(name, attempt);
    try {
      const record = await attempt;
      if (signal?.aborted) this.abandoned.add(record.id);
      return record;
    } finally {
      this.inflight.delete(name);
    }
  }

  private async create(spec: SandboxSpec, name: string, restoring: boolean): Promise<SandboxRecord> {
    const { logger, network } = this.opts;
    const undo = new UndoStack();
    undo.push('release name', () => this.store.names.release(name, PENDING));
    try {
      const handler = spec.runtimeHandler || this.opts.defaultRuntimeHandler();
      if (!this.opts.runtimeHandlers().includes(handler)) {
        throw new InvalidArgumentError(`runtime handler "${spec.runtimeHandler}" is not configured (configured: ${this.opts.runtimeHandlers().join(', ')})`);
      }
      checkCgroupParent(this.opts.cgroupDriver, spec.cgroupParent);
      if (spec.userns && !this.opts.userNamespaces()) {
        throw new FailedPreconditionError('user namespaces need idmapped mounts of overlayfs layers, which this kernel does not offer (Linux 5.19 or later)');
      }
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
        restoring: restoring || undefined,
      };
      this.store.writeRecord(intent);
      undo.push('forget the pod record', () => this.store.delete(id));
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
      const pins: Pins = await step('namespaces pinned', () =>
        pinNamespaces(join(runDir, 'ns'), kinds, hostNetwork ? '' : spec.hostname, sysctls, spec.userns),
      );
      undo.push('unpin namespaces', () => unpinNamespaces(pins));
      failpoint('RunPodSandbox/namespaces-pinned');

      // The pod init, /dev/shm and the network need only the pins: made side by side, each undone if it was made.
      const placement = this.placement(spec);
      const shm = this.shmPath(id);
      const [init, shmMounted, attached] = await Promise.allSettled([
        spec.namespaces.pid === 'pod'
          ? step('pod init started', () => startPodInit(id, this.opts.podInit(), pins, join(runDir, 'ns', 'pid'), placement)).then((init) => {
              failpoint('RunPodSandbox/init-started');
              return init;
            })
          : undefined,
        hostIpc
          ? false
          : step('shm mounted', () => mountShm(shm, this.opts.shmSizeBytes())).then(() => {
              failpoint('RunPodSandbox/shm-mounted');
              return true;
            }),
        hostNetwork ? [] : step('network attached', () => network.attach(netRequest(pins.net as string))),
      ]);
      let initPid: number | undefined;
      if (init.status === 'fulfilled' && init.value) {
        const { pid, pin } = init.value;
        [initPid, pins.pid] = [pid, pin];
        undo.push('stop the pod init', () => stopPodInit(id, pid, pin, placement));
      }
      if (shmMounted.status === 'fulfilled' && shmMounted.value) undo.push('unmount /dev/shm', () => unmountAndRemove(shm));
      if (attached.status === 'fulfilled' && !hostNetwork) undo.push('detach pod network', () => network.detach(id, pins.net as string));
      for (const r of [init, shmMounted, attached]) if (r.status === 'rejected') throw r.reason;
      const ips = attached.status === 'fulfilled' ? attached.value : [];

      await writePodFiles((n) => this.podFile(id, n), spec.hostname || hostHostname(), ips, spec.dns);
      failpoint('RunPodSandbox/files-written');

      const record = this.store.save({ ...intent, state: 'ready', pins, initPid, ips, networkAttached: !hostNetwork, shmMounted: !hostIpc, phase: undefined });
      undo.commit();
      this.store.names.release(name, PENDING);
      this.store.names.reserve(name, id);
      this.watchInit(record);
      logger.info('pod sandbox ready', { id, name, ips });
      return record;
    } catch (err) {
      await undo.rollback(logger);
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
          void this.store.locks.run(rec.id, async () => {
            const now = this.store.peek(rec.id);
            if (now?.state !== 'ready' || now.phase !== undefined || now.initPid !== rec.initPid) return;
            this.opts.logger.warn('pod init exited; the pod sandbox is NOTREADY', { id: rec.id, pid: rec.initPid });
            this.store.save({ ...now, state: 'notready', initPid: undefined });
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

  /** For shutdown: the init watches must not keep the process alive. */
  stopWatching(): void {
    for (const id of [...this.initWatches.keys()]) this.unwatchInit(id);
  }

  /** UpdatePodSandboxResources: the limits on the pod's own cgroup, kept in its record. */
  async updateResources(idOrPrefix: string, limits: PodLimits): Promise<void> {
    const id = this.store.get(idOrPrefix).id;
    await this.store.locks.run(id, async () => {
      const rec = this.store.get(id);
      if (!isReady(rec)) throw new FailedPreconditionError(`pod sandbox "${id}" is not ready`);
      if (rec.spec.cgroupParent === '')
        throw new FailedPreconditionError(`pod sandbox "${id}" has no cgroup of its own: it was created without a cgroup_parent`);
      await applyPodLimits(podCgroupDir(this.opts.cgroupDriver, rec.spec.cgroupParent), limits);
      this.store.save({ ...rec, resources: limits });
    });
  }

  /** A `restoring` pod is whole: it outlives restarts from now on. */
  async restored(id: string): Promise<void> {
    await this.store.locks.run(id, async () => {
      this.store.save({ ...this.store.get(id), restoring: undefined });
    });
  }

  /** Tears down the network, /dev/shm and namespaces; the record stays (NOTREADY). Unknown ids succeed. */
  async stop(idOrPrefix: string): Promise<void> {
    const id = this.store.find(idOrPrefix);
    if (id === undefined) return;
    await this.store.locks.run(id, () => this.stopLocked(id));
  }

  private async stopLocked(id: string): Promise<void> {
    let rec = this.store.peek(id);
    if (!rec) return;
    const stopped = rec.state === 'notready' && Object.keys(rec.pins).length === 0 && !rec.networkAttached && !rec.shmMounted;
    if (stopped && rec.phase !== 'stopping') return;
    // Recorded first: a crash part-way is finished by recovery, never taken back to READY.
    const phase = rec.phase ?? 'stopping';
    rec = this.store.save({ ...rec, phase });
    failpoint('StopPodSandbox/intent-recorded');
    this.unwatchInit(id);
    // The pod init, the network and /dev/shm are taken down side by side.
    const r = rec;
    const [initPid, pin, placement, netns] = [r.initPid, r.pins.pid, this.placement(r.spec), r.pins.net ?? ''];
    const results = await Promise.allSettled([
      initPid !== undefined && pin !== undefined
        ? step('pod init stopped', () => stopPodInit(id, initPid, pin, placement))
        : // An init that died on its own (or with the host) leaves its cgroup behind.
          r.spec.namespaces.pid === 'pod'
          ? removePodInitCgroup(id, placement)
          : undefined,
      r.networkAttached
        ? step('network detached', () => this.opts.network.detach(id, netns)).then(() => failpoint('StopPodSandbox/network-detached'))
        : undefined,
      r.shmMounted ? step('shm unmounted', () => unmountAndRemove(this.shmPath(id))).then(() => failpoint('StopPodSandbox/shm-unmounted')) : undefined,
    ]);
    const [, detached, unmounted] = results;
    // What was taken down is recorded even when another part failed: a retry does only the rest.
    if (r.networkAttached || r.shmMounted)
      rec = this.store.save({
        ...r,
        networkAttached: r.networkAttached && detached?.status === 'rejected',
        shmMounted: r.shmMounted && unmounted?.status === 'rejected',
      });
    for (const x of results) if (x.status === 'rejected') throw x.reason;
    const pins = rec.pins;
    await step('namespaces unpinned', () => unpinNamespaces(pins));
    this.store.save({ ...rec, pins: {}, initPid: undefined, state: 'notready', phase: phase === 'stopping' ? undefined : phase });
    this.opts.logger.info('pod sandbox stopped', { id });
  }

  /** Stops if needed and removes everything of the sandbox. Unknown ids succeed. */
  async remove(idOrPrefix: string): Promise<void> {
    const id = this.store.find(idOrPrefix);
    if (id === undefined) return;
    await this.store.locks.run(id, async () => {
      const rec = this.store.peek(id);
      if (!rec) return;
      this.store.save({ ...rec, phase: 'removing' });
      failpoint('RemovePodSandbox/intent-recorded');
      await this.stopLocked(id);
      if (rec.spec.namespaces.pid === 'pod') await removePodInitCgroup(id, this.placement(rec.spec));
      await rm(this.podRunDir(id), { recursive: true, force: true });
      await rm(this.podDir(id), { recursive: true, force: true });
      failpoint('RemovePodSandbox/files-removed');
      this.store.delete(id);
      this.abandoned.delete(id);
      this.opts.logger.info('pod sandbox removed', { id });
    });
  }

  /** Each change of a pod's record, as it is made (container events). */
  watch(watcher: Watcher<SandboxRecord>): () => void {
    return this.store.watch(watcher);
  }

  /** The sandbox for a full id or unique prefix; NotFound otherwise. */
  get(idOrPrefix: string): SandboxRecord {
    return this.store.get(idOrPrefix);
  }

  /** The full id of a known sandbox, by id or unique prefix. */
  find(idOrPrefix: string): string | undefined {
    return this.store.find(idOrPrefix);
  }

  list(filter: SandboxFilter = {}): SandboxRecord[] {
    return this.store
      .values()
      .filter(
        (rec) =>
          (!filter.id || rec.id.startsWith(filter.id)) &&
          (!filter.state || (isReady(rec) ? 'ready' : 'notready') === filter.state) &&
          matchesSelector(rec.spec.labels, filter.labels),
      );
  }

  /** Rebuilds the in-memory view from records and what really exists (see SandboxRecovery). */
  async recover(): Promise<void> {
    await new SandboxRecovery({
      store: this.store,
      root: this.opts.root,
      runroot: this.opts.runroot,
      network: this.opts.network,
      placement: (spec) => this.placement(spec),
      watchInit: (rec) => this.watchInit(rec),
      logger: this.opts.logger,
    }).run();
  }
}
