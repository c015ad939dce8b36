import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { parseQuantity } from '../../core/quantity.js';
import { type ContainerConfig, type Mount, NamespaceMode, type PodSandboxConfig, Protocol } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';

/** A manifest `cradle play` cannot run as written: the message says what and why. */
export class ManifestError extends Error {}

/** What a v1 Pod becomes, as kubelet would make it: the sandbox, then the containers in order. */
export interface PodPlan {
  name: string;
  namespace: string;
  uid: string;
  restartPolicy: 'Always' | 'OnFailure' | 'Never';
  sandbox: Init<PodSandboxConfig>;
  initContainers: ContainerPlan[];
  containers: ContainerPlan[];
  /** emptyDir volumes: directories to make (under `volumeRoot`) before the containers start. */
  emptyDirs: string[];
}

export interface ContainerPlan {
  name: string;
  image: string;
  pullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  /** The config for attempt `attempt` (kubelet's restart count). */
  config(attempt: number): Init<ContainerConfig>;
}

const CPU_PERIOD = 100_000;

/** cpu quantity ("500m", "2") as millicores. */
function millicores(text: string, where: string): number {
  const m = /^(\d+(?:\.\d+)?)(m?)$/.exec(text.trim());
  if (!m) throw new ManifestError(`${where}: "${text}" is not a CPU quantity`);
  return m[2] === 'm' ? Number(m[1]) : Math.round(Number(m[1]) * 1000);
}

function resources(c: V1Container, where: string): Init<ContainerConfig>['linux'] {
  const limits = (c.resources?.limits ?? {}) as Record<string, string>;
  const requests = (c.resources?.requests ?? {}) as Record<string, string>;
  const out: Record<string, bigint> = {};
  // As kubelet: shares from the request (or the limit), quota from the limit.
  const cpuRequest = requests.cpu ?? limits.cpu;
  if (cpuRequest !== undefined) out.cpu_shares = BigInt(Math.max(2, Math.floor((millicores(cpuRequest, `${where}.resources`) * 1024) / 1000)));
  if (limits.cpu !== undefined) {
    out.cpu_period = BigInt(CPU_PERIOD);
    out.cpu_quota = BigInt(Math.max(1000, Math.floor((millicores(limits.cpu, `${where}.resources.limits`) * CPU_PERIOD) / 1000)));
  }
  if (limits.memory !== undefined) {
    const bytes = parseQuantity(limits.memory);
    if (bytes === undefined) throw new ManifestError(`${where}.resources.limits.memory: "${limits.memory}" is not a memory quantity`);
    out.memory_limit_in_bytes = BigInt(bytes);
  }
  const sc = c.securityContext;
  return {
    resources: out,
    security_context: {
      privileged: sc?.privileged ?? false,
      readonly_rootfs: sc?.readOnlyRootFilesystem ?? false,
      no_new_privs: sc?.allowPrivilegeEscalation === false,
      capabilities: { add_capabilities: sc?.capabilities?.add ?? [], drop_capabilities: sc?.capabilities?.drop ?? [] },
      ...(sc?.runAsUser !== undefined ? { run_as_user: { value: BigInt(sc.runAsUser) } } : {}),
      ...(sc?.runAsGroup !== undefined ? { run_as_group: { value: BigInt(sc.runAsGroup) } } : {}),
    },
  };
}

function envs(c: V1Container, where: string): Array<{ key: string; value: Uint8Array }> {
  if (c.envFrom?.length)
    throw new ManifestError(`${where}.envFrom: ConfigMaps and Secrets are not read by cradle play (there is no API server); give env values literally`);
  return (c.env ?? []).map((e) => {
    if (e.valueFrom)
      throw new ManifestError(
        `${where}.env[${e.name}]: valueFrom (ConfigMap, Secret or field references) is not supported by cradle play; give a literal value`,
      );
    return { key: e.name, value: Buffer.from(e.value ?? '') };
  });
}

function mounts(c: V1Container, volumes: ReadonlyMap<string, string>, where: string): Init<Mount>[] {
  return (c.volumeMounts ?? []).map((m) => {
    const hostPath = volumes.get(m.name);
    if (hostPath === undefined) throw new ManifestError(`${where}.volumeMounts[${m.name}]: no volume of that name in spec.volumes`);
    if (m.subPath) throw new ManifestError(`${where}.volumeMounts[${m.name}]: subPath is not supported by cradle play`);
    return { container_path: m.mountPath, host_path: hostPath, readonly: m.readOnly ?? false };
  });
}

function volumeSource(v: V1Volume, volumeRoot: string): { hostPath: string; emptyDir: boolean } {
  if (v.hostPath) return { hostPath: v.hostPath.path, emptyDir: false };
  if (v.emptyDir) return { hostPath: `${volumeRoot}/${v.name}`, emptyDir: true };
  const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
  throw new ManifestError(`spec.volumes[${v.name}]: ${kind} volumes are not supported by cradle play; hostPath and emptyDir are`);
}

