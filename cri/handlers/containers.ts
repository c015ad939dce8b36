import { posix } from 'node:path';
import { InvalidArgumentError } from '../../core/errors.js';
import { containerState, type ContainerRecord } from '../../runtime/container-record.js';
import type { ContainerManager, ContainerFilter } from '../../runtime/container-manager.js';
import type { ContainerResources, ContainerSpec, Propagation } from '../../runtime/container-spec.js';
import type { ContainerStatsSample } from '../../runtime/container-manager.js';
import type { Pressure, PsiLine } from '../../runtime/cgroup-stats.js';
import type { AppArmorChoice } from '../../runtime/lsm.js';
import type { SeccompChoice } from '../../runtime/seccomp.js';
import {
  ContainerState,
  MountPropagation,
  NamespaceMode,
  Signal,
  type Container,
  type ContainerConfig,
  type ContainerFilter as CriContainerFilter,
  type ContainerStats,
  type LinuxContainerResources,
  type ListContainersResponse,
  type PsiStats,
  type SecurityProfile,
  SecurityProfile_ProfileType,
  type RuntimeServiceMethods,
} from '../generated/api.js';
import type { Init, ServiceHandlers } from '../service-types.js';
import { chunked } from '../stream-chunks.js';
import { codecFor } from '../codec.js';
import { absolutePath, noNul, objectName, optionalAbsolutePath, plain, stringMap, unixId } from '../validate.js';
import { checkResources } from '../../runtime/resource-limits.js';
import { EncodingCache, encodedRepeated } from '../encoded.js';

const PROPAGATION: Record<MountPropagation, Propagation> = {
  [MountPropagation.PROPAGATION_PRIVATE]: 'private',
  [MountPropagation.PROPAGATION_HOST_TO_CONTAINER]: 'host-to-container',
  [MountPropagation.PROPAGATION_BIDIRECTIONAL]: 'bidirectional',
};

const STATES: Record<ReturnType<typeof containerState>, ContainerState> = {
  created: ContainerState.CONTAINER_CREATED,
  running: ContainerState.CONTAINER_RUNNING,
  exited: ContainerState.CONTAINER_EXITED,
};

/** `SIGNAL_SIGTERM` → `SIGTERM`; the runtime default is empty. */
function signalName(s: Signal): string {
  if (s === Signal.SIGNAL_RUNTIME_DEFAULT) return '';
  const name = Signal[s];
  if (name === undefined) throw new InvalidArgumentError(`unknown stop signal ${s}`);
  return name.replace(/^SIGNAL_/, '').replace(/PLUS(\d+)$/, '+$1').replace(/MINUS(\d+)$/, '-$1');
}

function pidMode(mode: NamespaceMode | undefined): ContainerSpec['security']['pidMode'] {
  switch (mode ?? NamespaceMode.POD) {
    case NamespaceMode.CONTAINER:
      return 'container';
    case NamespaceMode.NODE:
      return 'node';
    case NamespaceMode.TARGET:
      return 'target';
    default:
      return 'pod';
  }
}

/** LinuxContainerResources in domain terms, checked as the kernel will check them. */
export function resourcesFrom(res: LinuxContainerResources | undefined): ContainerResources {
  const r = resourceValues(res);
  checkResources(r);
  return r;
}

function resourceValues(res: LinuxContainerResources | undefined): ContainerResources {
  const num = (v: bigint | undefined) => Number(v ?? 0n);
  return {
    cpuPeriod: num(res?.cpu_period),
    cpuQuota: num(res?.cpu_quota),
    cpuShares: num(res?.cpu_shares),
    memoryLimit: num(res?.memory_limit_in_bytes),
    memorySwapLimit: num(res?.memory_swap_limit_in_bytes),
    oomScoreAdj: num(res?.oom_score_adj),
    cpusetCpus: res?.cpuset_cpus ?? '',
    cpusetMems: res?.cpuset_mems ?? '',
    hugepageLimits: (res?.hugepage_limits ?? []).map((h) => ({ pageSize: h.page_size, limit: Number(h.limit) })),
    unified: { ...(res?.unified ?? {}) },
  };
}

