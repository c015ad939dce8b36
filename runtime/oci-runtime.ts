import { execFile } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InternalError, NotFoundError } from '../core/errors.js';

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
    return new Promise((resolve) => {
      execFile(this.path, [...this.globalArgs, ...args], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
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

  /** Signals the container's init; a container that already stopped is not an error. */
  async kill(id: string, signal: string): Promise<void> {
    const r = await this.run(['kill', id, signal]);
    if (r.code !== 0 && !/not running|does not exist|process already finished|container not running/i.test(r.stderr)) {
      throw new InternalError(`${this.path} kill ${id} ${signal}: ${r.stderr.trim()}`);
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

  async delete(id: string): Promise<void> {
    const r = await this.run(['delete', '--force', id]);
    if (r.code !== 0 && !/does not exist|not found/i.test(r.stderr)) throw new InternalError(`${this.path} delete ${id}: ${r.stderr.trim()}`);
  }
}
