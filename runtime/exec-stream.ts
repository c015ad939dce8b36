import { closeSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import tty from 'node:tty';
import { errorMessage } from '../core/errors.js';
import { newId } from '../core/ids.js';
import { type Child, spawnChild } from '../native/child-process.js';
import { loadNative } from '../native/index.js';
import { execProcessSpec } from './exec-sync.js';
import type { OciRuntime } from './oci-runtime.js';
import { killAll, processTree } from './process-tree.js';
import type { ClientIO, CommandResult, TerminalSize } from './stream-io.js';

/** How long a tty exec waits for the client's terminal size before starting at 80x24. */
const FIRST_SIZE_WAIT_MS = 1000;

export interface ExecStreamRequest {
  runtime: OciRuntime;
  id: string;
  bundle: string;
  cmd: readonly string[];
  tty: boolean;
  io: ClientIO;
}

/**
 * The terminal of a tty exec. The runtime runs with the slave end of a
 * terminal pair as its stdio, makes the container's own terminal and
 * relays between the two in raw mode; the daemon relays between the
 * master end and the client. A new window size is set on the pair and the
 * runtime told with SIGWINCH, which makes it copy the size inward.
 */
function relayTerminal(master: number, runtime: Child, io: ClientIO): Promise<void> {
  const native = loadNative();
  const term = new tty.ReadStream(master);
  io.onResize((size) => {
    try {
      native.setWinsize(master, size.height, size.width);
      // Through its pidfd: never a process that reused its pid.
      runtime.kill('SIGWINCH');
    } catch {
      // the terminal or the runtime is gone
    }
  });
  io.stdin?.on('data', (d: Buffer) => term.write(d));
  if (io.stdout) term.on('data', (d: Buffer) => io.stdout?.write(d));
  // The master reads EIO once nothing holds the slave end any more.
  return new Promise<void>((resolve) => {
    const done = () => {
      term.destroy();
      resolve();
    };
    term.once('error', done);
    term.once('end', done);
  });
}

/** kubectl sends its terminal's size first thing: start the process with it, rather than resize it just after. */
function firstSize(io: ClientIO): Promise<TerminalSize> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ width: 80, height: 24 }), FIRST_SIZE_WAIT_MS);
    io.onResize((size) => {
      clearTimeout(timer);
      resolve(size);
    });
  });
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
  const size = req.tty ? await firstSize(req.io) : undefined;
  // The runtime sizes the container's terminal before the command starts.
  const spec = { ...(await execProcessSpec(req.bundle, req.cmd, req.tty)), ...(size ? { consoleSize: { height: size.height, width: size.width } } : {}) };
  await writeFile(specFile, JSON.stringify(spec));
  try {
    const { io } = req;
    const pty = size ? loadNative().openpty(size.height, size.width) : undefined;
    let child: Child;
    try {
      child = spawnChild(req.runtime.path, [...req.runtime.globalArgs, 'exec', '--process', specFile, req.id], {
        stdio: pty ? [pty.slave, pty.slave, pty.slave] : [io.stdin ? 'pipe' : 'ignore', io.stdout ? 'pipe' : 'ignore', io.stderr ? 'pipe' : 'ignore'],
      });
    } catch (err) {
      if (pty) {
        closeSync(pty.slave);
        closeSync(pty.master);
      }
      return { error: `cannot run ${req.runtime.path}: ${errorMessage(err)}` };
    }
    let terminal: Promise<void> = Promise.resolve();
    if (pty) {
      closeSync(pty.slave);
      terminal = relayTerminal(pty.master, child, io);
    } else {
      if (io.stdin && child.stdin) {
        child.stdin.on('error', () => undefined);
        io.stdin.pipe(child.stdin);
      }
      if (io.stdout && child.stdout) child.stdout.pipe(io.stdout, { end: false });
      if (io.stderr && child.stderr) child.stderr.pipe(io.stderr, { end: false });
    }
    const onAbort = () => {
      void processTree(child.pid).then(killAll);
    };
    io.signal.addEventListener('abort', onAbort);
    const status = await child.closed;
    io.signal.removeEventListener('abort', onAbort);
    await terminal;
    return { exitCode: status.code ?? 128 + (status.signal === 'SIGKILL' ? 9 : 15) };
  } finally {
    await rm(specFile, { force: true });
  }
}
