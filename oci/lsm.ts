import { existsSync, readFileSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';

export type AppArmorChoice = { kind: 'unset' } | { kind: 'runtime-default' } | { kind: 'unconfined' } | { kind: 'localhost'; profile: string };

export interface SelinuxOptions {
  user: string;
  role: string;
  type: string;
  level: string;
}

/** The Linux security modules of the host, as the OCI runtime will meet them. */
export interface HostLsm {
  appArmor: boolean;
  /** Names of the loaded AppArmor profiles (read when asked: operators load profiles at any time). */
  appArmorProfiles(): ReadonlySet<string>;
  selinux: boolean;
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** What runc checks: the module is enabled and securityfs exposes it. */
export function detectHostLsm(): HostLsm {
  const appArmor = readOr('/sys/module/apparmor/parameters/enabled', 'N').trim().startsWith('Y') && existsSync('/sys/kernel/security/apparmor');
  const selinux = existsSync('/sys/fs/selinux/enforce');
  return {
    appArmor,
    selinux,
    appArmorProfiles: () =>
      new Set(
        readOr('/sys/kernel/security/apparmor/profiles', '')
          .split('\n')
          // "name (enforce)"
          .map((l) => l.replace(/ \((enforce|complain|kill|unconfined)\)$/, ''))
          .filter(Boolean),
      ),
  };
}

/**
 * process.apparmorProfile for a container. Without AppArmor on the host
 * nothing is set: the runtime would refuse a profile it cannot apply, and
 * kubelet already keeps AppArmor pods off such nodes. RuntimeDefault (and no
 * choice at all) mean the configured default profile; a profile must be
 * loaded, or the container would fail to start with a less clear error.
 */
export function appArmorProfile(choice: AppArmorChoice, host: HostLsm, defaultProfile: string, privileged: boolean): string | undefined {
  if (!host.appArmor) return undefined;
  let profile: string;
  switch (choice.kind) {
    case 'unconfined':
      return 'unconfined';
    case 'localhost':
      profile = choice.profile;
      break;
    default:
      // Privileged containers are not confined by the default, as with other runtimes.
      if (privileged || defaultProfile === '' || defaultProfile === 'unconfined') return 'unconfined';
      profile = defaultProfile;
  }
  if (!host.appArmorProfiles().has(profile)) {
    if (choice.kind === 'localhost') throw new InvalidArgumentError(`AppArmor profile "${profile}" is not loaded on this node`);
    throw new FailedPreconditionError(`the default AppArmor profile "${profile}" (containers.apparmor_default_profile) is not loaded on this node`);
  }
  return profile;
}

/**
 * The SELinux process and mount labels from the container's options, with
 * the container types filled in where the options leave a part empty;
 * nothing when SELinux is off on the host or no option is given.
 */
export function selinuxLabels(options: SelinuxOptions | undefined, host: HostLsm, privileged: boolean): { processLabel?: string; mountLabel?: string } {
  if (!host.selinux || !options || !(options.user || options.role || options.type || options.level)) return {};
  for (const [k, v] of Object.entries(options)) {
    if (/[\s:]/.test(k === 'level' ? v.replace(/:/g, '') : v))
      throw new InvalidArgumentError(`selinux_options.${k} ${JSON.stringify(v)} is not a label component`);
  }
  const user = options.user || 'system_u';
  const level = options.level || 's0';
  const type = options.type || (privileged ? 'spc_t' : 'container_t');
  return { processLabel: `${user}:${options.role || 'system_r'}:${type}:${level}`, mountLabel: `${user}:object_r:container_file_t:${level}` };
}

/** Host directories no container may relabel: the host would stop working. */
const NEVER_RELABEL = new Set([
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib32',
  '/lib64',
  '/opt',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/srv',
  '/sys',
  '/tmp',
  '/usr',
  '/var',
]);

/**
 * A mount with selinux_relabel gets the container's mount label on every
 * file below its host path (what the `Z` volume option does elsewhere), so
 * the confined process can use it. Links are labelled, never followed.
 */
export async function relabelTree(hostPath: string, mountLabel: string, setLabel: (path: string, label: string) => void): Promise<void> {
  const path = resolve(hostPath);
  if (NEVER_RELABEL.has(path)) throw new InvalidArgumentError(`mount ${JSON.stringify(hostPath)}: relabeling a system directory for SELinux is refused`);
  const visit = async (p: string): Promise<void> => {
    setLabel(p, mountLabel);
    const st = await lstat(p);
    if (!st.isDirectory()) return;
    for (const name of await readdir(p)) await visit(join(p, name));
  };
  await visit(path);
}
