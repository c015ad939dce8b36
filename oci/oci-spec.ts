import { InvalidArgumentError } from '../core/errors.js';
import type { ImageConfigInfo } from './image-config.js';
import type { IdMapping, NamespacePaths, UserNamespace } from './namespaces.js';
import type { ContainerSpec, HostDevice, MountSpec } from './container-spec.js';
import type { ProcessUser } from './user.js';
import { rootfsPropagation } from './mount-propagation.js';
import { ociResources } from './oci-resources.js';
import { seccompSection } from './seccomp.js';
import type { Rlimit } from '../core/ulimit.js';

/** The paths kubelet asks to mask when it sends none itself (crictl sends none). */
export const DEFAULT_MASKED_PATHS = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface SpecContext {
  id: string;
  spec: ContainerSpec;
  image: ImageConfigInfo;
  rootfs: string;
  user: ProcessUser;
  capabilities: string[];
  /** The pod's namespace files; a missing kind is the host's. */
  pins: NamespacePaths;
  /** The pod's user namespace maps, when it has one (its path is `pins.user`). */
  userns: UserNamespace | undefined;
  podHostname: string;
  podFiles: { hostname: string; hosts: string; resolvConf: string; shm: string | undefined };
  cgroupsPath: string;
  /**
   * A cgroup namespace of its own, so the container sees its cgroup as
   * /sys/fs/cgroup: for unprivileged containers on cgroup v2, as containerd
   * and CRI-O do (on v1 the hierarchy's layout makes it of little use).
   */
  cgroupNamespace: boolean;
  /** Lowest oom_score_adj this process may set (its own, when it lacks CAP_SYS_RESOURCE). */
  oomScoreAdjFloor: number | undefined;
  /** Namespaced sysctls of the pod. */
  sysctls: Record<string, string>;
  devices: HostDevice[];
  /** pidMode 'target': the PID namespace file of the target container's init. */
  targetPidNamespace: string | undefined;
  /** io.kubernetes.cri.* annotations naming the pod, container and image, for tools that read the spec. */
  criAnnotations: Record<string, string>;
  rlimits: Rlimit[];
  /** process.apparmorProfile; undefined: none (no AppArmor on the host). */
  appArmorProfile: string | undefined;
  selinux: { processLabel?: string; mountLabel?: string };
}

/** command overrides Entrypoint; args override Cmd (kubelet's rule). */
export function processArgs(spec: ContainerSpec, image: ImageConfigInfo): string[] {
  const args = spec.command.length > 0 ? [...spec.command, ...spec.args] : [...image.entrypoint, ...(spec.args.length > 0 ? spec.args : image.cmd)];
  if (args.length === 0) throw new InvalidArgumentError('no command: the container config and the image set neither command nor args');
  return args;
}

/** Image Env first, then the container's envs replacing equal names; PATH by default. */
export function processEnv(spec: ContainerSpec, image: ImageConfigInfo): string[] {
  const env = new Map<string, string>();
  for (const e of image.env) {
    const eq = e.indexOf('=');
    env.set(eq < 0 ? e : e.slice(0, eq), e);
  }
  for (const [k, v] of spec.envs) env.set(k, `${k}=${v}`);
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  return [...env.values()];
}

function bind(destination: string, source: string, readonly: boolean, propagation = 'rprivate'): object {
  return { destination, type: 'bind', source, options: ['rbind', propagation, readonly ? 'ro' : 'rw'] };
}

const PROPAGATION: Record<MountSpec['propagation'], string> = { private: 'rprivate', 'host-to-container': 'rslave', bidirectional: 'rshared' };

function ociMappings(list: readonly IdMapping[]): object[] {
  return list.map((m) => ({ containerID: m.containerId, hostID: m.hostId, size: m.length }));
}

