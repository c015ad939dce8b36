import { readFileSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { errorMessage, InvalidArgumentError } from '../core/errors.js';

export type SeccompChoice = { kind: 'unconfined' } | { kind: 'runtime-default' } | { kind: 'localhost'; path: string };

/**
 * Syscalls the runtime's default profile refuses (EPERM), by the capability
 * that re-allows them: the same calls Docker's and CRI-O's default profiles
 * keep from containers (kernel keyrings, namespaces and mounts, modules,
 * clocks, tracing other processes, NUMA policy, ...). `null`: no capability
 * re-allows them.
 */
const BLOCKED: ReadonlyArray<readonly [string | null, readonly string[]]> = [
  [
    null,
    [
      'add_key',
      'keyctl',
      'request_key',
      'kexec_load',
      'kexec_file_load',
      'userfaultfd',
      'uselib',
      'ustat',
      'sysfs',
      '_sysctl',
      'vm86',
      'vm86old',
      'nfsservctl',
      'create_module',
      'get_kernel_syms',
      'query_module',
    ],
  ],
  [
    'CAP_SYS_ADMIN',
    [
      'mount',
      'umount',
      'umount2',
      'unshare',
      'setns',
      'pivot_root',
      'bpf',
      'perf_event_open',
      'quotactl',
      'lookup_dcookie',
      'fanotify_init',
      'swapon',
      'swapoff',
      'fsopen',
      'fsconfig',
      'fsmount',
      'fspick',
      'move_mount',
      'open_tree',
    ],
  ],
  ['CAP_SYS_PTRACE', ['ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp']],
  ['CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
  ['CAP_SYS_TIME', ['settimeofday', 'stime', 'clock_settime', 'clock_adjtime', 'adjtimex']],
  ['CAP_SYS_BOOT', ['reboot']],
  ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
  ['CAP_SYS_PACCT', ['acct']],
  ['CAP_SYSLOG', ['syslog']],
  ['CAP_SYS_NICE', ['mbind', 'get_mempolicy', 'set_mempolicy', 'move_pages']],
  ['CAP_SYS_TTY_CONFIG', ['vhangup']],
  ['CAP_DAC_READ_SEARCH', ['open_by_handle_at', 'name_to_handle_at']],
];

const ARCHES: Record<string, string[]> = {
  x64: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
  arm64: ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'],
};

/** Cradle's RuntimeDefault profile for a container holding `capabilities`. */
export function runtimeDefaultProfile(capabilities: readonly string[]): Record<string, unknown> {
  const names = BLOCKED.filter(([cap]) => cap === null || !capabilities.includes(cap)).flatMap(([, calls]) => calls);
  return {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ARCHES[process.arch] ?? [],
    syscalls: [{ names, action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
  };
}

const MAX_PROFILE_BYTES = 1024 * 1024;

/** The seccomp section of the OCI spec, or undefined for none. */
export function seccompSection(choice: SeccompChoice, capabilities: readonly string[], privileged: boolean): Record<string, unknown> | undefined {
  if (privileged || choice.kind === 'unconfined') return undefined;
  if (choice.kind === 'runtime-default') return runtimeDefaultProfile(capabilities);
  if (!isAbsolute(choice.path)) throw new InvalidArgumentError(`seccomp profile ${JSON.stringify(choice.path)} must be an absolute path`);
  let text: string;
  try {
    // A regular file of a sane size: a path such as /dev/zero must not be read at all.
    const st = statSync(choice.path);
    if (!st.isFile() || st.size > MAX_PROFILE_BYTES) throw new Error(`not a regular file of at most ${MAX_PROFILE_BYTES} bytes`);
    text = readFileSync(choice.path, 'utf8');
  } catch (err) {
    throw new InvalidArgumentError(`cannot read seccomp profile ${choice.path}: ${errorMessage(err)}`);
  }
  let profile: unknown;
  try {
    profile = JSON.parse(text);
  } catch {
    // JSON.parse quotes the text it chokes on: the file could be anything on the host (/etc/shadow).
    throw new InvalidArgumentError(`seccomp profile ${choice.path} is not JSON`);
  }
  if (typeof profile !== 'object' || profile === null || typeof (profile as { defaultAction?: unknown }).defaultAction !== 'string') {
    throw new InvalidArgumentError(`seccomp profile ${choice.path} has no defaultAction`);
  }
  return profile as Record<string, unknown>;
}
