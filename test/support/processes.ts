import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

/**
 * Every process a test starts is registered here, so that a failing or
 * interrupted run still ends them (by pid, and only them).
 */
const live = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

export function spawnTracked(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  return track(spawn(command, args, options));
}

export function killAllTracked(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  live.clear();
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function exited(child: ChildProcess): Promise<ExitStatus> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

export interface RunResult extends ExitStatus {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, collecting its output. */
export function run(command: string, args: readonly string[], options: SpawnOptions & { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const withInput = options.input !== undefined;
  const child = spawnTracked(command, args, { ...options, stdio: [withInput ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  if (withInput) {
    // A command may exit before reading its input; that is its answer, not a test error.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input);
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
  return exited(child).then((status) => {
    clearTimeout(timer);
    return { ...status, stdout, stderr };
  });
}

process.on('exit', killAllTracked);
