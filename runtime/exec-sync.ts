import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { DeadlineExceededError, errorMessage, InternalError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { Semaphore } from '../core/semaphore.js';
import { secondsToTimerMs } from '../core/timers.js';
import { type Child, spawnChild } from '../native/child-process.js';
import type { OciRuntime } from './oci-runtime.js';
import { killAll, processTree } from './process-tree.js';

/** kubelet caps what it keeps of a probe's output; so does the runtime. */
export const EXEC_OUTPUT_CAP = 16 * 1024 * 1024;

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

export interface ExecRequest {
  runtime: OciRuntime;
  id: string;
  bundle: string;
  cmd: readonly string[];
  timeoutSeconds: number;
  /** The call's end (its deadline, or the caller going away): a command not started by then never is; one running is killed. */
  signal?: AbortSignal;
}

/**
 * Runtime execs at once. Each is a fork of the daemon and two runs of the
 * runtime's binary: on a small node, probes of hundreds of containers would
 * otherwise start them faster than the CPU can finish them, and calls
 * whose callers gave up would still run. Those that wait count their wait
 * against their timeout.
 */
const execSlots = new Semaphore(Math.max(2, 2 * availableParallelism()));

/** The process an exec runs: the container's own (user, env, cwd, capabilities) with another command. */
export async function execProcessSpec(bundle: string, cmd: readonly string[], terminal: boolean): Promise<Record<string, unknown>> {
  const container = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: Record<string, unknown> };
  return { ...container.process, args: cmd, terminal };
}

/**
 * Keeps the first `cap` bytes of a stream and counts the rest: the stream
 * is always read to its end (so the writer never blocks) while memory
 * stays bounded whatever the command prints.
 */
export class CappedOutput {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  dropped = 0;

  constructor(private readonly cap: number) {}

  add(chunk: Buffer): void {
    const room = this.cap - this.kept;
    if (room <= 0) {
      this.dropped += chunk.length;
      return;
    }
    const piece = chunk.length <= room ? chunk : chunk.subarray(0, room);
    this.chunks.push(piece);
    this.kept += piece.length;
    this.dropped += chunk.length - piece.length;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks, this.kept);
  }
}

/**
 * The runtime could not start the command at all (no such executable, a
 * bad working dir): runc says `exec failed: unable to start container
 * process: ...`, crun names the executable. Such a failure is the
 * command's result, as a shell would report it: 127 when something is
 * not there, 126 otherwise, with the runtime's reason on stderr.
 */
export function startFailure(exitCode: number, stderr: string): { exitCode: number; reason: string } | undefined {
  if (exitCode !== 255 && exitCode !== 127 && exitCode !== 126 && exitCode !== 1) return undefined;
  const m = /exec failed: unable to start container process: ((?:[^"\\\n]|\\.)*)/.exec(stderr) ?? /(executable file `[^`]*` not found[^\n]*)/.exec(stderr);
  if (!m) return undefined;
  const reason = (m[1] as string).replace(/\\"/g, '"');
  return { exitCode: /not found|no such file or directory/i.test(reason) ? 127 : 126, reason };
}

/**
 * Runs `cmd` in a running container through the OCI runtime (`exec`), as
 * the container's own process is run (its user, env, cwd, capabilities).
 * Output is read from pipes and capped (never staged in a file, whatever
 * its size). A non-zero exit is a result. On timeout the command and
 * everything it started are killed and the call fails with
 * DEADLINE_EXCEEDED.
 */
export async function execSync(req: ExecRequest): Promise<ExecResult> {
  const timeout = req.timeoutSeconds > 0 ? AbortSignal.timeout(secondsToTimerMs(req.timeoutSeconds)) : undefined;
  const waited = AbortSignal.any([timeout, req.signal].filter((s): s is AbortSignal => s !== undefined));
  const release = await execSlots.acquire(waited).catch(() => {
    throw new DeadlineExceededError(
      `command ${JSON.stringify(req.cmd.join(' '))} in container "${req.id}" was not started: ${timeout?.aborted ? `its ${req.timeoutSeconds}s timeout passed` : 'the call ended'} while ${execSlots.queued} other commands waited for the runtime`,
    );
  });
  try {
    return await execNow(req, waited);
  } finally {
    release();
  }
}

async function execNow(req: ExecRequest, ended: AbortSignal): Promise<ExecResult> {
  const dir = join(req.bundle, 'exec');
  await mkdir(dir, { recursive: true });
  const specFile = join(dir, `sync-${newId().slice(0, 16)}.json`);
  await writeFile(specFile, JSON.stringify(await execProcessSpec(req.bundle, req.cmd, false)));
  try {
    let child: Child;
    try {
      child = spawnChild(req.runtime.path, [...req.runtime.globalArgs, 'exec', '--process', specFile, req.id]);
    } catch (err) {
      throw new InternalError(`cannot run ${req.runtime.path}: ${errorMessage(err)}`);
    }
    const stdout = new CappedOutput(EXEC_OUTPUT_CAP);
    const stderr = new CappedOutput(EXEC_OUTPUT_CAP);
    child.stdout?.on('data', (d: Buffer) => stdout.add(d));
    child.stderr?.on('data', (d: Buffer) => stderr.add(d));
    let timedOut = false;
    // The daemon owns the timeout (counted from the call, queue included): the command may have started a whole tree.
    const kill = () => {
      timedOut = true;
      void processTree(child.pid).then(killAll);
    };
    if (ended.aborted) kill();
    else ended.addEventListener('abort', kill, { once: true });
    const status = await child.closed;
    ended.removeEventListener('abort', kill);
    if (timedOut)
      throw new DeadlineExceededError(`command ${JSON.stringify(req.cmd.join(' '))} in container "${req.id}" timed out after ${req.timeoutSeconds}s`);
    const exitCode = status.code ?? 128 + (status.signal === 'SIGKILL' ? 9 : 15);
    const failed = startFailure(exitCode, stderr.bytes().toString());
    if (failed) return { stdout: Buffer.alloc(0), stderr: Buffer.from(`${failed.reason}\n`), exitCode: failed.exitCode };
    return { stdout: stdout.bytes(), stderr: stderr.bytes(), exitCode };
  } finally {
    await rm(specFile, { force: true });
  }
}
