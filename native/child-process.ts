import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { timerMs } from '../core/timers.js';
import { loadNative, type NativeChild } from './index.js';

/**
 * Child processes started by the addon with clone(CLONE_VM|CLONE_VFORK)
 * rather than node:child_process, whose libuv fork() copies the daemon's page tables on
 * every runtime, conmon and CNI plugin call (6-9 ms of each spawn on this
 * node class, against ~2 ms for exec itself). The daemon runs these on every
 * create, start, exec and pod set-up, so the cost is on kubelet's path.
 */

/**
 * Per child fd from 0: 'pipe' gives the daemon a stream (fd 0 is written by
 * the daemon, the others are read); a number passes that fd of the daemon's,
 * which stays the caller's to close.
 */
export type Stdio = 'ignore' | 'pipe' | number;

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildOptions {
  /** Default: stdin ignored, stdout and stderr piped. */
  stdio?: readonly Stdio[];
  /** Default: the daemon's environment. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** A session and process group of its own, so a group kill reaches what it starts. */
  setsid?: boolean;
}

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

function signalNumber(signal: NodeJS.Signals | number): number {
  return typeof signal === 'number' ? signal : constants.signals[signal];
}

function envList(env: NodeJS.ProcessEnv): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out.push(`${k}=${v}`);
  return out;
}

export class Child {
  /** The daemon's end of each 'pipe' slot. */
  readonly stdio: readonly (Socket | undefined)[];
  /** Settles when the process has been reaped. */
  readonly exited: Promise<ChildExit>;
  /** Settles when it has been reaped and every pipe it wrote to has reached its end. */
  readonly closed: Promise<ChildExit>;

  constructor(
    private readonly handle: NativeChild,
    stdio: (Socket | undefined)[],
    exited: Promise<ChildExit>,
  ) {
    this.stdio = stdio;
    this.exited = exited;
    const ends = stdio.slice(1).flatMap((s) => (s === undefined ? [] : [new Promise<void>((resolve) => s.once('close', () => resolve()))]));
    this.closed = Promise.all(ends).then(() => exited);
  }

  get pid(): number {
    return this.handle.pid;
  }
  get stdin(): Socket | undefined {
    return this.stdio[0];
  }
  get stdout(): Socket | undefined {
    return this.stdio[1];
  }
  get stderr(): Socket | undefined {
    return this.stdio[2];
  }

  /** Signals the child through its pidfd: never another process that reused its pid. False once it has been reaped. */
  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    return this.handle.kill(signalNumber(signal));
  }

  /** Signals its process group (it must have been started with setsid), falling back to the child alone. */
  killGroup(signal: NodeJS.Signals | number): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      this.kill(signal);
    }
  }

  unref(): void {
    this.handle.unref();
  }
}

/** Starts `file` (looked up in PATH when it has no slash). Throws an errno error (ENOENT, EACCES, ...) when it cannot be started. */
export function spawnChild(file: string, args: readonly string[], options: ChildOptions = {}): Child {
  const native = loadNative();
  const layout = options.stdio ?? ['ignore', 'pipe', 'pipe'];
  const childFds: number[] = [];
  // The child's ends of the pipes made here: closed in the daemon once it has them.
  const made: number[] = [];
  const parentFds: (number | undefined)[] = [];
  try {
    for (const [slot, kind] of layout.entries()) {
      parentFds.push(undefined);
      if (kind !== 'pipe') {
        childFds.push(kind === 'ignore' ? -1 : kind);
        continue;
      }
      const [read, write] = native.pipe();
      made.push(slot === 0 ? read : write);
      childFds.push(slot === 0 ? read : write);
      parentFds[slot] = slot === 0 ? write : read;
    }
    let onExit: (exit: ChildExit) => void = () => undefined;
    const exited = new Promise<ChildExit>((resolve) => {
      onExit = resolve;
    });
    const env = options.env === undefined ? null : envList(options.env);
    const handle = native.spawnChild(file, [file, ...args], env, options.cwd ?? null, childFds, options.setsid === true, (code, signal) =>
      onExit({ code, signal: signal === null ? null : (SIGNAL_NAMES.get(signal) ?? null) }),
    );
    const stdio = parentFds.map((fd, slot) => {
      if (fd === undefined) return undefined;
      parentFds[slot] = undefined;
      const socket = new Socket({ fd, readable: slot !== 0, writable: slot === 0 });
      // A reader that went away (EPIPE) or a broken pipe is seen through the exit, not as an uncaught error.
      socket.on('error', () => undefined);
      return socket;
    });
    return new Child(handle, stdio, exited);
  } finally {
    for (const fd of made) closeSync(fd);
    for (const fd of parentFds) if (fd !== undefined) closeSync(fd);
  }
}

export interface RunOptions extends ChildOptions {
  timeoutMs: number;
  /** Written to stdin, which is then closed. */
  input?: string;
  /** Output kept per stream; the rest is read and dropped. */
  maxBuffer?: number;
  /** Sent on timeout (to the whole group with setsid). */
  killSignal?: NodeJS.Signals;
}

export interface RunResult extends ChildExit {
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a program to its end, collecting its output. A timeout kills it and
 * settles once it has been reaped, without waiting for pipes a grandchild may
 * hold. Rejects only when it cannot be started.
 */
export function runChild(file: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const child = spawnChild(file, args, { ...options, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
  const limit = options.maxBuffer ?? 4 * 1024 * 1024;
  const collect = (stream: Socket | undefined): (() => string) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream?.on('data', (d: Buffer) => {
      if (size >= limit) return;
      chunks.push(size + d.length > limit ? d.subarray(0, limit - size) : d);
      size += d.length;
    });
    return () => Buffer.concat(chunks).toString();
  };
  const stdout = collect(child.stdout);
  const stderr = collect(child.stderr);
  if (options.input !== undefined) child.stdin?.end(options.input);
  return new Promise((resolve) => {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      const signal = options.killSignal ?? 'SIGKILL';
      if (options.setsid === true) child.killGroup(signal);
      else child.kill(signal);
      void child.exited.then((exit) => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve({ ...exit, stdout: stdout(), stderr: stderr(), timedOut });
      });
    }, timerMs(options.timeoutMs));
    void child.closed.then((exit) => {
      if (timedOut) return;
      clearTimeout(timer);
      resolve({ ...exit, stdout: stdout(), stderr: stderr(), timedOut });
    });
  });
}

/** "exit code 3", "killed by SIGKILL", "timed out": for messages when the program said nothing. */
export function exitDescription(r: RunResult): string {
  if (r.timedOut) return 'timed out';
  if (r.signal !== null) return `killed by ${r.signal}`;
  return `exit code ${String(r.code)}`;
}
