import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';

export interface ProcessUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

/** Reads a file of the container's root filesystem, refusing symlinks (they could point at the host's). */
function readRootfsFile(rootfs: string, path: string): string {
  try {
    const full = join(rootfs, path);
    if (lstatSync(full).isSymbolicLink()) return '';
    return readFileSync(full, 'utf8');
  } catch {
    return '';
  }
}

function passwd(rootfs: string): PasswdEntry[] {
  return readRootfsFile(rootfs, 'etc/passwd')
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 4 && /^\d+$/.test(f[2] as string) && /^\d+$/.test(f[3] as string))
    .map((f) => ({ name: f[0] as string, uid: Number(f[2]), gid: Number(f[3]) }));
}

function groups(rootfs: string): Array<{ name: string; gid: number; members: string[] }> {
  return readRootfsFile(rootfs, 'etc/group')
    .split('\n')
    .map((l) => l.split(':'))
    .filter((f) => f.length >= 3 && /^\d+$/.test(f[2] as string))
    .map((f) => ({ name: f[0] as string, gid: Number(f[2]), members: (f[3] ?? '').split(',').filter(Boolean) }));
}

export interface UserRequest {
  /** CRI run_as_user, when set. */
  runAsUser: bigint | undefined;
  runAsGroup: bigint | undefined;
  runAsUsername: string;
  /** The image config's User: "uid", "uid:gid", "name", "name:group". */
  imageUser: string;
  supplementalGroups: readonly bigint[];
  /** Strict: the container's /etc/group memberships are not added. */
  strict: boolean;
}

/**
 * The process user as kubelet means it: run_as_user / run_as_username win
 * over the image's User; names and the primary group come from the
 * container's /etc/passwd and /etc/group; groups listing the user are added
 * under the Merge policy (kubelet's default), not under Strict.
 */
export function resolveUser(rootfs: string, req: UserRequest): ProcessUser {
  const users = passwd(rootfs);
  const groupList = groups(rootfs);
  let userPart: string;
  let groupPart: string | undefined;
  if (req.runAsUser !== undefined) userPart = req.runAsUser.toString();
  else if (req.runAsUsername) userPart = req.runAsUsername;
  else [userPart = '', groupPart] = req.imageUser.split(':');
  if (userPart === '') userPart = '0';
  let uid: number;
  let gid: number;
  let name: string | undefined;
  if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
    const entry = users.find((u) => u.uid === uid);
    gid = entry?.gid ?? 0;
    name = entry?.name;
  } else {
    const entry = users.find((u) => u.name === userPart);
    if (!entry) throw new InvalidArgumentError(`user ${JSON.stringify(userPart)} is not in the container's /etc/passwd`);
    ({ uid, gid, name } = entry);
  }
  if (req.runAsGroup !== undefined) gid = Number(req.runAsGroup);
  else if (groupPart !== undefined && groupPart !== '') {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const g = groupList.find((x) => x.name === groupPart);
      if (!g) throw new InvalidArgumentError(`group ${JSON.stringify(groupPart)} is not in the container's /etc/group`);
      gid = g.gid;
    }
  }
  const additional = new Set<number>(req.supplementalGroups.map(Number));
  if (name && !req.strict) for (const g of groupList) if (g.members.includes(name)) additional.add(g.gid);
  additional.delete(gid);
  return { uid, gid, additionalGids: [...additional].sort((a, b) => a - b) };
}
