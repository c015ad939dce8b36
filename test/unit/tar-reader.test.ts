import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { TarFormatError, TarReader, type TarHeader } from '../../image/tar-reader.js';
import { tarArchive } from '../support/tar-writer.js';

interface Seen {
  header: TarHeader;
  content: string;
}

function readAll(archive: Buffer, chunkSize: number): Seen[] {
  const out: Seen[] = [];
  let current: Seen | undefined;
  const reader = new TarReader({
    entry: (header) => {
      current = { header, content: '' };
    },
    data: (chunk) => {
      if (current) current.content += chunk.toString();
    },
    entryEnd: () => {
      if (current) out.push(current);
    },
  });
  for (let i = 0; i < archive.length; i += chunkSize) reader.write(archive.subarray(i, i + chunkSize));
  reader.end();
  return out;
}

describe('tar reader', () => {
  const archive = tarArchive([
    { name: 'etc/', type: 'dir', mode: 0o755 },
    { name: 'etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n', mode: 0o644, uid: 0 },
    { name: 'bin/sh', type: 'symlink', linkname: 'busybox' },
    { name: 'bin/ping', content: 'ELF', mode: 0o4755, uid: 0, gid: 0, pax: { 'SCHILY.xattr.security.capability': Buffer.from([1, 0, 0, 2, 0xff]) } },
    { name: `deep/${'d'.repeat(120)}/file`, content: 'x'.repeat(1000) },
    { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'bin/hard', type: 'link', linkname: 'bin/ping' },
  ]);

  it('reads every entry whatever the chunk size', () => {
    for (const size of [1, 7, 512, 513, 4096, archive.length]) {
      const seen = readAll(archive, size);
      expect(
        seen.map((s) => s.header.name),
        `chunk ${size}`,
      ).to.deep.equal(['etc/', 'etc/passwd', 'bin/sh', 'bin/ping', `deep/${'d'.repeat(120)}/file`, 'dev/null', 'bin/hard']);
      expect(seen[1]?.content).to.equal('root:x:0:0::/root:/bin/sh\n');
      expect(seen[4]?.content).to.equal('x'.repeat(1000));
    }
  });

  it('carries modes, links, devices and PAX xattrs', () => {
    const seen = readAll(archive, 100);
    expect(seen[2]?.header).to.deep.include({ type: 'symlink', linkname: 'busybox' });
    expect(seen[3]?.header.mode).to.equal(0o4755);
    expect([...(seen[3]?.header.xattrs.get('security.capability') ?? [])]).to.deep.equal([1, 0, 0, 2, 0xff]);
    expect(seen[5]?.header).to.deep.include({ type: 'char', devmajor: 1, devminor: 3, mode: 0o666 });
    expect(seen[6]?.header).to.deep.include({ type: 'link', linkname: 'bin/ping' });
  });

  it('reads what GNU tar writes, including long names', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cradle-tar-'));
    try {
      const long = 'n'.repeat(150);
      mkdirSync(join(dir, 'src', long), { recursive: true });
      writeFileSync(join(dir, 'src', long, 'f'), 'gnu');
      execFileSync('tar', ['--format=gnu', '-C', join(dir, 'src'), '-cf', join(dir, 'a.tar'), '.']);
      const seen = readAll(readFileSync(join(dir, 'a.tar')), 333);
      const file = seen.find((s) => s.header.name.endsWith('/f'));
      expect(file?.header.name).to.equal(`./${long}/f`);
      expect(file?.content).to.equal('gnu');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses corrupt headers and truncated streams', () => {
    const bad = Buffer.from(archive);
    bad[10] = 0x41;
    expect(() => readAll(bad, 512)).to.throw(TarFormatError, 'checksum');
    expect(() => readAll(archive.subarray(0, 1500), 512)).to.throw(TarFormatError, 'ended in the middle');
  });
});
