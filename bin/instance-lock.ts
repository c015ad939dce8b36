import { closeSync, openSync, readFileSync, ftruncateSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../core/errors.js';
import { loadNative } from '../native/index.js';

export class InstanceLockedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InstanceLockedError';
  }
}

/**
 * One daemon per state directory: two daemons sharing a root or runroot
 * would corrupt each other's records and mounts. The lock is an flock on
 * `<dir>/cradle.lock`, released by the kernel if the daemon dies, so a crash
 * never leaves a stale lock behind. The file holds the holder's pid for the
 * error message.
 */
export class InstanceLock {
  private readonly fds: number[] = [];

  acquire(dir: string): void {
    const native = loadNative();
    const path = join(dir, 'cradle.lock');
    const fd = openSync(path, 'a+', 0o600);
    try {
      native.flock(fd, native.constants.LOCK_EX | native.constants.LOCK_NB);
    } catch (err) {
      closeSync(fd);
      if (errnoCode(err) === 'EWOULDBLOCK' || errnoCode(err) === 'EAGAIN') {
        const holder = readFileSync(path, 'utf8').trim();
        throw new InstanceLockedError(`another cradle daemon${holder ? ` (pid ${holder})` : ''} holds ${path}`);
      }
      throw err;
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `${process.pid}\n`);
    this.fds.push(fd);
  }

  release(): void {
    for (const fd of this.fds.splice(0)) closeSync(fd);
  }
}
