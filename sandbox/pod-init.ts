import { join } from 'node:path';
import { errnoCode, errorMessage, FailedPreconditionError, InternalError } from '../core/errors.js';
import { exitDescription, runChild } from '../native/child-process.js';
import { checkCgroupParent, defaultCgroupParent, podCgroupDir } from '../cgroups/cgroup-paths.js';
import type { CgroupDriver } from '../core/config/config.js';
import { placeInCgroup, removeCgroup } from '../cgroups/cgroup-tree.js';
import { killAndWait } from './pod-processes.js';
import { loadNative } from '../native/index.js';
import { isPodInit, type Pins, unmountAndRemove } from './namespace-pins.js';

/**
 * The init of a pod with a pod-wide PID namespace (catatonit): PID 1 of the
 * namespace, in the pod's cgroup next to its containers (so the pod's
 * resources and accounting include it, and a restart of the daemon's own
 * service cannot take it): `<parent>/cradle-init-<pod>` with cgroupfs, a
 * scope `cradle-init-<pod>.scope` in the pod's slice with systemd.
 */
export interface PodInitPlacement {
  driver: CgroupDriver;
  /** The pod's cgroup_parent as kubelet sent it. */
  parent: string;
}

function scopeName(podId: string): string {
  return `cradle-init-${podId}.scope`;
}

/** The init's cgroup below the hierarchy root. */
export function podInitCgroup(podId: string, p: PodInitPlacement): string {
  return join(podCgroupDir(p.driver, p.parent), p.driver === 'systemd' ? scopeName(podId) : `cradle-init-${podId}`);
}

/** A transient scope holding `pid` in `slice`, asked of systemd over D-Bus (busctl ships with systemd). */
async function startScope(unit: string, slice: string, pid: number): Promise<void> {
  const args = [
    'call',
    '--quiet',
    'org.freedesktop.systemd1',
    '/org/freedesktop/systemd1',
    'org.freedesktop.systemd1.Manager',
    'StartTransientUnit',
    'ssa(sv)a(sa(sv))',
    unit,
    'fail',
    '2',
    'Slice',
    's',
    slice,
    'PIDs',
    'au',
    '1',
    String(pid),
    '0',
  ];
  const r = await runChild('busctl', args, { timeoutMs: 30_000, killSignal: 'SIGTERM' }).catch((err: unknown) => {
    throw new InternalError(`cannot put the pod init in ${slice}/${unit}: ${errorMessage(err)}`);
  });
  if (r.code !== 0) throw new InternalError(`cannot put the pod init in ${slice}/${unit}: ${r.stderr.trim() || exitDescription(r)}`);
}

/** Starts the init inside the pod's namespaces (`pins`) and pins its PID namespace at `pidPin`, then moves it into the pod's cgroup. */
export async function startPodInit(
  podId: string,
  initPath: string,
  pins: Pins,
  pidPin: string,
  placement: PodInitPlacement,
): Promise<{ pid: number; pin: string }> {
  // The user namespace first: the others belong to it, and joining them takes its capabilities.
  const joined = [pins.user, pins.net, pins.ipc, pins.uts].filter((p): p is string => p !== undefined);
  let init: { pid: number; pin: string };
  try {
    init = await loadNative().spawnPodInit(joined, initPath, ['-P'], pidPin);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') throw new FailedPreconditionError(`pod init ${initPath} does not exist; install catatonit or set sandbox.pod_init`);
    throw err;
  }
  try {
    if (placement.driver === 'systemd')
      await startScope(scopeName(podId), checkCgroupParent('systemd', placement.parent) || defaultCgroupParent('systemd'), init.pid);
    else await placeInCgroup(init.pid, podInitCgroup(podId, placement));
  } catch (err) {
    await stopPodInit(podId, init.pid, init.pin, placement);
    // The pin is not the caller's yet: it would keep the pod's directory from being removed.
    await unmountAndRemove(init.pin);
    throw err;
  }
  return init;
}

/** Ends the init (if `pid` still is it, never a recycled pid), waits for it to go and removes its cgroup. */
export async function stopPodInit(podId: string, pid: number, pin: string, placement: PodInitPlacement): Promise<void> {
  if (isPodInit(pid, pin)) await killAndWait(pid);
  await removePodInitCgroup(podId, placement);
}

/** The init's cgroup, once empty (systemd removes an empty scope itself). */
export async function removePodInitCgroup(podId: string, placement: PodInitPlacement): Promise<void> {
  if (placement.driver === 'cgroupfs') await removeCgroup(podInitCgroup(podId, placement));
}
