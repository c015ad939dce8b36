import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { ADDON_PATH, loadNative, NativeAddonError } from '../../native/index.js';
import { signalNumber } from '../../runtime/init-signal.js';
import { exited, run, spawnTracked } from '../support/processes.js';

describe('native addon', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cradle-native-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('loads with its constants', () => {
    const native = loadNative();
    expect(native.constants.LOCK_EX).to.equal(2);
    expect(native.constants.MS_BIND).to.equal(4096);
    expect(native.constants.MNT_DETACH).to.equal(2);
  });

  it('signals a process through a pidfd only when its cgroup names the marker', async () => {
    const child = spawnTracked('sleep', ['600'], { stdio: 'ignore' });
    const pid = child.pid as number;
    const gone = exited(child);
    // A line of /proc/<pid>/cgroup is "id:controllers:/path"; the path stands in for a container's.
    const path = (readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')[0] as string).split(':')[2] as string;
    const native = loadNative();
    expect(native.signalInCgroup(pid, 15, '/cradle-0000000000000000')).to.equal(false);
    expect(process.kill(pid, 0), 'left alone').to.equal(true);
    expect(native.signalInCgroup(pid, 15, path)).to.equal(true);
    expect((await gone).signal).to.equal('SIGTERM');
    expect(native.signalInCgroup(pid, 15, path), 'gone').to.equal(false);
    expect(signalNumber('SIGTERM')).to.equal(15);
    expect(signalNumber('kill')).to.equal(9);
    expect(signalNumber('10')).to.equal(10);
    expect(signalNumber('SIGNOPE')).to.equal(undefined);
  });

  it('explains a missing build in one sentence', () => {
    expect(() => loadNative(join(dir, 'nope.node'))).to.throw(NativeAddonError, /cannot be loaded .* build it with "npm ci"/);
  });

  it('takes an exclusive flock that a second open file cannot take', () => {
    const native = loadNative();
    const path = join(dir, 'lock');
    writeFileSync(path, '');
    const a = openSync(path, 'r');
    const b = openSync(path, 'r');
    try {
      native.flock(a, native.constants.LOCK_EX | native.constants.LOCK_NB);
      expect(() => native.flock(b, native.constants.LOCK_EX | native.constants.LOCK_NB))
        .to.throw()
        .with.property('code', 'EAGAIN'); // EWOULDBLOCK is EAGAIN on Linux
      native.flock(a, native.constants.LOCK_UN);
      native.flock(b, native.constants.LOCK_EX | native.constants.LOCK_NB);
    } finally {
      closeSync(a);
      closeSync(b);
    }
  });

  it('tells how many bytes a FIFO holds unread', async () => {
    const fifo = join(dir, 'ctl');
    await run('mkfifo', [fifo]);
    const native = loadNative();
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    try {
      expect(native.unreadBytes(writer)).to.equal(0);
      writeSync(writer, '1 24 80\n');
      expect(native.unreadBytes(writer)).to.equal(8);
      readSync(reader, Buffer.alloc(64));
      expect(native.unreadBytes(writer)).to.equal(0);
    } finally {
      closeSync(writer);
      closeSync(reader);
    }
  });

  it('reads many small files in one call, undefined for those it cannot read', async () => {
    writeFileSync(join(dir, 'a'), 'usage_usec 12\n');
    writeFileSync(join(dir, 'big'), 'x'.repeat(100_000));
    const [a, missing, big, proc] = await loadNative().readFiles([join(dir, 'a'), join(dir, 'nope'), join(dir, 'big'), '/proc/self/stat']);
    expect(a).to.equal('usage_usec 12\n');
    expect(missing).to.equal(undefined);
    expect(big?.length).to.equal(100_000);
    // A /proc file reports size 0 and is read to its end all the same.
    expect(proc).to.match(/^\d+ \(/);
  });

  it('sums the blocks and entries below a directory without following links', async () => {
    mkdirSync(join(dir, 'tree', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'tree', 'sub', 'f'), Buffer.alloc(64 * 1024, 1));
    symlinkSync('/usr', join(dir, 'tree', 'link'));
    const native = loadNative();
    const usage = await native.diskUsage(join(dir, 'tree'));
    // sub, sub/f and the link; the file's 64 KiB are allocated.
    expect(usage.inodes).to.equal(3);
    expect(usage.bytes).to.be.at.least(64 * 1024);
    expect(usage.bytes).to.be.below(1024 * 1024);
    expect(await native.diskUsage(join(dir, 'gone'))).to.deep.equal({ bytes: 0, inodes: 0 });
  });

  it('reports errno, syscall and path like Node does', async () => {
    const native = loadNative();
    mkdirSync(join(dir, 'not-a-mount'));
    const err = await native.umount2(join(dir, 'not-a-mount'), 0).then(
      () => undefined,
      (e: unknown) => e as NodeJS.ErrnoException,
    );
    expect(err?.code).to.equal('EINVAL');
    expect(err?.syscall).to.equal('umount2');
    expect(err?.path).to.equal(join(dir, 'not-a-mount'));
    expect(() => native.flock(-1, native.constants.LOCK_EX))
      .to.throw()
      .with.property('code', 'EBADF');
  });

  it('mounts and unmounts a tmpfs inside a private mount namespace', async () => {
    // A child in its own mount namespace, so the test mounts nothing on the machine.
    const script = `
      const native = require(${JSON.stringify(ADDON_PATH)});
      const fs = require('fs');
      const target = ${JSON.stringify(join(dir, 'mnt'))};
      fs.mkdirSync(target);
      (async () => {
        await native.mount('tmpfs', target, 'tmpfs', native.constants.MS_NOSUID | native.constants.MS_NODEV, 'size=1m,mode=700');
        const mounted = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').filter((l) => l.split(' ')[4] === target);
        fs.writeFileSync(target + '/probe', 'x');
        await native.umount2(target, 0);
        const after = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\\n').filter((l) => l.split(' ')[4] === target);
        console.log(JSON.stringify({ mounted: mounted.length, fstype: mounted[0] && mounted[0].split(' - ')[1].split(' ')[0], after: after.length, probeGone: !fs.existsSync(target + '/probe') }));
      })().catch((e) => { console.error(e.code, e.message); process.exit(1); });
    `;
    const r = await run('unshare', ['--mount', '--propagation', 'private', '--', process.execPath, '-e', script]);
    expect(r.code, r.stderr).to.equal(0);
    expect(JSON.parse(r.stdout)).to.deep.equal({ mounted: 1, fstype: 'tmpfs', after: 0, probeGone: true });
  });
});
