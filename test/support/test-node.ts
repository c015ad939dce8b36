import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { CriClient } from '../../cri/client.js';
import { packageRoot } from '../../core/package-info.js';
import { exited, killAllTracked, run, spawnTracked, type ExitStatus, type RunResult } from './processes.js';
import { waitFor } from './wait.js';

/** What the package ships and the launcher runs: the bundled entry (scripts/bundle.mjs). */
export const CRADLE_BIN = join(packageRoot, 'dist', 'bundle', 'cradle.js');

/** The daemon runs with the node flags and malloc setting it is shipped with (scripts/node-flags.sh). */
const shipped = readFileSync(join(packageRoot, 'scripts', 'node-flags.sh'), 'utf8');
const NODE_FLAGS = (/^CRADLE_NODE_FLAGS='([^']*)'$/m.exec(shipped)?.[1] ?? '').split(' ').filter((f) => f !== '');
const MALLOC_ARENA_MAX = /^CRADLE_MALLOC_ARENA_MAX=(\d+)$/m.exec(shipped)?.[1] ?? '';

/**
 * A config for tests: everything under the node's own directory, so nothing
 * on the machine (/etc/cni, /var/lib/cradle) is read or written.
 */
export function testConfigToml(dir: string): string {
  return `root = "${dir}/root"
runroot = "${dir}/run"
listen = "${dir}/run/cradle.sock"
shutdown_timeout = "5s"

[log]
level = "debug"
format = "json"

[cni]
conf_dir = "${dir}/cni/net.d"
bin_dirs = ["${dir}/cni/bin", "/usr/lib/cni"]
`;
}

export interface DaemonHandle {
  process: ChildProcess;
  pid: number;
  /** Everything the daemon wrote to stderr so far (its log). */
  log(): string;
  exited: Promise<ExitStatus>;
}

let nodes = 0;
const liveNodes = new Set<TestNode>();

/**
 * A stand-in for a Kubernetes node: private network and mount namespaces
 * held open by a sleeping process, and a directory for state, config and
 * logs. Daemons are started inside those namespaces with nsenter, so a
 * restarted daemon finds the mounts and network its predecessor made, and
 * nothing reaches the machine's own network or mount table.
 */
export class TestNode {
  readonly dir: string;
  readonly configPath: string;
  readonly socket: string;
  readonly cniConfDir: string;
  private holder: ChildProcess | undefined;
  private current: DaemonHandle | undefined;
  private clientCache: CriClient | undefined;

  private constructor(dir: string) {
    this.dir = dir;
    this.configPath = join(dir, 'cradle.toml');
    this.socket = join(dir, 'run', 'cradle.sock');
    this.cniConfDir = join(dir, 'cni', 'net.d');
  }

  static async create(options: { config?: string } = {}): Promise<TestNode> {
    if (process.getuid?.() !== 0) throw new Error('integration tests run as root: they create namespaces and mounts');
    const dir = mkdtempSync(join(tmpdir(), `cradle-test-${process.pid}-${nodes++}-`));
    // Searchable, as /var/lib is: user-namespaced containers reach their roots from inside the namespace.
    chmodSync(dir, 0o711);
    const node = new TestNode(dir);
    liveNodes.add(node);
    mkdirSync(node.cniConfDir, { recursive: true });
    mkdirSync(join(dir, 'cni', 'bin'), { recursive: true });
    writeFileSync(node.configPath, options.config ?? testConfigToml(dir));
    await node.startHolder();
    return node;
  }

  /** The namespaces of the node: a new network and mount namespace, with lo up. */
  private async startHolder(): Promise<void> {
    this.holder = spawnTracked('unshare', ['--net', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'ip link set lo up && exec sleep infinity'], {
      stdio: 'ignore',
    });
    const holderPid = this.holder.pid as number;
    // The namespaces exist once the holder has exec'd sleep.
    await waitFor('namespace holder', () => (readlinkSync(`/proc/${holderPid}/exe`).includes('sleep') ? true : undefined));
  }

  /**
   * What a host reboot does to the runtime's world: every process and mount
   * is gone, the network namespace is new, and the run dir is empty. The
   * persistent root stays.
   */
  async reboot(): Promise<void> {
    if (this.current) await this.stopDaemon('SIGKILL');
    this.killNamespaceMembers();
    if (this.holder && this.holder.exitCode === null) {
      this.holder.kill('SIGKILL');
      await exited(this.holder);
    }
    rmSync(join(this.dir, 'run'), { recursive: true, force: true });
    await this.startHolder();
  }

  /** The daemon's view of mounts (it runs in the node's mount namespace). */
  mountinfo(): string {
    return readFileSync(`/proc/${this.holderPid}/mountinfo`, 'utf8');
  }

  get holderPid(): number {
    return this.holder?.pid as number;
  }

  /** Runs a command inside the node's namespaces. */
  exec(command: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    return run('nsenter', ['-t', String(this.holderPid), '--net', '--mount', '--', command, ...args], options);
  }

