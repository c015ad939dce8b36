import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newId } from '../core/ids.js';
import type { ClientIO, CommandResult } from '../streaming/remote-command.js';
import { execProcessSpec, killAll, processTree } from './exec-sync.js';
import type { OciRuntime } from './oci-runtime.js';

export interface ExecStreamRequest {
  runtime: OciRuntime;
  id: string;
  bundle: string;
  cmd: readonly string[];
  tty: boolean;
  io: ClientIO;
}

/**
 * An interactive exec (kubectl exec): `<runtime> exec` with the client's
 * streams as the process's stdio, for as long as the command runs. When
 * the client goes away, the command and what it started are killed.
 */
export async function execStream(req: ExecStreamRequest): Promise<CommandResult> {
  const dir = join(req.bundle, 'exec');
  await mkdir(dir, { recursive: true });
  const specFile = join(dir, `stream-${newId().slice(0, 16)}.json`);
  await writeFile(specFile, JSON.stringify(await execProcessSpec(req.bundle, req.cmd, false)));
  try {
    const { io } = req;
    const child = spawn(req.runtime.path, [...req.runtime.globalArgs, 'exec', '--process', specFile, req.id], {
      stdio: [io.stdin ? 'pipe' : 'ignore', io.stdout ? 'pipe' : 'ignore', io.stderr ? 'pipe' : 'ignore'],
    });
    if (io.stdin && child.stdin) {
      child.stdin.on('error', () => undefined);
      io.stdin.pipe(child.stdin);
    }
    if (io.stdout && child.stdout) child.stdout.pipe(io.stdout, { end: false });
    if (io.stderr && child.stderr) child.stderr.pipe(io.stderr, { end: false });
    const onAbort = () => {
      if (child.pid !== undefined) void processTree(child.pid).then(killAll);
    };
    io.signal.addEventListener('abort', onAbort);
    const status = await new Promise<{ code: number | null; signal: NodeJS.Signals | null } | Error>((resolve) => {
      child.once('error', resolve);
      child.once('close', (code, signal) => resolve({ code, signal }));
    });
    io.signal.removeEventListener('abort', onAbort);
    if (status instanceof Error) return { error: `cannot run ${req.runtime.path}: ${status.message}` };
    return { exitCode: status.code ?? 128 + (status.signal === 'SIGKILL' ? 9 : 15) };
  } finally {
    await rm(specFile, { force: true });
  }
}