/**
 * A v1 Pod as kubelet would turn it into CRI calls: sandbox config
 * (hostname, DNS, hostPorts, labels, namespaces), containers (command,
 * args, literal env, hostPath and emptyDir volumes, resources as cgroup
 * values, security context). `uid` names the pod when the manifest has
 * none; emptyDir volumes live under `volumeRoot`.
 */
export function planPod(pod: V1Pod, uid: string, volumeRoot: string): PodPlan {
  const name = pod.metadata?.name;
  if (!name) throw new ManifestError('metadata.name is required');
  const namespace = pod.metadata?.namespace || 'default';
  const spec = pod.spec;
  if (!spec?.containers?.length) throw new ManifestError('spec.containers must name at least one container');
  const restartPolicy = (spec.restartPolicy ?? 'Always') as PodPlan['restartPolicy'];
  if (!['Always', 'OnFailure', 'Never'].includes(restartPolicy))
    throw new ManifestError(`spec.restartPolicy "${restartPolicy}" must be Always, OnFailure or Never`);
  const podUid = pod.metadata?.uid || uid;
  const volumes = new Map<string, string>();
  const emptyDirs: string[] = [];
  for (const v of spec.volumes ?? []) {
    const src = volumeSource(v, volumeRoot);
    volumes.set(v.name, src.hostPath);
    if (src.emptyDir) emptyDirs.push(src.hostPath);
  }
  const labels = {
    ...(pod.metadata?.labels ?? {}),
    'io.kubernetes.pod.name': name,
    'io.kubernetes.pod.namespace': namespace,
    'io.kubernetes.pod.uid': podUid,
  };
  const dns = spec.dnsConfig;
  const sandbox: Init<PodSandboxConfig> = {
    metadata: { name, namespace, uid: podUid, attempt: 0 },
    hostname: spec.hostname || name,
    log_directory: `/var/log/pods/${namespace}_${name}_${podUid}`,
    dns_config: dns
      ? {
          servers: dns.nameservers ?? [],
          searches: dns.searches ?? [],
          options: (dns.options ?? []).map((o) => (o.value ? `${o.name}:${o.value}` : (o.name ?? ''))),
        }
      : undefined,
    port_mappings: spec.containers.flatMap((c) =>
      (c.ports ?? [])
        .filter((p) => p.hostPort)
        .map((p) => ({
          protocol: p.protocol === 'UDP' ? Protocol.UDP : p.protocol === 'SCTP' ? Protocol.SCTP : Protocol.TCP,
          container_port: p.containerPort,
          host_port: p.hostPort as number,
          host_ip: p.hostIP ?? '',
        })),
    ),
    labels,
    annotations: pod.metadata?.annotations ?? {},
    linux: {
      sysctls: Object.fromEntries((spec.securityContext?.sysctls ?? []).map((s) => [s.name, s.value])),
      security_context: {
        namespace_options: {
          network: spec.hostNetwork ? NamespaceMode.NODE : NamespaceMode.POD,
          pid: spec.hostPID ? NamespaceMode.NODE : spec.shareProcessNamespace ? NamespaceMode.POD : NamespaceMode.CONTAINER,
          ipc: spec.hostIPC ? NamespaceMode.NODE : NamespaceMode.POD,
        },
        ...(spec.securityContext?.runAsUser !== undefined ? { run_as_user: { value: BigInt(spec.securityContext.runAsUser) } } : {}),
        supplemental_groups: (spec.securityContext?.supplementalGroups ?? []).map((g) => BigInt(g)),
      },
    },
  };
  const plan = (c: V1Container, where: string): ContainerPlan => {
    if (!c.image) throw new ManifestError(`${where}.image is required`);
    const env = envs(c, where);
    const volumeMounts = mounts(c, volumes, where);
    const linux = resources(c, where);
    const podUser = spec.securityContext?.runAsUser;
    if (podUser !== undefined && linux?.security_context && !linux.security_context.run_as_user)
      linux.security_context.run_as_user = { value: BigInt(podUser) };
    return {
      name: c.name,
      image: c.image,
      pullPolicy: (c.imagePullPolicy as ContainerPlan['pullPolicy']) ?? (c.image.endsWith(':latest') || !/:[^/]+$/.test(c.image) ? 'Always' : 'IfNotPresent'),
      config: (attempt) => ({
        metadata: { name: c.name, attempt },
        image: { image: c.image as string },
        command: c.command ?? [],
        args: c.args ?? [],
        working_dir: c.workingDir ?? '',
        envs: env,
        mounts: volumeMounts,
        labels: { ...labels, 'io.kubernetes.container.name': c.name },
        annotations: { 'io.kubernetes.container.restartCount': String(attempt) },
        log_path: `${c.name}/${attempt}.log`,
        stdin: c.stdin ?? false,
        stdin_once: c.stdinOnce ?? false,
        tty: c.tty ?? false,
        linux,
      }),
    };
  };
  return {
    name,
    namespace,
    uid: podUid,
    restartPolicy,
    sandbox,
    initContainers: (spec.initContainers ?? []).map((c, i) => plan(c, `spec.initContainers[${i}]`)),
    containers: spec.containers.map((c, i) => plan(c, `spec.containers[${i}]`)),
    emptyDirs,
  };
}
