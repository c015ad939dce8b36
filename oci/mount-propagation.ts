import { readFileSync, realpathSync } from 'node:fs';
import { FailedPreconditionError } from '../core/errors.js';
import type { MountSpec } from './container-spec.js';

/** One line of /proc/self/mountinfo, as far as propagation needs it. */
export interface MountPoint {
  path: string;
  /** `shared:N`, `master:N` ... from the optional fields. */
  shared: boolean;
  slave: boolean;
}

/** Mount points and their propagation, from a mountinfo text. */
export function parseMountinfo(text: string): MountPoint[] {
  const out: MountPoint[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const sep = fields.indexOf('-');
    if (fields.length < 7 || sep < 6) continue;
    const optional = fields.slice(6, sep);
    // Octal escapes for spaces and the like, as the kernel writes them.
    const path = (fields[4] as string).replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
    out.push({ path, shared: optional.some((o) => o.startsWith('shared:')), slave: optional.some((o) => o.startsWith('master:')) });
  }
  return out;
}

/** The mount a path lies on: the longest mount point that contains it (the last one mounted wins a tie). */
export function mountOf(path: string, mounts: readonly MountPoint[]): MountPoint | undefined {
  let best: MountPoint | undefined;
  for (const m of mounts) {
    const inside = m.path === '/' || path === m.path || path.startsWith(`${m.path}/`);
    if (inside && (!best || m.path.length >= best.path.length)) best = m;
  }
  return best;
}

/**
 * What the container's root must propagate for its mounts to work: rshared
 * when a mount is bidirectional, rslave when one only receives from the
 * host; left to the runtime otherwise. (runc and crun default differently,
 * so leaving it unset made host-to-container mounts fail with crun.)
 */
export function rootfsPropagation(mounts: readonly Pick<MountSpec, 'propagation'>[]): string | undefined {
  if (mounts.some((m) => m.propagation === 'bidirectional')) return 'rshared';
  if (mounts.some((m) => m.propagation === 'host-to-container')) return 'rslave';
  return undefined;
}

/**
 * A mount can only propagate what its source's mount does: bidirectional
 * needs a shared source, host-to-container a shared or slave one. Without
 * that the container silently sees nothing, so the request is refused,
 * naming the mount to make shared (as CRI-O and containerd refuse it).
 */
export function checkPropagation(mounts: readonly MountSpec[], mountinfo = readFileSync('/proc/self/mountinfo', 'utf8')): void {
  const wanting = mounts.filter((m) => m.propagation !== 'private');
  if (wanting.length === 0) return;
  const table = parseMountinfo(mountinfo);
  for (const m of wanting) {
    const source = mountOf(realpathSync(m.hostPath), table);
    if (!source) continue;
    if (m.propagation === 'bidirectional' && !source.shared) {
      throw new FailedPreconditionError(
        `mount ${m.containerPath}: bidirectional propagation needs ${m.hostPath} on a shared mount, but ${source.path} is not shared (mount --make-rshared ${source.path})`,
      );
    }
    if (m.propagation === 'host-to-container' && !source.shared && !source.slave) {
      throw new FailedPreconditionError(
        `mount ${m.containerPath}: host-to-container propagation needs ${m.hostPath} on a shared or slave mount, but ${source.path} is private (mount --make-rshared ${source.path})`,
      );
    }
  }
}