  /** Starts a long-running command inside the node's namespaces, its stdio piped. */
  spawn(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    return spawnTracked('nsenter', ['-t', String(this.holderPid), '--net', '--mount', '--', command, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
  }

  /** Starts `cradle daemon` in the node without waiting for it. */
  spawnDaemon(extraArgs: readonly string[] = [], env: Readonly<Record<string, string>> = {}): DaemonHandle {
    const child = spawnTracked(
      'nsenter',
      [
        '-t',
        String(this.holderPid),
        '--net',
        '--mount',
        '--',
        process.execPath,
        ...NODE_FLAGS,
        CRADLE_BIN,
        'daemon',
        '--config',
        this.configPath,
        ...extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MALLOC_ARENA_MAX, ...env } },
    );
    let log = '';
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    return { process: child, pid: child.pid as number, log: () => log, exited: exited(child) };
  }

  /** Starts the daemon and waits until it answers Version and has finished start-up. */
  async startDaemon(extraArgs: readonly string[] = [], timeoutMs = 60_000, env: Readonly<Record<string, string>> = {}): Promise<DaemonHandle> {
    const daemon = this.spawnDaemon(extraArgs, env);
    this.current = daemon;
    let gone: ExitStatus | undefined;
    void daemon.exited.then((s) => (gone = s));
    await waitFor(
      'the daemon to become ready',
      async () => {
        if (gone) throw new Error(`daemon exited (${JSON.stringify(gone)}) during start-up:\n${daemon.log()}`);
        return daemon.log().includes('"message":"ready"') ? true : undefined;
      },
      timeoutMs,
    ).catch((err: unknown) => {
      throw err instanceof Error && !gone ? new Error(`${err.message}\ndaemon log:\n${daemon.log()}`) : err;
    });
    return daemon;
  }

  get daemon(): DaemonHandle {
    if (!this.current) throw new Error('no daemon started on this node');
    return this.current;
  }

  client(): CriClient {
    this.clientCache ??= new CriClient(this.socket);
    return this.clientCache;
  }

  /** Sends `signal` to the daemon and waits for it to exit. */
  async stopDaemon(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<ExitStatus> {
    const daemon = this.current;
    if (!daemon) throw new Error('no daemon started on this node');
    this.clientCache?.close();
    this.clientCache = undefined;
    daemon.process.kill(signal);
    const timer = setTimeout(() => daemon.process.kill('SIGKILL'), timeoutMs);
    const status = await daemon.exited;
    clearTimeout(timer);
    this.current = undefined;
    return status;
  }

  /**
   * Restarts the daemon armed to SIGKILL itself at `step` (core/failpoints.ts),
   * runs `request` (which should reach it) and, once the daemon has died,
   * starts a fresh one without failpoints. Throws if the daemon lived on.
   */
  async crashAt(step: string, request: () => Promise<unknown>, timeoutMs = 60_000): Promise<void> {
    await this.stopDaemon('SIGTERM');
    const daemon = await this.startDaemon([], timeoutMs, { CRADLE_FAILPOINTS: step });
    const outcome = await request().then(
      () => 'answered',
      () => 'failed',
    );
    // A daemon that answered and lives on never reached the step.
    let timer: NodeJS.Timeout | undefined;
    const died = await Promise.race([daemon.exited.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 30_000)))]);
    clearTimeout(timer);
    if (!died) throw new Error(`${step} was never reached (the request ${outcome})`);
    this.clientCache?.close();
    this.clientCache = undefined;
    this.current = undefined;
    await this.startDaemon([], timeoutMs);
  }

  /**
   * Processes inside the node's mount namespace other than the holder:
   * what the runtime under test started (conmon, shims, containers). They
   * are ours to end, found by namespace rather than by name.
   */
  namespaceMembers(): number[] {
    const holder = this.holderPid;
    let mnt: string;
    try {
      mnt = readlinkSync(`/proc/${holder}/ns/mnt`);
    } catch {
      return [];
    }
    const out: number[] = [];
    for (const entry of readdirSync('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || pid === holder || pid === process.pid) continue;
      try {
        if (readlinkSync(`/proc/${pid}/ns/mnt`) === mnt) out.push(pid);
      } catch {
        // exited meanwhile
      }
    }
    return out;
  }

  killNamespaceMembers(): void {
    for (const pid of this.namespaceMembers()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /** Ends the daemon, whatever it left running in the node, and the holder; removes the node's directory. */
  async destroy(): Promise<void> {
    liveNodes.delete(this);
    this.clientCache?.close();
    this.clientCache = undefined;
    if (this.current && this.current.process.exitCode === null && this.current.process.signalCode === null) {
      await this.stopDaemon('SIGTERM', 10_000).catch(() => undefined);
    }
    this.killNamespaceMembers();
    if (this.holder && this.holder.exitCode === null) {
      this.holder.kill('SIGKILL');
      await exited(this.holder);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * On SIGINT/SIGTERM (an interrupted run) nothing async can be awaited: end
 * what each node runs, by pid, so its namespaces and mounts go away with it.
 */
function emergencyTeardown(): void {
  for (const node of liveNodes) node.killNamespaceMembers();
  killAllTracked();
  for (const node of liveNodes) rmSync(node.dir, { recursive: true, force: true });
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    emergencyTeardown();
    process.exit(130);
  });
}

export async function destroyAllNodes(): Promise<void> {
  for (const node of [...liveNodes]) await node.destroy();
}
