import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { InvalidArgumentError, InternalError } from '../../core/errors.js';
import { unpackLayer } from '../../image/layer-unpacker.js';
import { tarArchive, type TarEntry } from '../support/tar-writer.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function xattr(path: string, name: string): string {
  return execFileSync('getfattr', ['--only-values', '-h', '-n', name, path]).toString('hex');
}

describe('layer unpacking', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'cradle-unpack-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function unpack(entries: TarEntry[], compression: 'gzip' | 'zstd' | 'none' = 'gzip', diffId?: string) {
    const tar = tarArchive(entries);
    const blob = join(dir, 'blob');
    if (compression === 'gzip') writeFileSync(blob, gzipSync(tar));
    else if (compression === 'none') writeFileSync(blob, tar);
    else {
      writeFileSync(join(dir, 'plain'), tar);
      execFileSync('zstd', ['-q', '-f', join(dir, 'plain'), '-o', blob]);
    }
    const dest = join(dir, 'layer');
    mkdirSync(dest, { recursive: true });
    return { dest, result: await unpackLayer({ source: { kind: 'file', path: blob }, dest, diffId: diffId ?? sha(tar) }) };
  }

  it('keeps files, modes, ownership, links, devices and capabilities', async () => {
    const { dest, result } = await unpack([
      { name: 'bin/', type: 'dir', mode: 0o755 },
      {
        name: 'bin/ping',
        content: 'ping',
        mode: 0o4755,
        uid: 0,
        gid: 0,
        pax: { 'SCHILY.xattr.security.capability': Buffer.from('0100000200200000000000000000000000000000', 'hex') },
      },
      { name: 'bin/pong', type: 'link', linkname: 'bin/ping' },
      { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
      { name: 'home/user/file', content: 'mine', uid: 1000, gid: 1000, mode: 0o600 },
      { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'run/fifo', type: 'fifo', mode: 0o644 },
    ]);
    expect(result.bytes).to.equal(8);
    const ping = statSync(join(dest, 'bin/ping'));
    expect(ping.mode & 0o7777).to.equal(0o4755);
    expect(ping.nlink).to.equal(2);
    expect(readFileSync(join(dest, 'bin/pong'), 'utf8')).to.equal('ping');
    expect(xattr(join(dest, 'bin/ping'), 'security.capability')).to.equal('0100000200200000000000000000000000000000');
    expect(lstatSync(join(dest, 'bin/sh')).isSymbolicLink()).to.equal(true);
    const file = statSync(join(dest, 'home/user/file'));
    expect([file.uid, file.gid, file.mode & 0o777]).to.deep.equal([1000, 1000, 0o600]);
    const dev = statSync(join(dest, 'dev/null'));
    expect(dev.isCharacterDevice()).to.equal(true);
    expect(dev.rdev).to.equal((1 << 8) | 3);
    expect(statSync(join(dest, 'run/fifo')).isFIFO()).to.equal(true);
    expect(Math.round(file.mtimeMs / 1000)).to.equal(1_700_000_000);
  });

  it('turns whiteouts and opaque markers into overlayfs form', async () => {
    const { dest } = await unpack([
      { name: 'etc/.wh.motd', content: '' },
      { name: 'var/cache/', type: 'dir' },
      { name: 'var/cache/.wh..wh..opq', content: '' },
      { name: 'var/cache/new', content: 'n' },
      { name: '.wh..wh.plnk/123', content: '' },
    ]);
    const wh = lstatSync(join(dest, 'etc/motd'));
    expect(wh.isCharacterDevice()).to.equal(true);
    expect(wh.rdev).to.equal(0);
    expect(existsSync(join(dest, 'etc/.wh.motd'))).to.equal(false);
    expect(xattr(join(dest, 'var/cache'), 'trusted.overlay.opaque')).to.equal(Buffer.from('y').toString('hex'));
    expect(existsSync(join(dest, 'var/cache/.wh..wh..opq'))).to.equal(false);
    expect(existsSync(join(dest, '.wh..wh.plnk'))).to.equal(false);
  });

  it('reads zstd and uncompressed layers too', async () => {
    expect(readFileSync(join((await unpack([{ name: 'z', content: 'zstd' }], 'zstd')).dest, 'z'), 'utf8')).to.equal('zstd');
    rmSync(join(dir, 'layer'), { recursive: true });
    expect(readFileSync(join((await unpack([{ name: 'u', content: 'plain' }], 'none')).dest, 'u'), 'utf8')).to.equal('plain');
  });

  it('refuses an entry that would land outside the layer', async () => {
    const err = await unpack([
      { name: 'ok', content: '1' },
      { name: '../escape', content: 'x' },
    ]).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect((err as Error).message).to.equal('refusing layer: layer entry "../escape" would land outside the layer');
    expect(existsSync(join(dir, 'escape'))).to.equal(false);
  });

  it('refuses to write through a symlink', async () => {
    const err = await unpack([
      { name: 'etc', type: 'symlink', linkname: '/etc' },
      { name: 'etc/evil', content: 'x' },
    ]).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(InvalidArgumentError);
    expect((err as Error).message).to.contain('passes through the symlink "etc"');
  });

  it('refuses a truncated layer, and keeps no file of it open', async () => {
    const tar = tarArchive([{ name: 'big', content: randomBytes(2_000_000) }]);
    const blob = join(dir, 'blob');
    const gz = gzipSync(tar);
    writeFileSync(blob, gz.subarray(0, gz.length / 2));
    const dest = join(dir, 'layer');
    mkdirSync(dest);
    // The workers are threads of this process: a file they leave open is in this fd table. The first try may
    // start a worker (its event loop opens descriptors of its own); the second reuses it.
    const open = () => readdirSync('/proc/self/fd').length;
    const attempt = () =>
      unpackLayer({ source: { kind: 'file', path: blob }, dest, diffId: sha(tar) }).then(
        () => new Error('unpacked'),
        (e: unknown) => e as Error,
      );
    expect((await attempt()).message).to.match(/gzip: the stream is truncated/);
    rmSync(dest, { recursive: true });
    mkdirSync(dest);
    const before = open();
    await attempt();
    expect(open()).to.equal(before);
  });

  it('refuses a layer whose content does not match its diffID', async () => {
    const err = await unpack([{ name: 'a', content: '1' }], 'gzip', `sha256:${'0'.repeat(64)}`).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(InternalError);
    expect((err as Error).message).to.match(/layer content is sha256:[0-9a-f]{64}, but the image config says sha256:0{64}/);
  });
});
