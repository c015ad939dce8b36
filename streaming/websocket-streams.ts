import type { Socket } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { createWebSocketStream, type WebSocket } from 'ws';
import type { Logger } from '../core/logger.js';
import type { ClientIO, CommandResult } from '../runtime/stream-io.js';
import { PORT_FORWARD_PROTOCOL, servePortForward } from './port-forward.js';
import { carriesResize, type RemoteCommandProtocol, resizeParser, runCommand, TerminalSizes, type StreamOptions } from './remote-command.js';
import { SpdySession } from './spdy-session.js';

/**
 * Kubernetes' streaming protocols over WebSocket (what current kubectl,
 * client libraries and `crictl --transport websocket` speak): each binary
 * message is one channel's bytes, the channel in its first byte.
 */

const STDIN = 0;
const STDOUT = 1;
const STDERR = 2;
const ERROR = 3;
const RESIZE = 4;
/** v5: [255, channel] closes the client's side of a channel. */
const CLOSE = 255;

/** Port-forward: kubelet's channel pairs (data 2i, error 2i+1 for the i-th port), or SPDY carried inside the WebSocket. */
export const WEBSOCKET_PORT_FORWARD_PROTOCOLS = ['v4.channel.k8s.io', `SPDY/3.1+${PORT_FORWARD_PROTOCOL}`] as const;

function frame(channel: number, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from([channel]), data]);
}

/** A channel the server writes (stdout, stderr): every write is one message, acknowledged once sent. */
function outputChannel(ws: WebSocket, channel: number): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (ws.readyState !== ws.OPEN) return done();
      ws.send(frame(channel, chunk), (err) => done(err ?? undefined));
    },
  });
}

/**
 * Writes a client's bytes into `into`; while it is full, the socket stops
 * reading, so TCP holds the client back instead of the daemon's memory.
 */
function feed(ws: WebSocket, into: Writable | undefined): (data: Buffer) => void {
  return (data) => {
    if (into && !into.write(data)) {
      ws.pause();
      into.once('drain', () => ws.resume());
    }
  };
}

/** The messages of one channel, split off the socket as they come. */
function onChannels(ws: WebSocket, handlers: Record<number, (data: Buffer) => void>): void {
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    if (!isBinary || raw.length === 0) return;
    handlers[raw[0] as number]?.(raw.subarray(1));
  });
}

/** One exec or attach over a WebSocket: its channels become the command's streams; the outcome goes on the error channel. */
export async function serveWebSocketCommand(
  ws: WebSocket,
  protocol: RemoteCommandProtocol,
  opts: StreamOptions,
  run: (io: ClientIO) => Promise<CommandResult>,
): Promise<void> {
  const abort = new AbortController();
  const stdin = opts.stdin ? new PassThrough() : undefined;
  const sizes = new TerminalSizes();
  ws.once('close', () => {
    abort.abort();
    stdin?.end();
  });
  onChannels(ws, {
    [STDIN]: feed(ws, stdin),
    [RESIZE]: opts.tty && carriesResize(protocol) ? resizeParser((s) => sizes.push(s)) : () => undefined,
    [CLOSE]: (d) => {
      if (protocol === 'v5.channel.k8s.io' && d[0] === STDIN) stdin?.end();
    },
  });
  const io: ClientIO = {
    stdin,
    stdout: opts.stdout ? outputChannel(ws, STDOUT) : undefined,
    stderr: opts.stderr && !opts.tty ? outputChannel(ws, STDERR) : undefined,
    onResize: (l) => sizes.listen(l),
    signal: abort.signal,
  };
  const outcome = await runCommand(protocol, io, run);
  if (ws.readyState === ws.OPEN) {
    if (outcome) ws.send(frame(ERROR, outcome));
    ws.close(1000);
  }
}

/**
 * Port-forward over a WebSocket. With kubelet's channel protocol, the
 * ports come with the request (`?ports=`), each gets one connection, and
 * each of its two channels starts with the port number (2 bytes, little
 * endian); the socket closes when every connection has. Tunnelled SPDY
 * is served as on a SPDY upgrade.
 */
export function serveWebSocketPortForward(
  ws: WebSocket,
  protocol: string,
  ports: readonly number[],
  connect: (port: number) => Promise<Socket>,
  logger: Logger,
): void {
  if (protocol !== 'v4.channel.k8s.io') {
    servePortForward(new SpdySession(createWebSocketStream(ws)), ports, connect, logger);
    return;
  }
  if (ports.length === 0) {
    ws.close(1008, 'no ports: port-forward over channels needs ?ports= on the request');
    return;
  }
  const conns = new Map<number, Socket>();
  // What the client sends before its connection is up waits here.
  const inbound = ports.map(() => new PassThrough());
  let open = ports.length;
  const done = () => {
    if (--open === 0 && ws.readyState === ws.OPEN) ws.close(1000);
  };
  ws.once('close', () => {
    for (const c of conns.values()) c.destroy();
  });
  const portBytes = (port: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(port);
    return b;
  };
  onChannels(ws, Object.fromEntries(inbound.map((into, i) => [2 * i, feed(ws, into)])));
  ports.forEach((port, i) => {
    ws.send(frame(2 * i, portBytes(port)));
    ws.send(frame(2 * i + 1, portBytes(port)));
    connect(port).then(
      (conn) => {
        conns.set(i, conn);
        inbound[i]?.pipe(conn);
        conn.pipe(outputChannel(ws, 2 * i));
        conn.on('error', () => undefined);
        conn.once('close', done);
      },
      (err: unknown) => {
        const message = err instanceof Error ? err.message : String(err);
        logger.info('port-forward connection failed', { port, error: message });
        // What the client sends for this port has nowhere to go.
        inbound[i]?.resume();
        if (ws.readyState === ws.OPEN) ws.send(frame(2 * i + 1, Buffer.from(`error forwarding port ${port} to pod: ${message}`)));
        done();
      },
    );
  });
}
