import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'chai';
import { BlobStreamError, type BodySink, streamBlob } from '../../image/blob-stream.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const run = promisify(execFile);

async function listen(server: Server | ReturnType<typeof createNetServer>): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

/** A server speaking raw bytes: for what Node's own server never sends. */
async function rawServer(respond: (socket: Socket) => void): Promise<{ url: string; close: () => void }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => respond(socket));
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}/blob`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe('blob stream (HTTP/1.1 GET into one reused buffer)', () => {
  const servers: Array<{ close: () => void }> = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });

  async function httpServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createHttpServer(handler);
    server.keepAliveTimeout = 0;
    servers.push({ close: () => server.close() });
    return `http://127.0.0.1:${await listen(server)}`;
  }

  async function raw(respond: (socket: Socket) => void): Promise<string> {
    const s = await rawServer(respond);
    servers.push(s);
    return s.url;
  }

  /** Everything the sink got, and whether each chunk was a view of the given buffer. */
  async function fetchAll(
    url: string,
    opts: { headers?: Record<string, string>; sink?: BodySink; idleMs?: number; signal?: AbortSignal; buffer?: Buffer } = {},
  ) {
    const buffer = opts.buffer ?? Buffer.alloc(64 * 1024);
    const parts: Buffer[] = [];
    let views = 0;
    await streamBlob(
      url,
      (chunk) => {
        if (chunk.buffer === buffer.buffer) views++;
        parts.push(Buffer.from(chunk));
        return opts.sink?.(chunk);
      },
      { headers: opts.headers ?? {}, signal: opts.signal ?? AbortSignal.timeout(60_000), buffer, idleMs: opts.idleMs },
    );
    return { body: Buffer.concat(parts), chunks: parts.length, views };
  }

  it('delivers a Content-Length body byte for byte, as views of the read buffer', async () => {
    const data = randomBytes(5_000_000);
    const url = await httpServer((_req, res) => res.writeHead(200, { 'content-length': data.length }).end(data));
    const { body, chunks, views } = await fetchAll(`${url}/blob`);
    expect(sha(body)).to.equal(sha(data));
    expect(chunks).to.be.greaterThan(10);
    // All but the body's first bytes, which came in the read with the headers.
    expect(views).to.be.at.least(chunks - 1);
  });

  it('sends the request line, Host and the given headers', async () => {
    let seen: { url?: string; headers?: IncomingHttpHeaders } = {};
    const url = await httpServer((req, res) => {
      seen = { url: req.url, headers: req.headers };
      res.writeHead(200, { 'content-length': 2 }).end('ok');
    });
    await fetchAll(`${url}/v2/x/blobs/sha256:ab?part=1`, { headers: { authorization: 'Bearer t0ken' } });
    expect(seen.url).to.equal('/v2/x/blobs/sha256:ab?part=1');
    expect(seen.headers?.host).to.equal(new URL(url).host);
    expect(seen.headers?.authorization).to.equal('Bearer t0ken');
  });

  it('decodes a chunked body, with extensions and trailers, whatever the read boundaries', async () => {
    const url = await raw((socket) => {
      const response = Buffer.from(
        'HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n' +
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n' +
          '5;name=value\r\nhello\r\n1\r\n,\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n',
      );
      // One byte per write, each flushed before the next: every boundary is tried.
      let i = 0;
      const next = () => {
        if (i < response.length) socket.write(response.subarray(i, ++i), next);
      };
      next();
    });
    const { body } = await fetchAll(url);
    expect(body.toString()).to.equal('hello, world');
  });

  it('reads a body with neither length nor chunks up to the end of the connection', async () => {
    const url = await raw((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\nall of it'));
    expect((await fetchAll(url)).body.toString()).to.equal('all of it');
  });

  it('follows redirects, and keeps credentials to the origin they were given for', async () => {
    const seen: Array<string | undefined> = [];
    const storage = await httpServer((req, res) => {
      seen.push(req.headers.authorization);
      res.writeHead(200, { 'content-length': 4 }).end('blob');
    });
    const registry = await httpServer((req, res) => {
      seen.push(req.headers.authorization);
      if (req.url === '/first') res.writeHead(307, { location: '/second' }).end();
      else res.writeHead(302, { location: `${storage}/stored` }).end();
    });
    const { body } = await fetchAll(`${registry}/first`, { headers: { authorization: 'Basic c2VjcmV0' } });
    expect(body.toString()).to.equal('blob');
    expect(seen).to.deep.equal(['Basic c2VjcmV0', 'Basic c2VjcmV0', undefined]);
  });

  it('fails on an error status, a redirect loop and a cut-off body, as download errors', async () => {
    const missing = await httpServer((_req, res) => res.writeHead(404).end('no'));
    const loop = await httpServer((_req, res) => res.writeHead(302, { location: '/again' }).end());
    const cut = await raw((socket) => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this'));
    const cutChunked = await raw((socket) => socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel'));
    const notHttp = await raw((socket) => socket.end('SSH-2.0-OpenSSH\r\n\r\n'));
    const failures: Array<[string, RegExp]> = [
      [`${missing}/blob`, /HTTP 404/],
      [`${loop}/blob`, /too many redirects/],
      [cut, /connection closed after 9 of 1000 bytes/],
      [cutChunked, /in the middle of a chunked body/],
      [notHttp, /not an HTTP\/1\.1 response/],
      ['http://127.0.0.1:1/blob', /ECONNREFUSED/],
    ];
    for (const [url, message] of failures) {
      const err = await fetchAll(url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, url).to.be.instanceOf(BlobStreamError);
      expect((err as Error).message).to.match(message);
    }
  });

  it("passes on the sink's own error and stops reading", async () => {
    const data = randomBytes(4_000_000);
    const url = await httpServer((_req, res) => res.writeHead(200, { 'content-length': data.length }).end(data));
    class Refused extends Error {}
    let calls = 0;
    const err = await fetchAll(`${url}/blob`, {
      sink: () => {
        if (++calls === 2) throw new Refused('not this one');
      },
    }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(Refused);
    expect(calls).to.equal(2);
  });

  it('holds the socket while a sink works on a chunk, and loses nothing', async () => {
    const data = randomBytes(3_000_000);
    const url = await httpServer((_req, res) => res.writeHead(200, { 'content-length': data.length }).end(data));
    let inSink = false;
    let overlapped = false;
    const { body } = await fetchAll(`${url}/blob`, {
      // Every chunk is handled later, on another turn of the event loop.
      sink: async () => {
        if (inSink) overlapped = true;
        inSink = true;
        await new Promise((r) => setImmediate(r));
        inSink = false;
      },
    });
    expect(overlapped).to.equal(false);
    expect(sha(body)).to.equal(sha(data));
  });

  it('gives up on a server that goes quiet, and when aborted', async () => {
    const quiet = await raw((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const idle = await fetchAll(quiet, { idleMs: 300 }).catch((e: unknown) => e);
    expect((idle as Error).message).to.match(/nothing received for 0.3 s/);
    const controller = new AbortController();
    const aborted = fetchAll(quiet, { signal: controller.signal, sink: () => controller.abort(new Error('pull cancelled')) }).catch((e: unknown) => e);
    expect(((await aborted) as Error).message).to.equal('pull cancelled');
  });

  it('speaks TLS, checking the certificate against the trusted ones', async function () {
    this.timeout(60_000);
    const dir = mkdtempSync(join(tmpdir(), 'cradle-blob-tls-'));
    try {
      const key = join(dir, 'key.pem');
      const cert = join(dir, 'cert.pem');
      await run(
        'openssl',
        ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1'].concat([
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=DNS:localhost',
        ]),
      );
      const server = `
        const { createServer } = await import('node:https');
        const { readFileSync } = await import('node:fs');
        const { streamBlob } = await import(${JSON.stringify(new URL('../../image/blob-stream.js', import.meta.url).href)});
        const data = Buffer.alloc(2_000_000, 7);
        const srv = createServer({ key: readFileSync(${JSON.stringify(key)}), cert: readFileSync(${JSON.stringify(cert)}) }, (req, res) => res.writeHead(200, { 'content-length': data.length }).end(data));
        await new Promise((r) => srv.listen(0, '127.0.0.1', r));
        let n = 0;
        try {
          await streamBlob('https://localhost:' + srv.address().port + '/blob', (c) => { n += c.length; }, { headers: {}, signal: AbortSignal.timeout(30_000), buffer: Buffer.alloc(65536) });
          console.log('received ' + n);
        } catch (e) { console.log('failed: ' + e.message); }
        srv.close();`;
      const inChild = async (env: Record<string, string>) =>
        (await run(process.execPath, ['--input-type=module', '-e', server], { env: { ...process.env, ...env } })).stdout.trim();
      expect(await inChild({ NODE_EXTRA_CA_CERTS: cert })).to.equal('received 2000000');
      expect(await inChild({})).to.match(/^failed: .*SELF_SIGNED/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
