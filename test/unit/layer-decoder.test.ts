import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { expect } from 'chai';
import { LayerCompressionError, LayerDecoder } from '../../image/layer-decoder.js';
import { loadNative } from '../../native/index.js';

/** Decodes `blob` fed in pieces of `piece` bytes; the output, copied. */
async function decode(blob: Buffer, piece = 64 * 1024, output = Buffer.alloc(4096)): Promise<Buffer> {
  const out: Buffer[] = [];
  const decoder = new LayerDecoder(loadNative(), output, (chunk) => out.push(Buffer.from(chunk)));
  try {
    for (let i = 0; i < blob.length; i += piece) await decoder.write(blob.subarray(i, i + piece));
    await decoder.end();
  } catch (err) {
    decoder.abort();
    throw err;
  }
  return Buffer.concat(out);
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (e: unknown) => e as Error,
  );

describe('layer decoder', () => {
  const data = Buffer.concat([randomBytes(200_000), Buffer.alloc(300_000, 'a')]);

  it('decodes gzip through a small reused output buffer, fed a byte at a time or in large pieces', async () => {
    const gz = gzipSync(data);
    expect((await decode(gz, 1)).equals(data)).to.equal(true);
    expect((await decode(gz, 1 << 20)).equals(data)).to.equal(true);
  });

  it('passes an uncompressed tar through, and decodes zstd with the zstd tool', async () => {
    expect((await decode(data, 777)).equals(data)).to.equal(true);
    const zst = execFileSync('zstd', ['-q', '-c'], { input: data });
    expect((await decode(zst, 5000)).equals(data)).to.equal(true);
    expect((await decode(Buffer.from('ab'))).toString()).to.equal('ab');
  });

  it('decodes concatenated gzip members, and ignores other bytes after the end as gzip(1) does', async () => {
    const two = Buffer.concat([gzipSync(data.subarray(0, 1000)), gzipSync(data.subarray(1000))]);
    expect((await decode(two, 333)).equals(data)).to.equal(true);
    const padded = Buffer.concat([gzipSync(data), Buffer.alloc(1024)]);
    expect((await decode(padded)).equals(data)).to.equal(true);
  });

  it('refuses truncated and corrupt gzip, and a zstd stream zstd cannot read', async () => {
    const gz = gzipSync(data);
    const truncated = await failure(decode(gz.subarray(0, gz.length - 100)));
    expect(truncated).to.be.instanceOf(LayerCompressionError);
    expect(truncated?.message).to.match(/truncated/);
    const corrupt = Buffer.from(gz);
    corrupt.fill(0xff, 20, 60);
    expect(await failure(decode(corrupt))).to.be.instanceOf(LayerCompressionError);
    const zst = execFileSync('zstd', ['-q', '-c'], { input: data });
    const badZstd = await failure(decode(zst.subarray(0, zst.length / 2)));
    expect(badZstd).to.be.instanceOf(LayerCompressionError);
    expect(badZstd?.message).to.match(/^zstd: /);
  });

  it("passes on the tar reader's refusal from zstd's output, and stops zstd", async () => {
    const zst = execFileSync('zstd', ['-q', '-c'], { input: randomBytes(4_000_000), maxBuffer: 64 << 20 });
    class Refused extends Error {}
    const decoder = new LayerDecoder(loadNative(), Buffer.alloc(4096), () => {
      throw new Refused('bad entry');
    });
    const err = await failure(
      (async () => {
        for (let i = 0; i < zst.length; i += 65536) await decoder.write(zst.subarray(i, i + 65536));
        await decoder.end();
      })(),
    );
    expect(err).to.be.instanceOf(Refused);
  });
});
