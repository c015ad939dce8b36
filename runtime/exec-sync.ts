import { spawn } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { DeadlineExceededError } from '../core/errors.js';
import type { OciRuntime } from './oci-runtime.js';

/** kubelet caps what it keeps of a probe's output; so does the runtime. */
export const EXEC_OUTPUT_CAP = 16 * 1024 * 1024;

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

function capped(stream: NodeJS.ReadableStream): () => Buffer {
  const chunks: Buffer[] = [];
  let size = 0;
  stream.on('data', (d: Buffer) => {
    if (size >= EXEC_OUTPUT_CAP) return;
    const part = d.subarray(0, EXEC_OUTPUT_CAP - size);
    chunks.push(part);
    size += part.length;
  });
  return () => Buffer.concat(chunks);
}

/** `pid` and all its descendants, children first found by their parent in /proc. */
export async function processTree(pid: number): Promise<number[]> {
  const parents = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      // The command name may hold spaces and parentheses: fields follow the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = parents.get(ppid) ?? [];
      list.push(Number(entry));
      parents.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const visit = (p: number) => {
    out.push(p);
    for (const c of parents.get(p) ?? []) visit(c);
  };
  visit(pid);
  return out;
}

function killAll(pids: readonly number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/**
 * Runs `cmd` in a running container as its own process is run (user, env,
 * cwd and capabilities come from the container's spec; `runc exec` copies
 * them). A non-zero exit is a result; passing `timeoutSeconds` (0: none)
 * kills the exec'd process and fails with DEADLINE_EXCEEDED.
 */
export async function execSync(runtime: OciRuntime, id: string, cmd: readonly string[], timeoutSeconds: number, pidFile: string): Promise<ExecResult> {
  const child = spawn(runtime.path, ['--root', runtime.root, 'exec', '--pid-file', pidFile, id, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout = capped(child.stdout);
  const stderr = capped(child.stderr);
  let timedOut = false;
  const timer =
    timeoutSeconds > 0
      ? setTimeout(() => {
          timedOut = true;
          // The command and everything it started: orphans would live on under the pod's init.
          void readFile(pidFile, 'utf8')
            .then((pid) => processTree(Number(pid.trim())))
            .then(killAll)
            .catch(() => undefined)
            .finally(() => child.kill('SIGKILL'));
        }, timeoutSeconds * 1000)
      : undefined;
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(c ?? (signal ? 128 + 9 : null)));
  });
  clearTimeout(timer);
  await rm(pidFile, { force: true });
  if (timedOut) throw new DeadlineExceededError(`command ${JSON.stringify(cmd.join(' '))} in container "${id}" timed out after ${timeoutSeconds}s`);
  return { stdout: stdout(), stderr: stderr(), exitCode: code ?? -1 };
}
