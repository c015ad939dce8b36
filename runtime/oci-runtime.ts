import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InternalError, NotFoundError } from '../core/errors.js';
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

  private exec(args: string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(this.path, [...this.globalArgs, ...args], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
        resolve({ code, stdout, stderr });
      });
    });
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
   * resources go through a file in `scratchDir`: crun reads `-` by opening
   * /dev/stdin, which fails on the socket Node gives a child as stdin.
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
