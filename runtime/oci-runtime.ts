import { rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { errorMessage, InternalError, NotFoundError } from '../core/errors.js';
import { runChild } from '../native/child-process.js';
import { criuLogError } from './criu.js';
import { step } from '../core/tracing.js';

/** runc or crun for one RuntimeHandler: the commands Cradle runs directly (conmon runs `create`). */
export class OciRuntime {
  constructor(
    readonly path: string,
    readonly root: string,
    /** Under the systemd driver every command needs the flag, or the runtime looks for cgroupfs paths. */
    readonly systemdCgroup = false,
  ) {}

  /** Global options for every invocation, also those conmon makes (as --runtime-arg). */
  get globalArgs(): string[] {
    return [`--root=${this.root}`, ...(this.systemdCgroup ? ['--systemd-cgroup'] : [])];
  }

  private run(args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return step(`${basename(this.path)} ${args[0] ?? ''}`, () => this.exec(args, timeoutMs));
  }

  private async exec(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const r = await runChild(this.path, [...this.globalArgs, ...args], { timeoutMs, killSignal: 'SIGTERM' });
      if (r.timedOut) return { code: -1, stdout: r.stdout, stderr: `timed out after ${timeoutMs / 1000}s: ${r.stderr}` };
      return { code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      return { code: -1, stdout: '', stderr: `cannot run ${this.path}: ${errorMessage(err)}` };
    }
  }

  private async ok(what: string, args: string[]): Promise<string> {
    const r = await this.run(args);
    if (r.code !== 0) {
      const message = r.stderr.trim() || r.stdout.trim() || `exit code ${r.code}`;
      if (/does not exist|not found/i.test(message)) throw new NotFoundError(`${what}: ${message}`);
      throw new InternalError(`${what}: ${message}`);
    }
    return r.stdout;
  }

  async start(id: string): Promise<void> {
    await this.ok(`${this.path} start ${id}`, ['start', id]);
  }

  /**
   * Signals the container's init. A container that has already stopped (or
   * is gone) is not an error: that is decided from the runtime's state, not
   * from the wording of one runtime's message (runc and crun word it
   * differently, and a process can exit between the two).
   */
  async kill(id: string, signal: string): Promise<void> {
    const r = await this.run(['kill', id, signal]);
    if (r.code === 0) return;
    const state = await this.state(id);
    if (state === undefined || state === 'stopped') return;
    throw new InternalError(`${this.path} kill ${id} ${signal}: ${r.stderr.trim() || `exit code ${r.code}`}`);
  }

  /** The container's status as the runtime sees it (created, running, stopped, ...); undefined when it does not know it. */
  async state(id: string): Promise<string | undefined> {
    const r = await this.run(['state', id]);
    if (r.code !== 0) return undefined;
    try {
      const status = (JSON.parse(r.stdout) as { status?: unknown }).status;
      return typeof status === 'string' ? status : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * `<runtime> update`: new cgroup limits for a running container. The
   * resources go through a file in `scratchDir`, which runc and crun read
   * alike (crun reads `-` by reopening /dev/stdin).
   */
  async update(id: string, resources: object, scratchDir: string): Promise<void> {
    const file = join(scratchDir, `resources-${process.pid}-${Date.now()}.json`);
    await writeFile(file, JSON.stringify(resources));
    try {
      await this.ok(`${this.path} update ${id}`, ['update', '--resources', file, id]);
    } finally {
      await rm(file, { force: true });
    }
  }

  /** `<runtime> checkpoint`: CRIU dumps the container into `imagePath`, and the container keeps running. */
  async checkpoint(id: string, imagePath: string, workPath: string, timeoutMs: number): Promise<void> {
    const r = await this.run(['checkpoint', '--image-path', imagePath, '--work-path', workPath, '--leave-running', '--file-locks', id], timeoutMs);
    if (r.code !== 0) {
      const criuError = await criuLogError(join(workPath, 'dump.log'));
      throw new InternalError(`${this.path} checkpoint ${id}: ${r.stderr.trim() || `exit code ${r.code}`}${criuError ? ` (CRIU: ${criuError})` : ''}`);
    }
  }

  async delete(id: string): Promise<void> {
    const r = await this.run(['delete', '--force', id]);
    if (r.code !== 0 && !/does not exist|not found/i.test(r.stderr)) throw new InternalError(`${this.path} delete ${id}: ${r.stderr.trim()}`);
  }
}
