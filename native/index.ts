import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot } from '../core/package-info.js';
import { errorMessage } from '../core/errors.js';

/** The C++ addon's surface (native/src): syscalls Node lacks. */
export interface NativeConstants {
  LOCK_SH: number;
  LOCK_EX: number;
  LOCK_NB: number;
  LOCK_UN: number;
  MS_RDONLY: number;
  MS_NOSUID: number;
  MS_NODEV: number;
  MS_NOEXEC: number;
  MS_REMOUNT: number;
  MS_BIND: number;
  MS_REC: number;
  MS_PRIVATE: number;
  MS_SLAVE: number;
  MS_SHARED: number;
  MS_UNBINDABLE: number;
  S_IFCHR: number;
  S_IFBLK: number;
  S_IFIFO: number;
  MNT_DETACH: number;
  MNT_FORCE: number;
  UMOUNT_NOFOLLOW: number;
}

export interface GzipDecoder {
  /**
   * Decodes from `input` into `output` as much as fits: `read` input bytes
   * used, `written` output bytes, `end` once the input so far ends a gzip
   * member. Concatenated members are decoded on; other bytes after the end
   * are ignored, as gzip(1) does. Throws on corrupt data.
   */
  inflate(input: Buffer, output: Buffer): { read: number; written: number; end: boolean };
  close(): void;
}

export interface NativeAddon {
  abiVersion: number;
  constants: NativeConstants;
  /** One datagram to systemd's notify socket (a path, or "@name" in the abstract namespace); throws an errno error. */
  sdNotify(socketPath: string, message: string): void;
  /** glibc's malloc_trim(0): free heap pages back to the kernel; true when some were. */
  mallocTrim(): boolean;
  /** A gzip decoder that runs on the calling thread, into the caller's buffers (for the unpack worker). */
  Gunzip: new () => GzipDecoder;
  /** flock(2); throws an errno error (EWOULDBLOCK when LOCK_NB finds it held). */
  flock(fd: number, operation: number): void;
  /** mount(2) on the thread pool. Empty source or fstype pass NULL. */
  mount(source: string, target: string, fstype: string, flags: number, data?: string): Promise<void>;
  /** umount2(2) on the thread pool. */
  umount2(target: string, flags: number): Promise<void>;
  /**
   * Starts `initPath args` as PID 1 of a new PID namespace, inside the
   * namespaces whose files are given (net, ipc, uts pins), detached from
   * the daemon, and bind-mounts that PID namespace onto `pidPin`.
   */
  spawnPodInit(joinFiles: readonly string[], initPath: string, args: readonly string[], pidPin: string): Promise<{ pid: number; pin: string }>;
  /** mknod(2); synchronous, for the unpack worker thread. */
  mknod(path: string, mode: number, major: number, minor: number): void;
  /** lsetxattr(2); synchronous, for the unpack worker thread. */
  lsetxattr(path: string, name: string, value: Buffer): void;
  /** mount(2) from a child whose cwd is `cwd`, for relative overlay lowerdirs. */
  mountAt(cwd: string, source: string, target: string, fstype: string, flags: number, data: string): Promise<void>;
  /** Calls `onExit` once when `pid` exits (a pidfd on the event loop; no polling). Throws ESRCH if it is already gone. */
  watchExit(pid: number, onExit: () => void): ExitWatch;
  /**
   * Sends `signal` to `pid` through a pidfd if /proc/<pid>/cgroup contains
   * `marker` (checked once the pidfd holds the process, so a reused pid is
   * never signalled). False when the process is gone or elsewhere.
   */
  signalInCgroup(pid: number, signal: number, marker: string): boolean;
  /** A TCP connection to 127.0.0.1:port made inside the network namespace at `nsPath`; the socket's fd. */
  connectInNetns(nsPath: string, port: number): Promise<number>;
  /**
   * Connects to conmon's attach socket (SOCK_SEQPACKET; long paths are
   * handled) and delivers each packet on the event loop until it closes.
   */
  attachPackets(path: string, onPacket: (packet: Buffer) => void, onClose: () => void): AttachConnection;
  /**
   * Starts `file` with clone(CLONE_VM|CLONE_VFORK), every signal at its
   * default (searched in the child's PATH when it has no slash) with
   * `argv` (argv[0] included) and `env` (null: the daemon's). `fds[i]`
   * becomes the child's fd i (-1: /dev/null); `setsid` makes it a session
   * and process group leader. `onExit` is called once when it has been
   * reaped. Throws an errno error when it cannot be started.
   */
  spawnChild(
    file: string,
    argv: readonly string[],
    env: readonly string[] | null,
    cwd: string | null,
    fds: readonly number[],
    setsid: boolean,
    onExit: (code: number | null, signal: number | null) => void,
  ): NativeChild;
  /** Reads small files (cgroup and /proc counters) whole, all in one trip to the thread pool; undefined where one cannot be read. */
  readFiles(paths: readonly string[]): Promise<(string | undefined)[]>;
  /** Space (st_blocks) and entries below `dir`, on the thread pool; symlinks not followed; zero when it is gone. */
  diskUsage(dir: string): Promise<{ bytes: number; inodes: number }>;
  /** pipe2(O_CLOEXEC): [read end, write end]. */
  pipe(): [number, number];
  /** A terminal pair (master, slave) of the given size. */
  openpty(rows: number, cols: number): { master: number; slave: number };
  /** TIOCSWINSZ on a terminal. */
  setWinsize(fd: number, rows: number, cols: number): void;
  /** FIONREAD: bytes a pipe or FIFO holds that its reader has not read yet. */
  unreadBytes(fd: number): number;
  /**
   * Creates new namespaces of the given kinds in a short-lived child, sets
   * the hostname (uts) and namespaced sysctls inside (each given as its
   * path below /proc/sys, e.g. `net/ipv4/ip_forward`), brings lo up (net),
   * and bind-mounts each namespace onto `<dir>/<kind>`. With 'user' the
   * others are made inside a new user namespace given `uidMap`/`gidMap`
   * ("<inside> <outside> <count>" lines), which then owns them. The daemon's own
   * namespaces are never changed. Nothing is left behind on failure.
   */
  pinNamespaces(
    dir: string,
    kinds: readonly PinnableNamespace[],
    hostname: string,
    sysctls: ReadonlyArray<readonly [string, string]>,
    uidMap?: string,
    gidMap?: string,
  ): Promise<Partial<Record<PinnableNamespace, string>>>;
  /**
   * An idmapped mount of `source` at `target`: owners shifted through the
   * user namespace at `usernsPath` (open_tree + mount_setattr + move_mount).
   */
  idmapMount(source: string, target: string, usernsPath: string, recursive: boolean): Promise<void>;
}

