import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { InternalError, ResourceExhaustedError } from '../../core/errors.js';
import { tarFailure } from '../../runtime/checkpoint-archive.js';
import { criuLogError } from '../../runtime/criu.js';

describe('checkpoint archives: how a failed tar is reported', () => {
  it('a full filesystem is RESOURCE_EXHAUSTED, naming what tar said', () => {
    const full = tarFailure('-x', 'tar: ./checkpoint/pages-1.img: Wrote only 4096 of 10240 bytes\ntar: ./x: Cannot write: No space left on device\n', 'exit 2');
    expect(full).to.be.instanceOf(ResourceExhaustedError);
    expect(full.message).to.contain('No space left on device');
    expect(tarFailure('-c', 'tar: ./a: Cannot open: Disk quota exceeded', 'exit 2')).to.be.instanceOf(ResourceExhaustedError);
  });

  it('anything else is the daemon’s fault, with the process error when tar said nothing', () => {
    const other = tarFailure('-x', '', 'Command failed: tar -x');
    expect(other).to.be.instanceOf(InternalError);
    expect(other.message).to.equal('tar -x: Command failed: tar -x');
  });
});

describe("CRIU's log: what a failed dump or restore is reported with", () => {
  const withLog = async (text: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'criu-log-'));
    try {
      writeFileSync(join(dir, 'restore.log'), text);
      return await criuLogError(join(dir, 'restore.log'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('names the first error, the cause, and the last, what failed', async () => {
    const log = [
      '(00.100000) Warn  (criu/cr-restore.c:100): something harmless',
      '(00.200000) Error (criu/mount.c:1234): mnt: Can not bind-mount /x: No such file or directory',
      '(00.300000) Error (criu/cr-restore.c:2537): Restoring FAILED.',
    ].join('\n');
    expect(await withLog(log)).to.equal(
      '(00.200000) Error (criu/mount.c:1234): mnt: Can not bind-mount /x: No such file or directory ... (00.300000) Error (criu/cr-restore.c:2537): Restoring FAILED.',
    );
  });

  it('gives one error once, and nothing for a log without errors or no log', async () => {
    expect(await withLog('(00.2) Error (criu/files.c:9): bad fd\n')).to.equal('(00.2) Error (criu/files.c:9): bad fd');
    expect(await withLog('(00.1) Info all well\n')).to.equal(undefined);
    expect(await criuLogError('/nonexistent/restore.log')).to.equal(undefined);
  });
});
