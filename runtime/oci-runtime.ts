import { execFile } from 'node:child_process';
import { InternalError, NotFoundError } from '../core/errors.js';

/** runc or crun for one RuntimeHandler: the commands Cradle runs directly (conmon runs `create`). */
export class OciRuntime {
  constructor(
    readonly path: string,
    readonly root: string,
  ) {}

  private run(args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(this.path, ['--root', this.root, ...args], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
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

  /** `runc update`: new cgroup limits for a running container. */
  async update(id: string, resources: object): Promise<void> {
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      const child = execFile(this.path, ['--root', this.root, 'update', '--resources', '-', id], { timeout: 30_000 }, (err, _stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stderr }),
      );
      child.stdin?.end(JSON.stringify(resources));
    });
    if (r.code !== 0) throw new InternalError(`${this.path} update ${id}: ${r.stderr.trim()}`);
  }

  async delete(id: string): Promise<void> {
    const r = await this.run(['delete', '--force', id]);
    if (r.code !== 0 && !/does not exist|not found/i.test(r.stderr)) throw new InternalError(`${this.path} delete ${id}: ${r.stderr.trim()}`);
  }
}
