import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { exitDescription, runChild, spawnChild } from '../../native/child-process.js';
import { loadNative } from '../../native/index.js';

/** The test process's open fds, once handles closed on earlier turns of the loop are gone. */
async function openFds(): Promise<number> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  return readdirSync('/proc/self/fd').length;
}

/** fds this process was given without close-on-exec (by whatever started the tests): every child inherits those. */
function inheritedFds(): string[] {
  return readdirSync('/proc/self/fd').filter((fd) => {
    // The directory readdir had open is gone by now.
    const info = (() => {
      try {
        return readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
      } catch {
        return '';
      }
    })();
    const flags = /flags:\s+([0-7]+)/.exec(info)?.[1];
    return flags !== undefined && (Number.parseInt(flags, 8) & 0o2000000) === 0;
  });
}

/** Resolves when `pid` has exited (a pidfd; immediately when it is already gone). */
function gone(pid: number): Promise<void> {
  return new Promise((resolve) => {
    try {
      loadNative().watchExit(pid, resolve);
    } catch {
      resolve();
    }
  });
}

describe('child processes (clone through the addon)', () => {
  it('runs a program with arguments, environment, cwd and input, and reports its exit', async () => {
    const r = await runChild('sh', ['-c', 'read line; echo "$line $FOO $(pwd)"; echo oops >&2; exit 3'], {
      timeoutMs: 60_000,
      input: 'hello\n',
      env: { FOO: 'bar', PATH: process.env.PATH },
      cwd: '/tmp',
    });
    expect(r).to.deep.equal({ code: 3, signal: null, stdout: 'hello bar /tmp\n', stderr: 'oops\n', timedOut: false });
    expect(exitDescription(r)).to.equal('exit code 3');
  });

  it('starts children with default signal dispositions, an empty mask and only the fds it was given', async () => {
    // Node ignores SIGPIPE: a child that inherited that would not die writing to a closed pipe.
    const r = await runChild('sh', ['-c', 'grep -E "^Sig(Ign|Blk)" /proc/self/status; ls /proc/self/fd'], { timeoutMs: 60_000 });
    expect(r.stdout).to.match(/SigBlk:\s+0+\n/);
    expect(r.stdout).to.match(/SigIgn:\s+0+\n/);
    const fds = r.stdout.split('\n').filter((l) => /^\d+$/.test(l));
    // 0-2, what the test runner itself was given, and the directory ls is reading.
    const expected = new Set(['0', '1', '2', ...inheritedFds()]);
    expect(fds.filter((fd) => !expected.has(fd)).length, r.stdout).to.be.at.most(1);
  });

  it('passes extra pipes and fds of the daemon in the slots asked for', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cradle-child-'));
    try {
      const file = join(dir, 'out');
      const fd = openSync(file, 'w');
      const child = spawnChild('sh', ['-c', 'echo to-file; echo sync >&3'], { stdio: ['ignore', fd, 'ignore', 'pipe'] });
      closeSync(fd);
      let sync = '';
      child.stdio[3]?.on('data', (d: Buffer) => (sync += d.toString()));
      expect(await child.closed).to.deep.equal({ code: 0, signal: null });
      expect(sync).to.equal('sync\n');
      expect(readFileSync(file, 'utf8')).to.equal('to-file\n');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('kills through the pidfd until the child is reaped, and never after', async () => {
    const child = spawnChild('sleep', ['600'], { stdio: ['ignore', 'ignore', 'ignore'] });
    expect(child.kill('SIGKILL')).to.equal(true);
    expect(await child.exited).to.deep.equal({ code: null, signal: 'SIGKILL' });
    expect(child.kill('SIGKILL'), 'reaped').to.equal(false);
  });

  it('on timeout kills the whole process group of a setsid child', async () => {
    const r = await runChild('sh', ['-c', 'sleep 600 & echo $!; wait'], { timeoutMs: 500, setsid: true, killSignal: 'SIGKILL' });
    expect(r.timedOut).to.equal(true);
    expect(exitDescription(r)).to.equal('timed out');
    const grandchild = Number(r.stdout.trim());
    expect(grandchild).to.be.greaterThan(1);
    await gone(grandchild);
  });

  it('throws an errno error for a program that cannot be started, leaking no fd', async () => {
    const before = await openFds();
    expect(() => spawnChild('/nonexistent/program', [])).to.throw(/ENOENT/);
    expect(() => spawnChild('no-such-program-anywhere', [])).to.throw(/ENOENT/);
    expect(() => spawnChild('true', [], { cwd: '/nonexistent' })).to.throw(/ENOENT/);
    const dir = mkdtempSync(join(tmpdir(), 'cradle-child-'));
    writeFileSync(join(dir, 'data'), 'not a program', { mode: 0o644 });
    expect(() => spawnChild(join(dir, 'data'), [])).to.throw(/EACCES/);
    rmSync(dir, { recursive: true });
    expect(await openFds()).to.equal(before);
  });

  it('keeps no fd after many concurrent runs', async () => {
    const before = await openFds();
    const runs = await Promise.all(Array.from({ length: 40 }, (_, i) => runChild('echo', [String(i)], { timeoutMs: 60_000, input: 'x' })));
    expect(runs.map((r) => r.stdout)).to.deep.equal(Array.from({ length: 40 }, (_, i) => `${i}\n`));
    expect(await openFds()).to.equal(before);
  });
});