/** With 'user', the other namespaces are made inside it (it needs uid and gid maps). */
export type PinnableNamespace = 'net' | 'ipc' | 'uts' | 'user';

export interface AttachConnection {
  /** Sends one packet; false when it could not be sent now. */
  send(packet: Buffer): boolean;
  shutdownWrite(): void;
  close(): void;
}

export interface NativeChild {
  readonly pid: number;
  /** pidfd_send_signal; false once the child is reaped or when it failed. */
  kill(signal: number): boolean;
  /** Lets the event loop end while the child runs. */
  unref(): void;
}

export interface ExitWatch {
  close(): void;
}

const EXPECTED_ABI = 10;

export const ADDON_PATH = join(packageRoot, 'native', 'build', 'Release', 'cradle_native.node');

export class NativeAddonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NativeAddonError';
  }
}

let cached: NativeAddon | undefined;

/**
 * Loads the addon once. A missing or stale build is reported as one sentence
 * saying how to rebuild, instead of a stack of module-loader frames.
 */
export function loadNative(path: string = ADDON_PATH): NativeAddon {
  if (cached !== undefined && path === ADDON_PATH) return cached;
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    const first = errorMessage(err).split('\n')[0];
    throw new NativeAddonError(`native addon ${path} cannot be loaded (${first}); build it with "npm ci" or "npm run build:native"`);
  }
  if (addon.abiVersion !== EXPECTED_ABI) {
    throw new NativeAddonError(`native addon ${path} is version ${String(addon.abiVersion)}, expected ${EXPECTED_ABI}; rebuild it with "npm run build:native"`);
  }
  if (path === ADDON_PATH) cached = addon;
  return addon;
}
