import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';

/** Capability names by bit number (linux/capability.h). */
export const CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_DAC_READ_SEARCH',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_LINUX_IMMUTABLE',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST',
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_IPC_LOCK',
  'CAP_IPC_OWNER',
  'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO',
  'CAP_SYS_CHROOT',
  'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN',
  'CAP_SYS_BOOT',
  'CAP_SYS_NICE',
  'CAP_SYS_RESOURCE',
  'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG',
  'CAP_MKNOD',
  'CAP_LEASE',
  'CAP_AUDIT_WRITE',
  'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE',
  'CAP_MAC_ADMIN',
  'CAP_SYSLOG',
  'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND',
  'CAP_AUDIT_READ',
  'CAP_PERFMON',
  'CAP_BPF',
  'CAP_CHECKPOINT_RESTORE',
] as const;

/** What containers get unless they add or drop: CRI-O's default set. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_KILL',
];

/** Capability names set in a hex mask from /proc/PID/status. */
export function capabilitiesInMask(hex: string): string[] {
  const mask = BigInt(`0x${hex}`);
  return CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n);
}

/** The daemon's own bounding set: "all capabilities" can mean no more than this. */
export function ownBoundingSet(status = readFileSync('/proc/self/status', 'utf8')): string[] {
  const line = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
  return line ? capabilitiesInMask(line[1] as string) : [...CAPABILITIES];
}

function normalize(name: string): string {
  const upper = name.toUpperCase();
  return upper === 'ALL' || upper.startsWith('CAP_') ? upper : `CAP_${upper}`;
}

/**
 * The container's capability set from CRI add/drop lists (names with or
 * without CAP_, any case, ALL in either list), limited to what the daemon
 * itself holds. Asking to add one the daemon lacks is refused: runc would
 * fail later with a less helpful message.
 */
export function resolveCapabilities(add: readonly string[], drop: readonly string[], privileged: boolean, available: readonly string[]): string[] {
  if (privileged) return [...available];
  const adds = add.map(normalize);
  const drops = drop.map(normalize);
  for (const cap of [...adds, ...drops]) {
    if (cap !== 'ALL' && !(CAPABILITIES as readonly string[]).includes(cap)) throw new InvalidArgumentError(`unknown capability ${JSON.stringify(cap)}`);
  }
  let set = new Set(adds.includes('ALL') ? available : DEFAULT_CAPABILITIES.filter((c) => available.includes(c)));
  for (const cap of adds) {
    if (cap === 'ALL') continue;
    if (!available.includes(cap)) throw new InvalidArgumentError(`capability ${cap} is not available to the runtime (it does not hold it itself)`);
    set.add(cap);
  }
  if (drops.includes('ALL')) set = new Set(adds.filter((c) => c !== 'ALL'));
  for (const cap of drops) set.delete(cap);
  return CAPABILITIES.filter((c) => set.has(c));
}
