import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import { ensureDir } from '../core/fs-util.js';
import type { Logger } from '../core/logger.js';

export interface ContainerExit {
  id: string;
  exitCode: number;
  /** Unix nanoseconds: when conmon wrote the exit file. */
  finishedAt: bigint;
}

/**
 * conmon writes `<exit dir>/<container id>` holding the exit code when a
 * container ends. The directory is watched (inotify), so exits are learnt
 * as they happen, with no polling per container.
 */
export class ExitWatcher {
  private watcher: FSWatcher | undefined;
  private readonly seen = new Set<string>();

  constructor(
    readonly dir: string,
    private readonly onExit: (exit: ContainerExit) => void,
    private readonly logger: Logger,
  ) {
    ensureDir(dir, 0o700);
  }

  /** Starts watching, then reports exits that happened while nobody watched. */
  async start(): Promise<void> {
    this.watcher = watch(this.dir, { persistent: false }, (_event, name) => {
      if (name) void this.check(name.toString());
    });
    for (const name of await readdir(this.dir)) await this.check(name);
  }

  stop(): void {
    this.watcher?.close();
  }

  /** A container removed or started again may exit again under the same id. */
  forget(id: string): void {
    this.seen.delete(id);
  }

  private async check(id: string): Promise<void> {
    if (this.seen.has(id)) return;
    const path = join(this.dir, id);
    try {
      const text = (await readFile(path, 'utf8')).trim();
      if (text === '') return; // written in two steps; the next event brings the code
      const st = await stat(path, { bigint: true });
      this.seen.add(id);
      this.onExit({ id, exitCode: Number.parseInt(text, 10), finishedAt: st.mtimeNs });
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') this.logger.warn('cannot read exit file', { path, error: errorMessage(err) });
    }
  }
}