/** The OCI runtime config (config.json) for one container. */
export function ociSpec(ctx: SpecContext): Record<string, unknown> {
  const { spec, image } = ctx;
  const sec = spec.security;
  const userMounts = new Set(spec.mounts.map((m) => m.containerPath));
  const mounts: object[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', sec.privileged ? 'rw' : 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', sec.privileged ? 'rw' : 'ro'] },
  ];
  const podMount = (dest: string, source: string | undefined, ro: boolean) => {
    if (source && !userMounts.has(dest)) mounts.push(bind(dest, source, ro));
  };
  podMount('/etc/hostname', ctx.podFiles.hostname, sec.readonlyRootfs);
  podMount('/etc/hosts', ctx.podFiles.hosts, sec.readonlyRootfs);
  podMount('/etc/resolv.conf', ctx.podFiles.resolvConf, sec.readonlyRootfs);
  podMount('/dev/shm', ctx.podFiles.shm ?? '/dev/shm', false);
  for (const m of spec.mounts) {
    mounts.push(
      m.recursiveReadOnly
        ? { destination: m.containerPath, type: 'bind', source: m.hostPath, options: ['rbind', 'rprivate', 'rro'] }
        : bind(m.containerPath, m.hostPath, m.readonly, PROPAGATION[m.propagation]),
    );
  }

  const namespaces: object[] = [{ type: 'mount' }];
  const join = (type: string, path: string | undefined) => {
    if (path) namespaces.push({ type, path });
  };
  // Joined by path; runc (1.1) still wants the maps, which must be the namespace's own.
  join('user', ctx.userns ? ctx.pins.user : undefined);
  join('network', ctx.pins.net);
  join('ipc', ctx.pins.ipc);
  join('uts', ctx.pins.uts);
  if (sec.pidMode === 'pod' && ctx.pins.pid) join('pid', ctx.pins.pid);
  else if (sec.pidMode === 'target' && ctx.targetPidNamespace) join('pid', ctx.targetPidNamespace);
  else if (sec.pidMode !== 'node') namespaces.push({ type: 'pid' });
  if (ctx.cgroupNamespace) namespaces.push({ type: 'cgroup' });

  const capList = ctx.capabilities;
  // A non-root process keeps capabilities only in its bounding set, as on a host.
  const runtimeCaps = ctx.user.uid === 0 ? capList : [];
  const r = spec.resources;
  const oomScoreAdj = ctx.oomScoreAdjFloor !== undefined ? Math.max(r.oomScoreAdj, ctx.oomScoreAdjFloor) : r.oomScoreAdj;
  const seccomp = seccompSection(sec.seccomp, capList, sec.privileged);
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: spec.tty,
      user: { uid: ctx.user.uid, gid: ctx.user.gid, additionalGids: ctx.user.additionalGids },
      args: processArgs(spec, image),
      env: processEnv(spec, image),
      cwd: spec.workingDir || image.workingDir || '/',
      capabilities: { bounding: capList, effective: runtimeCaps, permitted: runtimeCaps },
      noNewPrivileges: sec.noNewPrivs,
      ...(ctx.appArmorProfile ? { apparmorProfile: ctx.appArmorProfile } : {}),
      ...(ctx.selinux.processLabel ? { selinuxLabel: ctx.selinux.processLabel } : {}),
      oomScoreAdj,
      ...(ctx.rlimits.length > 0 ? { rlimits: ctx.rlimits } : {}),
    },
    root: { path: ctx.rootfs, readonly: sec.readonlyRootfs },
    hostname: ctx.pins.uts ? ctx.podHostname : undefined,
    mounts,
    annotations: { ...spec.annotations, ...ctx.criAnnotations },
    linux: {
      ...(ctx.userns ? { uidMappings: ociMappings(ctx.userns.uids), gidMappings: ociMappings(ctx.userns.gids) } : {}),
      ...(rootfsPropagation(spec.mounts) ? { rootfsPropagation: rootfsPropagation(spec.mounts) } : {}),
      namespaces,
      cgroupsPath: ctx.cgroupsPath,
      sysctl: ctx.sysctls,
      devices: ctx.devices.map((d) => ({ path: d.containerPath, type: d.type, major: d.major, minor: d.minor, fileMode: d.fileMode, uid: d.uid, gid: d.gid })),
      resources: {
        devices: sec.privileged
          ? [{ allow: true, access: 'rwm' }]
          : [
              { allow: false, access: 'rwm' },
              ...ctx.devices.map((d) => ({ allow: true, type: d.type, major: d.major, minor: d.minor, access: d.permissions })),
            ],
        ...ociResources(r),
      },
      ...(seccomp ? { seccomp } : {}),
      maskedPaths: sec.privileged ? [] : sec.maskedPaths.length > 0 ? sec.maskedPaths : DEFAULT_MASKED_PATHS,
      readonlyPaths: sec.privileged ? [] : sec.readonlyPaths.length > 0 ? sec.readonlyPaths : DEFAULT_READONLY_PATHS,
      ...(ctx.selinux.mountLabel ? { mountLabel: ctx.selinux.mountLabel } : {}),
    },
  };
}