type ProfileRequest = { kind: 'runtime-default' } | { kind: 'unconfined' } | { kind: 'localhost'; ref: string };

/** A SecurityProfile message (seccomp or AppArmor) in domain terms. */
function profileRequest(profile: SecurityProfile, what: string): ProfileRequest {
  switch (profile.profile_type) {
    case SecurityProfile_ProfileType.RuntimeDefault:
      return { kind: 'runtime-default' };
    case SecurityProfile_ProfileType.Unconfined:
      return { kind: 'unconfined' };
    case SecurityProfile_ProfileType.Localhost:
      if (!profile.localhost_ref) throw new InvalidArgumentError(`${what}: a Localhost profile needs localhost_ref`);
      return { kind: 'localhost', ref: profile.localhost_ref };
    default:
      throw new InvalidArgumentError(`${what}: unknown profile type ${String(profile.profile_type)}`);
  }
}

/**
 * The seccomp profile asked for: the SecurityProfile message, else the
 * deprecated path string; neither means Unconfined, as in Kubernetes.
 */
export function seccompChoice(profile: SecurityProfile | undefined, legacyPath: string): SeccompChoice {
  if (profile) {
    const r = profileRequest(profile, 'seccomp');
    return r.kind === 'localhost' ? { kind: 'localhost', path: r.ref } : r;
  }
  if (legacyPath === 'runtime/default' || legacyPath === 'docker/default') return { kind: 'runtime-default' };
  if (legacyPath.startsWith('localhost/')) return { kind: 'localhost', path: legacyPath.slice('localhost'.length) };
  return { kind: 'unconfined' };
}

/**
 * The AppArmor profile asked for: the SecurityProfile message, else the
 * deprecated string ("runtime/default", "unconfined", "localhost/NAME").
 */
