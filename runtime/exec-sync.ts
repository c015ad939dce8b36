import { spawn } from 'node:child_process';
import { readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DeadlineExceededError, InternalError } from '../core/errors.js';
import { newId } from '../core/ids.js';

/** kubelet caps what it keeps of a probe's output; so does the runtime. */
export const EXEC_OUTPUT_CAP = 16 * 1024 * 1024;

export interface ExecResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}

export interface ExecRequest {
  conmon: string;
  runtimePath: string;
  runtimeArgs: readonly string[];
  id: string;
  bundle: string;
  socketDir: string;
  cmd: readonly string[];
  timeoutSeconds: number;
}

/** The process an exec runs: the container's own (user, env, cwd, capabilities) with another command. */
export async function execProcessSpec(bundle: string, cmd: readonly string[], terminal: boolean): Promise<Record<string, unknown>> {
  const container = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { process: Record<string, unknown> };
  return { ...container.process, args: cmd, terminal };
}

/** `pid` and all its descendants, children found by their parent in /proc. */
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

export function killAll(pids: readonly number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** stdout and stderr from a CRI-format log (`<time> <stream> <P|F> <text>`), each capped. */
export function splitCriLog(text: string): { stdout: Buffer; stderr: Buffer } {
  const out: Record<'stdout' | 'stderr', string[]> = { stdout: [], stderr: [] };
  const size = { stdout: 0, stderr: 0 };
  for (const line of text.split('\n')) {
    const m = /^\S+ (stdout|stderr) ([PF]) (.*)$/s.exec(line);
    if (!m) continue;
    const stream = m[1] as 'stdout' | 'stderr';
    const piece = m[2] === 'F' ? `${m[3] as string}\n` : (m[3] as string);
    if (size[stream] >= EXEC_OUTPUT_CAP) continue;
    out[stream].push(piece);
    size[stream] += Buffer.byteLength(piece);
  }
  const cap = (parts: string[]) => {
    const b = Buffer.from(parts.join(''));
    return b.length > EXEC_OUTPUT_CAP ? b.subarray(0, EXEC_OUTPUT_CAP) : b;
  };
  return { stdout: cap(out.stdout), stderr: cap(out.stderr) };
}

/**
 * Runs `cmd` in a running container under conmon (`--exec --sync`), as the
 * container's own process is run (its user, env, cwd and capabilities). A
 * non-zero exit is a result. On timeout the command and everything it
 * started are killed and the call fails with DEADLINE_EXCEEDED.
 */
export async function execSync(req: ExecRequest): Promise<ExecResult> {
  const execId = newId().slice(0, 16);
  const dir = join(req.bundle, 'exec');
  await mkdir(join(dir, 'exits'), { recursive: true });
  const specFile = join(dir, `${execId}.json`);
  const logFile = join(dir, `${execId}.log`);
  await writeFile(specFile, JSON.stringify(await execProcessSpec(req.bundle, req.cmd, false)));
  const args = [
    '--api-version', '1',
    '-c', req.id,
    '-u', execId,
    '-r', req.runtimePath,
    ...req.runtimeArgs.flatMap((a) => ['--runtime-arg', a]),
    '-b', req.bundle,
    '-p', join(dir, `${execId}.pid`),
    '--exec',
    '--exec-process-spec', specFile,
    '--exit-dir', join(dir, 'exits'),
    '-l', `k8s-file:${logFile}`,
    '--socket-dir-path', req.socketDir,
    '--log-level', 'warning',
    '--sync',
  ];
  try {
    const child = spawn(req.conmon, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], env: { ...process.env, _OCI_SYNCPIPE: '3' } });
    let sync = '';
    let stderr = '';
    let pid: number | undefined;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => {
      sync += d.toString();
      const first = /^\{"data":\s*(\d+)\}/.exec(sync);
      if (pid === undefined && first) {
        pid = Number(first[1]);
        if (req.timeoutSeconds > 0) {
          // The daemon owns the timeout: conmon's own would kill only the first process.
          timer = setTimeout(() => {
            timedOut = true;
            void processTree(pid as number).then(killAll);
          }, req.timeoutSeconds * 1000);
        }
      }
    });
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', () => resolve());
    });
    clearTimeout(timer);
    if (timedOut) throw new DeadlineExceededError(`command ${JSON.stringify(req.cmd.join(' '))} in container "${req.id}" timed out after ${req.timeoutSeconds}s`);
    const messages = sync
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { data?: number; message?: string });
    const last = messages[messages.length - 1];
    if (pid === undefined || messages.length < 2 || last?.data === undefined || last.data < 0) {
      throw new InternalError(`exec in container "${req.id}" failed: ${last?.message ?? (stderr.trim() || 'conmon reported nothing')}`);
    }
    const { stdout, stderr: errOut } = splitCriLog(await readFile(logFile, 'utf8').catch(() => ''));
    return { stdout, stderr: errOut, exitCode: last.data };
  } finally {
    await Promise.all([specFile, logFile, join(dir, `${execId}.pid`), join(dir, 'exits', execId)].map((f) => rm(f, { force: true })));
  }
}
