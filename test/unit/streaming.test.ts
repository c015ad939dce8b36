import { Duplex } from 'node:stream';
import zlib from 'node:zlib';
import { expect } from 'chai';
import { MAX_HEADER_BLOCK, SpdySession } from '../../streaming/spdy-session.js';
import { SPDY3_DICTIONARY } from '../../streaming/spdy-dictionary.js';
import { controlFrame, dataFrame, decodeHeaderBlock, encodeHeaderBlock, FLAG_FIN, FrameReader, FrameType } from '../../streaming/spdy-frames.js';
import { statusJson } from '../../streaming/remote-command.js';
import { TokenStore } from '../../streaming/tokens.js';

describe('streaming: SPDY framing, tokens and statuses', () => {
  it('has the SPDY/3 header dictionary byte for byte (length and zlib dictionary id)', () => {
    expect(SPDY3_DICTIONARY.length).to.equal(1423);
    let a = 1;
    let b = 0;
    for (const x of SPDY3_DICTIONARY) {
      a = (a + x) % 65521;
      b = (b + a) % 65521;
    }
    // The DICTID peers put in their zlib headers.
    expect(((b << 16) | a) >>> 0).to.equal(0xe3c6a7c2);
  });

  it('reassembles frames however the bytes are split', () => {
    const bytes = Buffer.concat([
      controlFrame(FrameType.PING, 0, Buffer.from([0, 0, 0, 1])),
      dataFrame(3, FLAG_FIN, Buffer.from('hello')),
      dataFrame(5, 0, Buffer.alloc(0)),
    ]);
    for (const step of [1, 3, 7, bytes.length]) {
      const reader = new FrameReader();
      const got = [];
      for (let off = 0; off < bytes.length; off += step) got.push(...reader.push(bytes.subarray(off, off + step)));
      expect(got.map((f) => (f.kind === 'control' ? `c${f.type}` : `d${f.streamId}:${f.flags}:${f.payload.toString()}`))).to.deep.equal([
        'c6',
        'd3:1:hello',
        'd5:0:',
      ]);
    }
    expect(() => new FrameReader().push(Buffer.from([0x80, 2, 0, 1, 0, 0, 0, 0]))).to.throw(/version 2/);
  });

  it('round-trips header blocks, lower-casing names and splitting NUL-joined values', () => {
    const block = encodeHeaderBlock({ streamType: 'stdout', 'X-Multi': ['a', 'b'] });
    expect([...decodeHeaderBlock(block)]).to.deep.equal([
      ['streamtype', ['stdout']],
      ['x-multi', ['a', 'b']],
    ]);
    expect(() => decodeHeaderBlock(block.subarray(0, block.length - 1))).to.throw(/truncated/);
  });

  it('ends a session whose header block inflates beyond the limit, opening no stream', async () => {
    const written: Buffer[] = [];
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        written.push(chunk);
        cb();
      },
    });
    const session = new SpdySession(socket);
    let opened = 0;
    session.on('stream', () => opened++);
    // A thousandfold: 1 MiB of header in about a kilobyte on the wire.
    const bomb = zlib.deflateSync(encodeHeaderBlock({ x: 'a'.repeat(1024 * 1024) }), { dictionary: SPDY3_DICTIONARY, level: 9 });
    expect(bomb.length).to.be.below(MAX_HEADER_BLOCK);
    const fixed = Buffer.alloc(10);
    fixed.writeUInt32BE(1, 0);
    socket.push(controlFrame(FrameType.SYN_STREAM, 0, Buffer.concat([fixed, bomb])));
    await new Promise<void>((resolve) => socket.once('finish', () => resolve()));
    expect(session.closed).to.equal(true);
    expect(opened).to.equal(0);
    // The last thing written is a GOAWAY (type 7).
    expect(written[written.length - 1]?.readUInt16BE(2)).to.equal(FrameType.GOAWAY);
  });

  it('hands out each token once, and forgets unused ones after the TTL', async () => {
    const store = new TokenStore<string>(() => 30);
    const t = store.issue('exec');
    expect(t).to.match(/^[A-Za-z0-9_-]{32}$/);
    expect(store.consume(t)).to.equal('exec');
    expect(store.consume(t)).to.equal(undefined);
    const late = store.issue('late');
    await new Promise((r) => setTimeout(r, 60));
    expect(store.consume(late)).to.equal(undefined);
    expect(store.size).to.equal(0);
  });

  it('reports exit codes as kubectl reads them from a v4 error stream', () => {
    expect(JSON.parse(statusJson({ exitCode: 0 }))).to.deep.equal({ metadata: {}, status: 'Success' });
    const failed = JSON.parse(statusJson({ exitCode: 3 })) as { reason: string; details: { causes: Array<{ reason: string; message: string }> } };
    expect(failed.reason).to.equal('NonZeroExitCode');
    expect(failed.details.causes).to.deep.equal([{ reason: 'ExitCode', message: '3' }]);
    expect(JSON.parse(statusJson({ error: 'boom' })) as object).to.include({ status: 'Failure', message: 'boom' });
  });
});
