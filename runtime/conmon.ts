import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Socket } from 'node:net';
import { conmonScope } from '../cgroups/cgroup-paths.js';
import { errorMessage, InternalError, InvalidArgumentError } from '../core/errors.js';
import { type Child, spawnChild } from '../native/child-process.js';
import type { ContainerRecord } from './container-record.js';
import type { OciRuntime } from './oci-runtime.js';
import { commandLine, isAlive } from './process-tree.js';
import { step } from '../core/tracing.js';

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
  /** CRIU's images of a checkpoint: conmon runs `<runtime> restore` from them instead of `create`, and the container runs at once. */
  restore?: string;
}

/**
 * conmon's options for container `rec`, created in `bundle` with
 * `runtime`; with `restore`, restored from CRIU's images there instead.
 * Under the systemd driver, conmon gets a scope of its own.
 */
export function conmonLaunchFor(
  rec: ContainerRecord,
  runtime: OciRuntime,
  bundle: string,
  env: { conmon: string; exitDir: string; socketDir: string; logSizeMax: number },
  restore?: string,
): ConmonLaunch {
  return {
    ...env,
    runtime: runtime.path,
    runtimeArgs: runtime.globalArgs,
    id: rec.id,
    name: rec.name ?? rec.id,
    bundle,
    persistDir: join(bundle, 'persist'),
    logPath: rec.logPath,
    tty: rec.spec.tty,
    stdin: rec.spec.stdin,
    leaveStdinOpen: !rec.spec.stdinOnce,
    scope: runtime.systemdCgroup ? conmonScope(rec.id) : undefined,
    restore,
  };
}

/** How long conmon and `<runtime> create` may take, on a node as busy as it gets. */
const SYNC_TIMEOUT_MS = 120_000;
/** conmon's stderr kept for error messages. */
const STDERR_CAP = 64 * 1024;

/**
 * Starts conmon, which runs `<runtime> create` and then monitors the
 * container: it holds its stdio, writes the CRI log and records the exit
 * code in the exit dir. conmon reports the container's pid (or the
 * runtime's error) on the sync pipe (fd 3) and detaches, so containers
 * outlive the daemon.
 *
 * conmon's first process exits as soon as it has daemonized, long before
 * a slow `create` finishes; its daemonized child holds the pipe's write
 * end until it has reported. So the answer is the pipe's first message,
 * and the pipe's end without one is the failure: never the first process's
 * exit. One timeout bounds the whole wait and ends the conmon it started.
 */
export function launchWithConmon(l: ConmonLaunch): Promise<number> {
  return step(l.restore ? 'conmon + runtime restore' : 'conmon + runtime create', () => launch(l));
}

