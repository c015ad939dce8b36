import { spawn } from 'node:child_process';
import { InternalError } from '../core/errors.js';

export interface ConmonLaunch {
  conmon: string;
  runtime: string;
  runtimeArgs: readonly string[];
  id: string;
  name: string;
  bundle: string;
  exitDir: string;
  persistDir: string;
  socketDir: string;
  logPath: string;
  logSizeMax: number;
  tty: boolean;
  stdin: boolean;
  /** Keep the container's stdin open when an attach session ends. */
  leaveStdinOpen: boolean;
  /**
   * Under the systemd driver conmon gets a transient scope of its own (in
   * system.slice): otherwise it stays in the daemon's service cgroup, where
   * restarting or stopping Cradle's unit would reach the containers' monitors.
   */
  scope: string | undefined;
}

const SYNC_TIMEOUT_MS = 60_000;

/**
 * Starts conmon, which runs `<runtime> create` and then monitors the
 * container: it holds its stdio, writes the CRI log and records the exit
 * code in the exit dir. conmon reports the container's pid (or the
 * runtime's error) on the sync pipe (fd 3) and detaches, so containers
 * outlive the daemon.
 */
export function launchWithConmon(l: ConmonLaunch): Promise<number> {
  const args = [
    '--api-version', '1',
    '-c', l.id,
    '-u', l.id,
    '-n', l.name,
    '-r', l.runtime,
    ...l.runtimeArgs.flatMap((a) => ['--runtime-arg', a]),
    '-b', l.bundle,
    '-p', `${l.bundle}/pidfile`,
    '-P', `${l.bundle}/conmon.pid`,
    '--exit-dir', l.exitDir,
    '--persist-dir', l.persistDir,
    '--socket-dir-path', l.socketDir,
    '-l', `k8s-file:${l.logPath}`,
    '--log-level', 'warning',
  ];
  if (l.logSizeMax > 0) args.push('--log-size-max', String(l.logSizeMax));
  if (l.tty) args.push('-t');
  if (l.stdin) args.push('-i');
  if (l.stdin && l.leaveStdinOpen) args.push('--leave-stdin-open');
  if (l.scope) args.push('--systemd-cgroup');
  // systemd-run --scope registers the scope and then execs conmon: the sync pipe passes through.
  const [command, ...argv] = l.scope ? ['systemd-run', '--scope', `--unit=${l.scope}`, '--slice=system.slice', '--collect', '--quiet', '--', l.conmon, ...args] : [l.conmon, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(command as string, argv, {
      cwd: l.bundle,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      env: { ...process.env, _OCI_SYNCPIPE: '3' },
    });
    let sync = '';
    let stderr = '';
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    const timer = setTimeout(() => finish(() => reject(new InternalError(`conmon for ${l.id} did not report within ${SYNC_TIMEOUT_MS} ms`))), SYNC_TIMEOUT_MS);
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    pipe.on('data', (d: Buffer) => {
      sync += d.toString();
      for (const line of sync.split('\n')) {
        let msg: { data?: unknown; message?: unknown };
        try {
          msg = JSON.parse(line) as typeof msg;
        } catch {
          continue;
        }
        const pid = typeof msg.data === 'number' ? msg.data : -1;
        if (pid > 0) finish(() => resolve(pid));
        else finish(() => reject(new InternalError(`${l.runtime} create ${l.id} failed: ${typeof msg.message === 'string' ? msg.message.trim() : stderr.trim() || 'no message'}`)));
        return;
      }
    });
    pipe.on('error', () => undefined);
    child.on('error', (err) => finish(() => reject(new InternalError(`cannot run ${command as string}: ${err.message}`))));
    child.on('exit', (code) => {
      // conmon's first process exits once it has daemonized; the message may still be in flight.
      setTimeout(() => finish(() => reject(new InternalError(`conmon for ${l.id} exited (${String(code)}) without reporting: ${stderr.trim() || 'no output'}`))), 2000).unref();
    });
    child.unref();
  });
}
