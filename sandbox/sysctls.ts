import { InvalidArgumentError } from '../core/errors.js';
import type { NamespaceMode } from '../oci/namespaces.js';

/**
 * Sysctls that belong to a namespace a pod owns, and so may differ per pod.
 * Anything else would change the host and is refused.
 */
const IPC_SYSCTL = /^(kernel\.shm[a-z_]*|kernel\.msg[a-z_]*|kernel\.sem|fs\.mqueue\.[a-z_]+)$/;
const NET_SYSCTL = /^net\./;

/** `net.ipv4.conf.eth0/1.forwarding`-style keys use '/' as separator and keep dots in names. */
export function sysctlPath(key: string): string {
  return key.includes('/') ? key : key.replace(/\./g, '/');
}

function dotted(key: string): string {
  return key.includes('/') ? key.replace(/\//g, '.') : key;
}

/**
 * Checks every sysctl and returns them as [path below /proc/sys, value].
 * Throws InvalidArgument naming the first bad key.
 */
export function validateSysctls(sysctls: Readonly<Record<string, string>>, network: NamespaceMode, ipc: NamespaceMode): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(sysctls)) {
    if (!/^[A-Za-z0-9_][A-Za-z0-9_./-]*$/.test(key) || key.includes('..') || key.includes('//')) {
      throw new InvalidArgumentError(`sysctl ${JSON.stringify(key)} is not a valid sysctl name`);
    }
    if (/[\n\0]/.test(value)) throw new InvalidArgumentError(`sysctl ${key}: value must be a single line`);
    const name = dotted(key);
    if (NET_SYSCTL.test(name)) {
      if (network === 'node') throw new InvalidArgumentError(`sysctl ${key} is not allowed for a pod in the host's network namespace`);
    } else if (IPC_SYSCTL.test(name)) {
      if (ipc === 'node') throw new InvalidArgumentError(`sysctl ${key} is not allowed for a pod in the host's IPC namespace`);
    } else {
      throw new InvalidArgumentError(`sysctl ${key} is not namespaced: only net.*, kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* can be set per pod`);
    }
    out.push([sysctlPath(key), value]);
  }
  return out;
}