export function appArmorChoice(profile: SecurityProfile | undefined, legacy: string): AppArmorChoice {
  if (profile) {
    const r = profileRequest(profile, 'apparmor');
    return r.kind === 'localhost' ? { kind: 'localhost', profile: r.ref.replace(/^localhost\//, '') } : r;
  }
  if (legacy === '') return { kind: 'unset' };
  if (legacy === 'runtime/default') return { kind: 'runtime-default' };
  if (legacy === 'unconfined') return { kind: 'unconfined' };
  if (legacy.startsWith('localhost/') && legacy.length > 'localhost/'.length) return { kind: 'localhost', profile: legacy.slice('localhost/'.length) };
  throw new InvalidArgumentError(`apparmor_profile ${JSON.stringify(legacy)} is not runtime/default, unconfined or localhost/<name>`);
}

/** ContainerConfig → the domain's ContainerSpec, refusing what the runtime or the kernel would refuse later. */
export function containerSpecFrom(config: ContainerConfig | undefined): ContainerSpec {
  if (!config?.metadata) throw new InvalidArgumentError('config.metadata is required');
  if (config.metadata.name === '') throw new InvalidArgumentError('config.metadata.name is empty');
  objectName('config.metadata.name', config.metadata.name);
  if (!config.image?.image) throw new InvalidArgumentError('config.image.image is empty');
  plain('config.image.image', config.image.image);
  const sec = config.linux?.security_context;
  const res = config.linux?.resources;
  const runAsUser = sec?.run_as_user ? unixId('run_as_user', sec.run_as_user.value) : undefined;
  const runAsGroup = sec?.run_as_group ? unixId('run_as_group', sec.run_as_group.value) : undefined;
  const runAsUsername = plain('run_as_username', sec?.run_as_username ?? '', 256);
  // kubelet never sends a group alone: without a user it would pair with whatever user the image names.
  if (runAsGroup !== undefined && runAsUser === undefined && runAsUsername === '') throw new InvalidArgumentError('run_as_group needs run_as_user or run_as_username');
  return {
    name: config.metadata.name,
    attempt: config.metadata.attempt,
    image: config.image.image,
    command: config.command.map((a, i) => noNul(`config.command[${i}]`, a)),
    args: config.args.map((a, i) => noNul(`config.args[${i}]`, a)),
    workingDir: optionalAbsolutePath('config.working_dir', config.working_dir),
    envs: config.envs.map((e, i) => {
      if (e.key === '' || e.key.includes('=')) throw new InvalidArgumentError(`config.envs[${i}].key ${JSON.stringify(e.key)} is empty or holds "="`);
      return [noNul(`config.envs[${i}].key`, e.key), noNul(`config.envs[${i}].value`, Buffer.from(e.value).toString('utf8'))];
    }),
    mounts: config.mounts.map((m, i) => {
      const propagation = PROPAGATION[m.propagation];
      if (propagation === undefined) throw new InvalidArgumentError(`config.mounts[${i}]: unknown propagation ${m.propagation}`);
      if (m.container_path === '' || m.host_path === '') throw new InvalidArgumentError(`config.mounts[${i}]: container_path and host_path are required`);
      const containerPath = absolutePath(`config.mounts[${i}].container_path`, m.container_path);
      // The root is the image's, and /proc is the kernel's: runtimes refuse mounts over either.
      if (posix.normalize(containerPath) === '/' || /^\/proc(\/|$)/.test(posix.normalize(containerPath))) {
        throw new InvalidArgumentError(`config.mounts[${i}].container_path ${JSON.stringify(containerPath)} cannot be mounted over`);
      }
      return {
        containerPath,
        hostPath: absolutePath(`config.mounts[${i}].host_path`, m.host_path),
        readonly: m.readonly,
        recursiveReadOnly: m.recursive_read_only,
        propagation,
        selinuxRelabel: m.selinux_relabel,
      };
    }),
    devices: config.devices.map((d, i) => {
      // Empty permissions mean "rwm", an empty container path the host path (as crictl sends them).
      if (!/^[rwm]{0,3}$/.test(d.permissions)) throw new InvalidArgumentError(`config.devices[${i}].permissions ${JSON.stringify(d.permissions)} must be some of "rwm"`);
      return { containerPath: optionalAbsolutePath(`config.devices[${i}].container_path`, d.container_path), hostPath: absolutePath(`config.devices[${i}].host_path`, d.host_path), permissions: d.permissions };
    }),
    labels: stringMap('config.labels', config.labels),
    annotations: stringMap('config.annotations', config.annotations),
    logPath: plain('config.log_path', config.log_path),
    stdin: config.stdin,
    stdinOnce: config.stdin_once,
    tty: config.tty,
    resources: resourcesFrom(res),
    security: {
      privileged: sec?.privileged ?? false,
      capabilitiesAdd: sec?.capabilities?.add_capabilities ?? [],
      capabilitiesDrop: sec?.capabilities?.drop_capabilities ?? [],
      runAsUser,
      runAsGroup,
      runAsUsername,
      supplementalGroups: (sec?.supplemental_groups ?? []).map((g, i) => unixId(`supplemental_groups[${i}]`, g)),
      readonlyRootfs: sec?.readonly_rootfs ?? false,
      noNewPrivs: sec?.no_new_privs ?? false,
      maskedPaths: (sec?.masked_paths ?? []).map((p, i) => absolutePath(`masked_paths[${i}]`, p)),
      readonlyPaths: (sec?.readonly_paths ?? []).map((p, i) => absolutePath(`readonly_paths[${i}]`, p)),
      pidMode: pidMode(sec?.namespace_options?.pid),
      targetId: sec?.namespace_options?.target_id ?? '',
      seccomp: seccompChoice(sec?.seccomp, sec?.seccomp_profile_path ?? ''),
      appArmor: appArmorChoice(sec?.apparmor, sec?.apparmor_profile ?? ''),
      selinux: sec?.selinux_options ? { user: sec.selinux_options.user, role: sec.selinux_options.role, type: sec.selinux_options.type, level: sec.selinux_options.level } : undefined,
    },
    stopSignal: signalName(config.stop_signal),
  };
}

/** The domain filter; undefined when nothing can match (a state Cradle never reports, such as UNKNOWN). */
function criFilter(f: CriContainerFilter | undefined): ContainerFilter | undefined {
  if (!f) return {};
  const state = f.state ? (['created', 'running', 'exited'] as const).find((s) => STATES[s] === f.state?.state) : undefined;
  if (f.state && state === undefined) return undefined;
  return {
    id: f.id || undefined,
    sandboxId: f.pod_sandbox_id || undefined,
    state,
    labels: Object.keys(f.label_selector).length > 0 ? f.label_selector : undefined,
  };
}

function listed(containers: ContainerManager, f: CriContainerFilter | undefined): ContainerRecord[] {
  const filter = criFilter(f);
  return filter ? containers.list(filter) : [];
}

function listItem(rec: ContainerRecord): Init<Container> {
  return {
    id: rec.id,
    pod_sandbox_id: rec.sandboxId,
    metadata: { name: rec.spec.name, attempt: rec.spec.attempt },
    image: { image: rec.spec.image },
    image_ref: rec.imageId,
    image_id: rec.imageId,
    state: STATES[containerState(rec)],
    created_at: rec.createdAt,
    labels: rec.spec.labels,
    annotations: rec.spec.annotations,
  };
}

function requireId(id: string): string {
  if (id === '') throw new InvalidArgumentError('container_id is empty');
  return id;
}


/** PSI in CRI's shape; unset where the kernel gives none. */
export function criPsi(p: Pressure | undefined): PsiStats | undefined {
  if (!p) return undefined;
  const line = (l: PsiLine | undefined) => (l ? { Total: l.total, Avg10: l.avg10, Avg60: l.avg60, Avg300: l.avg300 } : undefined);
  return { Full: line(p.full), Some: line(p.some) };
}

export function criStats(rec: ContainerRecord, sample: ContainerStatsSample, layerMountpoint: string): Init<ContainerStats> {
  const cg = sample.cgroup;
  const u = (v: bigint | number | undefined) => (v === undefined ? undefined : { value: BigInt(v) });
  const timestamp = sample.timestamp;
  // As cAdvisor reports it: what the limit leaves beyond the working set; unset without a limit.
  const available = cg?.memoryLimit !== undefined ? (cg.memoryLimit > cg.workingSet ? cg.memoryLimit - cg.workingSet : 0n) : undefined;
  const swapAvailable = cg?.swapLimit !== undefined && cg.swapUsage !== undefined ? (cg.swapLimit > cg.swapUsage ? cg.swapLimit - cg.swapUsage : 0n) : undefined;
  return {
    attributes: { id: rec.id, metadata: { name: rec.spec.name, attempt: rec.spec.attempt }, labels: rec.spec.labels, annotations: rec.spec.annotations },
    cpu: { timestamp, usage_core_nano_seconds: u(cg?.cpuUsageNs ?? 0n), usage_nano_cores: u(sample.nanoCores ?? 0n), psi: criPsi(cg?.psi.cpu) },
    memory: {
      timestamp,
      working_set_bytes: u(cg?.workingSet ?? 0n),
      available_bytes: u(available),
      usage_bytes: u(cg?.memoryUsage ?? 0n),
      rss_bytes: u(cg?.rss ?? 0n),
      page_faults: u(cg?.pageFaults ?? 0n),
      major_page_faults: u(cg?.majorPageFaults ?? 0n),
      psi: criPsi(cg?.psi.memory),
    },
    swap: { timestamp, swap_usage_bytes: u(cg?.swapUsage), swap_available_bytes: u(swapAvailable) },
    io: { timestamp, psi: criPsi(cg?.psi.io) },
    writable_layer: { timestamp: sample.timestamp, fs_id: { mountpoint: layerMountpoint }, used_bytes: u(sample.writable.bytes), inodes_used: u(sample.writable.inodes) },
  };
}

export function containerHandlers(containers: ContainerManager): ServiceHandlers<RuntimeServiceMethods> {
  const encoded = new EncodingCache<ContainerRecord>((rec) => codecFor('Container').encode(listItem(rec)));
  return {
    CreateContainer: async (req) => {
      if (req.pod_sandbox_id === '') throw new InvalidArgumentError('pod_sandbox_id is empty');
      const rec = await containers.create(req.pod_sandbox_id, containerSpecFrom(req.config));
      return { container_id: rec.id };
    },

    StartContainer: async (req) => {
      await containers.start(requireId(req.container_id));
      return {};
    },

    StopContainer: async (req) => {
      await containers.stop(requireId(req.container_id), Math.max(0, Number(req.timeout)));
      return {};
    },

    RemoveContainer: async (req) => {
      await containers.remove(requireId(req.container_id));
      return {};
    },

    ContainerStatus: async (req) => {
      const rec = containers.get(requireId(req.container_id));
      const state = containerState(rec);
      return {
        status: {
          id: rec.id,
          metadata: { name: rec.spec.name, attempt: rec.spec.attempt },
          state: STATES[state],
          created_at: rec.createdAt,
          started_at: rec.startedAt ?? 0n,
          finished_at: rec.finishedAt ?? 0n,
          exit_code: state === 'exited' ? (rec.exitCode ?? 0) : 0,
          image: { image: rec.spec.image },
          image_ref: rec.imageId,
          image_id: rec.imageId,
          reason: rec.reason,
          message: rec.message,
          labels: rec.spec.labels,
          annotations: rec.spec.annotations,
          mounts: rec.spec.mounts.map((m) => ({
            container_path: m.containerPath,
            host_path: m.hostPath,
            readonly: m.readonly,
            recursive_read_only: m.recursiveReadOnly,
            propagation: Number(Object.entries(PROPAGATION).find(([, p]) => p === m.propagation)?.[0] ?? 0),
          })),
          log_path: rec.logPath,
        },
        info: req.verbose ? { info: JSON.stringify({ pid: rec.pid, sandboxId: rec.sandboxId, runtimeHandler: rec.runtimeHandler, stopSignal: rec.stopSignal, spec: rec.spec }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) } : {},
      };
    },

    ExecSync: async (req) => {
      const r = await containers.exec(requireId(req.container_id), req.cmd.map((a, i) => noNul(`cmd[${i}]`, a)), Math.max(0, Number(req.timeout)));
      return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
    },

    UpdateContainerResources: async (req) => {
      await containers.updateResources(requireId(req.container_id), resourcesFrom(req.linux));
      return {};
    },

    ReopenContainerLog: async (req) => {
      await containers.reopenLog(requireId(req.container_id));
      return {};
    },

    ContainerStats: async (req) => {
      const rec = containers.get(requireId(req.container_id));
      return { stats: criStats(rec, await containers.stats(rec), containers.layersDir) };
    },

    ListContainerStats: async (req) => {
      const f = req.filter;
      const recs = containers.list({
        id: f?.id || undefined,
        sandboxId: f?.pod_sandbox_id || undefined,
        labels: f && Object.keys(f.label_selector).length > 0 ? f.label_selector : undefined,
      });
      return { stats: await Promise.all(recs.map(async (rec) => criStats(rec, await containers.stats(rec), containers.layersDir))) };
    },

    // ListContainersResponse.containers is field 1.
    ListContainers: async (req) => encodedRepeated(1, listed(containers, req.filter).map((r) => encoded.get(r))) as Init<ListContainersResponse>,

    StreamContainers: async function* (req) {
      const all = listed(containers, req.filter).map(listItem);
      for (const chunk of chunked(all)) yield { containers: chunk };
    },
  };
}

