import { posix } from 'node:path';
import { InvalidArgumentError } from '../../core/errors.js';
import type { ContainerSpec } from '../../oci/container-spec.js';
import { NamespaceMode, Signal, SupplementalGroupsPolicy, type ContainerConfig } from '../generated/api.js';
import { absolutePath, noNul, objectName, optionalAbsolutePath, plain, stringMap, unixId } from '../validate.js';
import { PROPAGATION } from './container-status.js';
import { resourcesFrom } from './resources.js';
import { appArmorChoice, seccompChoice } from './security-profiles.js';

/** `SIGNAL_SIGTERM` → `SIGTERM`; the runtime default is empty. */
function signalName(s: Signal): string {
  if (s === Signal.SIGNAL_RUNTIME_DEFAULT) return '';
  const name = Signal[s];
  if (name === undefined) throw new InvalidArgumentError(`unknown stop signal ${s}`);
  return name
    .replace(/^SIGNAL_/, '')
    .replace(/PLUS(\d+)$/, '+$1')
    .replace(/MINUS(\d+)$/, '-$1');
}

function supplementalGroupsPolicy(policy: SupplementalGroupsPolicy | undefined): 'merge' | 'strict' {
  switch (policy ?? SupplementalGroupsPolicy.Merge) {
    case SupplementalGroupsPolicy.Merge:
      return 'merge';
    case SupplementalGroupsPolicy.Strict:
      return 'strict';
    default:
      throw new InvalidArgumentError(`supplemental_groups_policy ${String(policy)} is neither Merge nor Strict`);
  }
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
  if (runAsGroup !== undefined && runAsUser === undefined && runAsUsername === '')
    throw new InvalidArgumentError('run_as_group needs run_as_user or run_as_username');
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
      if (!/^[rwm]{0,3}$/.test(d.permissions))
        throw new InvalidArgumentError(`config.devices[${i}].permissions ${JSON.stringify(d.permissions)} must be some of "rwm"`);
      return {
        containerPath: optionalAbsolutePath(`config.devices[${i}].container_path`, d.container_path),
        hostPath: absolutePath(`config.devices[${i}].host_path`, d.host_path),
        permissions: d.permissions,
      };
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
      supplementalGroupsPolicy: supplementalGroupsPolicy(sec?.supplemental_groups_policy),
      readonlyRootfs: sec?.readonly_rootfs ?? false,
      noNewPrivs: sec?.no_new_privs ?? false,
      maskedPaths: (sec?.masked_paths ?? []).map((p, i) => absolutePath(`masked_paths[${i}]`, p)),
      readonlyPaths: (sec?.readonly_paths ?? []).map((p, i) => absolutePath(`readonly_paths[${i}]`, p)),
      pidMode: pidMode(sec?.namespace_options?.pid),
      targetId: sec?.namespace_options?.target_id ?? '',
      seccomp: seccompChoice(sec?.seccomp, sec?.seccomp_profile_path ?? ''),
      appArmor: appArmorChoice(sec?.apparmor, sec?.apparmor_profile ?? ''),
      selinux: sec?.selinux_options
        ? { user: sec.selinux_options.user, role: sec.selinux_options.role, type: sec.selinux_options.type, level: sec.selinux_options.level }
        : undefined,
    },
    stopSignal: signalName(config.stop_signal),
  };
}
