import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';

/**
 * GET of one blob over HTTP/1.1 (TLS for https), its body handed to a sink
 * in views of one reused read buffer, as each socket read completes.
 *
 * Hand-written because no Node HTTP client reads into a caller's buffer:
 * Node's http client (and fetch above it) allocates a fresh Buffer for each
 * socket read and passes it through streams, which cost 0.4 s of CPU per
 * 200 MB on this machine against 0.06 s for the same bytes read into one
 * buffer with net's `onread` (docs/BENCHMARKS.md). Only what a registry's
 * blob GET needs: redirects, Content-Length, chunked and close-delimited
 * bodies; no keep-alive, no proxies (the registry client has none either).
 */

/**
 * Where a body's bytes go, in order. A chunk is a view of the read buffer:
 * valid during the call, or until the promise the sink returns settles (the
 * socket waits for it); a sink keeps a copy of what it needs longer.
 */
export type BodySink = (chunk: Buffer) => void | Promise<void>;

/** The request failed on the wire or the server answered with an error: worth another try. */
export class BlobStreamError extends Error {}

export interface BlobStreamOptions {
  headers: Record<string, string>;
  signal: AbortSignal;
  /** The read buffer, reused for every read; one per concurrent download. */
  buffer: Buffer;
  /** Nothing received for this long fails the request. */
  idleMs?: number;
  redirects?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Bounds what a misbehaving server can make us hold. */
const MAX_HEAD = 64 * 1024;
const MAX_CHUNK_LINE = 4 * 1024;
const DEFAULT_IDLE_MS = 120_000;

interface Head {
  status: number;
  headers: Map<string, string>;
}

/** Streams the body of `url` into `sink`; resolves once all of it has been taken. */
export async function streamBlob(url: string, sink: BodySink, opts: BlobStreamOptions): Promise<void> {
  let target = new URL(url);
  let headers = opts.headers;
  for (let redirects = opts.redirects ?? 5; ; redirects--) {
    const location = await exchange(target, headers, sink, opts);
    if (location === undefined) return;
    if (redirects <= 0) throw new BlobStreamError(`${target.href}: too many redirects`);
    const next = new URL(location, target);
    // Credentials go only to the origin they were given for.
    if (next.origin !== target.origin) {
      const { authorization: _, ...anonymous } = headers;
      headers = anonymous;
    }
    target = next;
  }
}

function requestHead(target: URL, headers: Record<string, string>): string {
  const lines = [`GET ${target.pathname}${target.search} HTTP/1.1`, `Host: ${target.host}`, 'Connection: close', 'Accept-Encoding: identity'];
  for (const [name, value] of Object.entries(headers)) {
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new BlobStreamError(`header ${JSON.stringify(name)} has a line break`);
    lines.push(`${name}: ${value}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

function parseHead(text: string, url: string): Head {
  const [statusLine = '', ...lines] = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
  if (!m) throw new BlobStreamError(`${url}: not an HTTP/1.1 response: ${JSON.stringify(statusLine.slice(0, 80))}`);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const seen = headers.get(name);
    headers.set(name, seen === undefined ? value : `${seen}, ${value}`);
  }
  return { status: Number(m[1]), headers };
}

/**
 * Undoes chunked transfer coding: size line, data, CRLF, ... a zero size,
 * then trailer lines up to an empty one.
 */
class ChunkedDecoder {
  private state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  private line = '';
  private remaining = 0;

  get done(): boolean {
    return this.state === 'done';
  }

  /** The data in `buf`, as views of it, in order. */
  *take(buf: Buffer): Generator<Buffer> {
    let pos = 0;
    while (pos < buf.length && this.state !== 'done') {
      if (this.state === 'data') {
        const n = Math.min(this.remaining, buf.length - pos);
        yield buf.subarray(pos, pos + n);
        pos += n;
        this.remaining -= n;
        if (this.remaining === 0) this.state = 'data-end';
        continue;
      }
      const lf = buf.indexOf(0x0a, pos);
      const end = lf < 0 ? buf.length : lf;
      this.line += buf.toString('latin1', pos, end);
      pos = lf < 0 ? buf.length : lf + 1;
      if (this.line.length > MAX_CHUNK_LINE) throw new BlobStreamError('chunked body: a line is too long');
      if (lf < 0) break;
      const line = this.line.replace(/\r$/, '');
      this.line = '';
      if (this.state === 'size') {
        const size = /^([0-9a-fA-F]{1,12})(?:[ \t]*;.*)?$/.exec(line);
        if (!size) throw new BlobStreamError(`chunked body: bad chunk size ${JSON.stringify(line.slice(0, 40))}`);
        this.remaining = Number.parseInt(size[1] as string, 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (this.state === 'data-end') {
        if (line !== '') throw new BlobStreamError('chunked body: chunk data is longer than its size');
        this.state = 'size';
      } else if (line === '') {
        this.state = 'done';
      }
    }
  }
}

/** One request on its own connection: the redirect's location, or undefined once the body is in the sink. */
function exchange(target: URL, headers: Record<string, string>, sink: BodySink, opts: BlobStreamOptions): Promise<string | undefined> {
  const request = requestHead(target, headers);
  const https = target.protocol === 'https:';
  if (!https && target.protocol !== 'http:') return Promise.reject(new BlobStreamError(`${target.href}: only http and https are supported`));
  const host = target.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(target.port) || (https ? 443 : 80);
  return new Promise((resolve, reject) => {
    let head: Buffer | undefined = Buffer.alloc(0);
    let body: { length: number | undefined; received: number; chunked: ChunkedDecoder | undefined } | undefined;
    let settled = false;
    /** A sink's promise the socket waits for. */
    let pending: Promise<void> | undefined;
    /** The server ended the connection ('end') or it went away ('close'). */
    let ended: 'end' | 'close' | undefined;
    const finish = (err: Error | undefined, location?: string) => {
      if (settled) return;
      settled = true;
      opts.signal.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve(location);
    };
    const fail = (message: string) => finish(new BlobStreamError(`${target.href}: ${message}`));
    const onAbort = () => finish(opts.signal.reason instanceof Error ? opts.signal.reason : new BlobStreamError(`${target.href}: aborted`));
    const complete = () => body !== undefined && (body.chunked ? body.chunked.done : body.length !== undefined && body.received >= body.length);
    /** Settles once the body is complete or the connection is gone, unless the sink still holds the socket. */
    const settleIfDone = () => {
      if (settled || pending) return;
      if (complete()) return finish(undefined);
      if (ended === undefined) return;
      if (head !== undefined) return fail('connection closed before a response');
      // Neither a length nor chunks: the body is what came before the server's end.
      if (body && body.length === undefined && !body.chunked && ended === 'end') return finish(undefined);
      fail(
        body?.length !== undefined ? `connection closed after ${body.received} of ${body.length} bytes` : 'connection closed in the middle of a chunked body',
      );
    };

    /** Hands `parts[from..]` to the sink; false while a sink's promise holds the socket (paused, so the views stay valid). */
    const deliver = (parts: readonly Buffer[], from: number): boolean => {
      for (let i = from; i < parts.length && body; i++) {
        let data = parts[i] as Buffer;
        // Bytes past a Content-Length are not the blob's.
        if (body.length !== undefined) data = data.subarray(0, body.length - body.received);
        if (data.length === 0) continue;
        body.received += data.length;
        const result = sink(data);
        if (result instanceof Promise) {
          pending = result;
          result.then(
            () => {
              pending = undefined;
              try {
                if (settled || !deliver(parts, i + 1)) return;
              } catch (err) {
                return finish(err instanceof Error ? err : new Error(String(err)));
              }
              settleIfDone();
              if (!settled) socket.resume();
            },
            (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
          );
          return false;
        }
      }
      settleIfDone();
      return true;
    };

    const onRead = (n: number, buf: Uint8Array): boolean => {
      if (settled) return false;
      const chunk = Buffer.from(buf.buffer, buf.byteOffset, n);
      try {
        if (head === undefined) return deliver(body?.chunked ? [...body.chunked.take(chunk)] : [chunk], 0);
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) {
          if (head.length > MAX_HEAD) fail('response headers are too long');
          return !settled;
        }
        const parsed = parseHead(head.toString('latin1', 0, end), target.href);
        const rest = head.subarray(end + 4);
        if (parsed.status >= 100 && parsed.status < 200) {
          // An interim response (103 Early Hints, say): the real one follows.
          head = Buffer.alloc(0);
          return rest.length === 0 ? true : onRead(rest.length, rest);
        }
        head = undefined;
        const location = parsed.headers.get('location');
        if (REDIRECTS.has(parsed.status) && location !== undefined) {
          finish(undefined, location);
          return false;
        }
        if (parsed.status < 200 || parsed.status > 299) {
          fail(`HTTP ${parsed.status}`);
          return false;
        }
        const chunked = /(^|,)\s*chunked\s*$/i.test(parsed.headers.get('transfer-encoding') ?? '');
        const length = parsed.headers.get('content-length');
        if (!chunked && length !== undefined && !/^\d+$/.test(length)) {
          fail(`bad Content-Length ${JSON.stringify(length)}`);
          return false;
        }
        const decoder = chunked ? new ChunkedDecoder() : undefined;
        body = { length: chunked || length === undefined ? undefined : Number(length), received: 0, chunked: decoder };
        return deliver(decoder ? [...decoder.take(rest)] : [rest], 0);
      } catch (err) {
        finish(err instanceof Error ? err : new Error(String(err)));
        return false;
      }
    };

    const onread = { buffer: opts.buffer, callback: onRead };
    const socket: Socket = https
      ? tlsConnect({ host, port, servername: isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], onread } as ConnectionOptions)
      : netConnect({ host, port, onread });
    const idleMs = opts.idleMs ?? DEFAULT_IDLE_MS;
    // A sink that holds the socket is not the server going quiet.
    socket.setTimeout(idleMs, () => pending === undefined && fail(`nothing received for ${idleMs / 1000} s`));
    socket.once(https ? 'secureConnect' : 'connect', () => socket.write(request));
    socket.on('error', (err: NodeJS.ErrnoException) => fail(err.code ?? err.message));
    socket.on('end', () => {
      ended = 'end';
      settleIfDone();
    });
    socket.on('close', () => {
      ended ??= 'close';
      settleIfDone();
    });
    if (opts.signal.aborted) onAbort();
    else opts.signal.addEventListener('abort', onAbort, { once: true });
  });
}