function launch(l: ConmonLaunch): Promise<number> {
  const args = [
    '--api-version',
    '1',
    '-c',
    l.id,
    '-u',
    l.id,
    '-n',
    l.name,
    '-r',
    l.runtime,
    ...l.runtimeArgs.flatMap((a) => ['--runtime-arg', a]),
    '-b',
    l.bundle,
    '-p',
    `${l.bundle}/pidfile`,
    '-P',
    conmonPidFile(l.bundle),
    '--exit-dir',
    l.exitDir,
    '--persist-dir',
    l.persistDir,
    '--socket-dir-path',
    l.socketDir,
    '-l',
    `k8s-file:${l.logPath}`,
    '--log-level',
    'warning',
  ];
  if (l.logSizeMax > 0) args.push('--log-size-max', String(l.logSizeMax));
  if (l.tty) args.push('-t');
  if (l.stdin) args.push('-i');
  if (l.stdin && l.leaveStdinOpen) args.push('--leave-stdin-open');
  if (l.scope) args.push('--systemd-cgroup');
  // Checkpoints are taken with --file-locks, and CRIU restores locks only when asked again.
  if (l.restore) args.push('--restore', l.restore, '--runtime-opt', '--file-locks');
  // systemd-run --scope registers the scope and then execs conmon: the sync pipe passes through.
  const [command, ...argv] = l.scope
    ? ['systemd-run', '--scope', `--unit=${l.scope}`, '--slice=system.slice', '--collect', '--quiet', '--', l.conmon, ...args]
    : [l.conmon, ...args];
  return new Promise((resolve, reject) => {
    let child: Child;
    try {
      child = spawnChild(command as string, argv, {
        cwd: l.bundle,
        setsid: true,
        stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
        env: { ...process.env, _OCI_SYNCPIPE: '3' },
      });
    } catch (err) {
      reject(new InternalError(`cannot run ${command as string}: ${errorMessage(err)}`));
      return;
    }
    const pipe = child.stdio[3] as Socket;
    let sync = '';
    let stderr = '';
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // conmon may keep its end open while the container runs: the daemon keeps no fd for it.
      pipe.destroy();
      child.stderr?.destroy();
      fn();
    };
    const fail = (message: string) => finish(() => reject(createError(message)));
    const timer = setTimeout(() => {
      fail(`conmon for ${l.id} did not report within ${SYNC_TIMEOUT_MS / 1000}s${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
      void stopConmon(l.bundle, l.id, { extra: [child.pid] });
    }, SYNC_TIMEOUT_MS);
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < STDERR_CAP) stderr += d.toString();
    });
    pipe.on('data', (d: Buffer) => {
      sync += d.toString();
      const newline = sync.indexOf('\n');
      const line = newline < 0 ? undefined : sync.slice(0, newline);
      // conmon ends each message with a newline; a partial one waits for the rest.
      if (line === undefined) return;
      let msg: { data?: unknown; message?: unknown };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        fail(`conmon for ${l.id} sent an unreadable message: ${JSON.stringify(line.slice(0, 200))}`);
        return;
      }
      const pid = typeof msg.data === 'number' ? msg.data : -1;
      if (pid > 0) finish(() => resolve(pid));
      else
        fail(
          `${l.runtime} ${l.restore ? 'restore' : 'create'} ${l.id} failed: ${typeof msg.message === 'string' ? msg.message.trim() : stderr.trim() || 'no message'}`,
        );
    });
    pipe.on('error', () => undefined);
    // Every holder of the write end is gone and nothing was said: conmon or the runtime died.
    pipe.on('end', () => fail(`conmon for ${l.id} ended without reporting: ${stderr.trim() || 'no output'}`));
    child.unref();
  });
}

/**
 * A failed create as the caller should hear it. A working directory or a
 * mount target that exists in the image as a file is the request's mistake,
 * which only the runtime can see when it makes or enters it (runc: `mkdir
 * /dev/null: not a directory`, crun: `chdir to `/dev/null`: Not a
 * directory`); anything else is the node's.
 */
function createError(message: string): InternalError | InvalidArgumentError {
  if (/(chdir to|mkdir) [^\n]*: not a directory/i.test(message)) {
    return new InvalidArgumentError(`config.working_dir or a mount's container_path names a file in the container, not a directory: ${message}`);
  }
  return new InternalError(message);
}

/** Where conmon writes the pid of its daemonized process. */
export function conmonPidFile(bundle: string): string {
  return join(bundle, 'conmon.pid');
}

/** Programs that work on a container by its id: its monitor, and the runtime while it creates. */
const MONITORS = new Set(['conmon', 'systemd-run', 'runc', 'crun']);

/**
 * Ends the processes still working on container `id`: its conmon (from the
 * pid file, plus `extra` pids) and, with `search`, any conmon or runtime
 * found in /proc whose arguments name the id (a create the daemon died in,
 * before conmon wrote its pid file). A pid is signalled only while its
 * command line still names the container, so a recycled pid is left alone.
 */
export async function stopConmon(bundle: string, id: string, options: { extra?: readonly number[]; search?: boolean } = {}): Promise<void> {
  const candidates = new Set<number>(options.extra ?? []);
  const text = await readFile(conmonPidFile(bundle), 'utf8').catch(() => '');
  const daemonized = Number.parseInt(text.trim(), 10);
  if (Number.isInteger(daemonized) && daemonized > 0) candidates.add(daemonized);
  if (options.search) for (const entry of await readdir('/proc')) if (/^\d+$/.test(entry)) candidates.add(Number(entry));
  for (const pid of candidates) {
    if (pid === process.pid) continue;
    const args = await commandLine(pid);
    if (args.length === 0 || !MONITORS.has(basename(args[0] as string)) || !args.includes(id)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Whether the conmon of container `id` (from its pid file) still runs. */
export async function conmonAlive(bundle: string, id: string): Promise<boolean> {
  const pid = Number.parseInt((await readFile(conmonPidFile(bundle), 'utf8').catch(() => '')).trim(), 10);
  if (!Number.isInteger(pid) || pid <= 0 || !(await isAlive(pid))) return false;
  return (await commandLine(pid)).includes(id);
}
