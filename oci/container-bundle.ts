import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CGROUP_V2 } from '../cgroups/cgroup-stats.js';
import { parseUlimit } from '../core/ulimit.js';
import type { ImageConfigInfo } from './image-config.js';
import type { NamespacePaths, UserNamespace } from './namespaces.js';
import type { ContainerSpec } from './container-spec.js';
import { allHostDevices, hostDevice } from './devices.js';
import { ensureImageVolumes } from './image-volumes.js';
import { appArmorProfile, relabelTree, selinuxLabels, type HostLsm } from './lsm.js';
import { loadNative } from '../native/index.js';
import { ociSpec } from './oci-spec.js';
import { resolveUser } from './user.js';
import { step } from '../core/tracing.js';

/** What a container takes from its pod: names, namespaces and the files it bind-mounts. */
export interface PodContext {
  id: string;
  name: string;
  namespace: string;
  uid: string;
  hostname: string;
  namespaces: NamespacePaths;
  /** The pod's own user namespace (at `namespaces.user`), if it has one. */
  userns: UserNamespace | undefined;
  files: { hostname: string; hosts: string; resolvConf: string; shm: string | undefined };
}

/** Everything a container's OCI config is made from. */
export interface BundleInput {
  id: string;
  spec: ContainerSpec;
  imageConfig: ImageConfigInfo;
  rootfs: string;
  pod: PodContext;
  cgroupsPath: string;
  capabilities: string[];
  oomScoreAdjFloor: number | undefined;
  lsm: HostLsm;
  defaultUlimits: readonly string[];
  appArmorDefaultProfile: string;
  /** pid TARGET: the target container's PID namespace file. */
  targetPidNamespace: string | undefined;
}

/**
 * Makes a container's bundle directory: searchable by others, because a
 * user-namespaced container's runtime reaches its volumes' binds there from
 * inside the namespace; the runtime's own `persist` state stays private.
 */
export async function makeBundleDir(bundle: string): Promise<void> {
  // Synchronous for the same reason as the root filesystem's directories (storage/rootfs-store.ts).
  mkdirSync(bundle, { recursive: true, mode: 0o711 });
  mkdirSync(join(bundle, 'persist'), { recursive: true, mode: 0o700 });
}

/**
 * Writes `<bundle>/config.json`: the user resolved in the container's own
 * /etc/passwd and /etc/group, LSM labels, image volumes made to exist, and
 * the OCI spec itself.
 */
export function writeBundleConfig(bundle: string, b: BundleInput): Promise<void> {
  return step('bundle config written', () => writeConfig(bundle, b));
}

async function writeConfig(bundle: string, b: BundleInput): Promise<void> {
  const { spec, imageConfig, pod } = b;
  const user = resolveUser(b.rootfs, {
    runAsUser: spec.security.runAsUser,
    runAsGroup: spec.security.runAsGroup,
    runAsUsername: spec.security.runAsUsername,
    imageUser: imageConfig.user,
    supplementalGroups: spec.security.supplementalGroups,
    strict: spec.security.supplementalGroupsPolicy === 'strict',
  });
  const selinux = selinuxLabels(spec.security.selinux, b.lsm, spec.security.privileged);
  const config = ociSpec({
    id: b.id,
    spec,
    image: imageConfig,
    rootfs: b.rootfs,
    user,
    capabilities: b.capabilities,
    pins: pod.namespaces,
    userns: pod.userns,
    podHostname: pod.hostname,
    podFiles: pod.files,
    cgroupsPath: b.cgroupsPath,
    cgroupNamespace: CGROUP_V2 && !spec.security.privileged,
    oomScoreAdjFloor: b.oomScoreAdjFloor,
    sysctls: {},
    devices: [...(spec.security.privileged ? allHostDevices() : []), ...spec.devices.map(hostDevice)],
    targetPidNamespace: b.targetPidNamespace,
    rlimits: b.defaultUlimits.map(parseUlimit),
    appArmorProfile: appArmorProfile(spec.security.appArmor, b.lsm, b.appArmorDefaultProfile, spec.security.privileged),
    selinux,
    criAnnotations: {
      'io.kubernetes.cri.container-type': 'container',
      'io.kubernetes.cri.container-name': spec.name,
      'io.kubernetes.cri.sandbox-id': pod.id,
      'io.kubernetes.cri.sandbox-name': pod.name,
      'io.kubernetes.cri.sandbox-namespace': pod.namespace,
      'io.kubernetes.cri.sandbox-uid': pod.uid,
      'io.kubernetes.cri.image-name': spec.image,
    },
  });
  await ensureImageVolumes(b.rootfs, imageConfig.volumes, spec.mounts);
  if (selinux.mountLabel) {
    const native = loadNative();
    for (const m of spec.mounts.filter((x) => x.selinuxRelabel))
      await relabelTree(m.hostPath, selinux.mountLabel, (p, label) => native.lsetxattr(p, 'security.selinux', Buffer.from(label)));
  }
  await writeFile(join(bundle, 'config.json'), JSON.stringify(config));
}
