import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { join } from 'node:path';
import { CGROUP_V2 } from './cgroup-stats.js';

/**
 * OOM kills seen by the daemon itself (cgroup v2). conmon learns of them by
 * reading memory.events after an inotify event, and misses them when the
 * cgroup is already gone by then: with the systemd driver the scope
 * disappears as soon as its last process dies. The daemon keeps its own
 * watch on the file while the container runs and remembers a non-zero
 * oom_kill count, read as soon as the file changes.
 */
export class OomWatch {
  private readonly watches = new Map<string, { watcher: FSWatcher; killed: boolean }>();

  /** `cgroupDir`: the container process's cgroup, below the v2 root. */
  watch(id: string, cgroupDir: string): void {
    if (!CGROUP_V2 || this.watches.has(id)) return;
    const file = join('/sys/fs/cgroup', cgroupDir, 'memory.events');
    let watcher: FSWatcher;
    try {
      watcher = watch(file, { persistent: false }, () => check());
    } catch {
      // no such cgroup (the container already ended)
      return;
    }
    const entry = { watcher, killed: false };
    const check = () => {
      try {
        if (/^oom_kill [1-9]/m.test(readFileSync(file, 'utf8'))) entry.killed = true;
      } catch {
        // the cgroup went away
      }
    };
    watcher.on('error', () => undefined);
    this.watches.set(id, entry);
    check();
  }

  killed(id: string): boolean {
    return this.watches.get(id)?.killed ?? false;
  }

  forget(id: string): void {
    this.watches.get(id)?.watcher.close();
    this.watches.delete(id);
  }

  closeAll(): void {
    for (const id of [...this.watches.keys()]) this.forget(id);
  }
}
