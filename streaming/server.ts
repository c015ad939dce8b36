import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../core/logger.js';
import { PORT_FORWARD_PROTOCOL, servePortForward } from './port-forward.js';
import type { ClientIO, CommandResult } from '../runtime/stream-io.js';
import { REMOTE_COMMAND_PROTOCOLS, serveRemoteCommand, WEBSOCKET_COMMAND_PROTOCOLS, type RemoteCommandProtocol, type StreamOptions } from './remote-command.js';
import { serveWebSocketCommand, serveWebSocketPortForward, WEBSOCKET_PORT_FORWARD_PROTOCOLS } from './websocket-streams.js';
import { SpdySession } from './spdy-session.js';
import { TokenStore } from './tokens.js';
import { timerMs } from '../core/timers.js';

export type StreamRequest =
  | ({ kind: 'exec'; containerId: string; cmd: string[] } & StreamOptions)
  | ({ kind: 'attach'; containerId: string } & StreamOptions)
  | { kind: 'portforward'; podId: string; ports: number[] };

/** What the runtime does behind the streams. */
export interface StreamBackend {
  exec(req: Extract<StreamRequest, { kind: 'exec' }>, io: ClientIO): Promise<CommandResult>;
  attach(req: Extract<StreamRequest, { kind: 'attach' }>, io: ClientIO): Promise<CommandResult>;
  /** A connection to `port` inside the pod's network namespace. */
  connect(podId: string, port: number): Promise<Socket>;
}

export interface StreamingOptions {
  address: string;
  port: number;
  idleTimeoutMs: () => number;
  tokenTtlMs: () => number;
}

/** Client-offered sub-protocols, in the client's order (the header may repeat or be comma-joined). */
function offered(req: IncomingMessage, header: 'x-stream-protocol-version' | 'sec-websocket-protocol'): string[] {
  const raw = req.headers[header];
  return (Array.isArray(raw) ? raw.join(',') : (raw ?? ''))
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
}

function refuseUpgrade(socket: Duplex, status: number, reason: string, message: string): void {
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(message)}\r\nConnection: close\r\n\r\n${message}`,
  );
}

/**
 * The streaming server behind Exec, Attach and PortForward: those RPCs hand
 * out a single-use URL here; kubelet (or the API server) connects to it and
 * upgrades to SPDY/3.1 with a Kubernetes sub-protocol.
 */
export class StreamingServer {
  private readonly tokens: TokenStore<StreamRequest>;
  private readonly server: Server;
  private readonly sockets = new Set<Duplex>();
  private base = '';

  constructor(
    private readonly opts: StreamingOptions,
    private readonly backend: StreamBackend,
    private readonly logger: Logger,
  ) {
    this.tokens = new TokenStore(opts.tokenTtlMs);
    this.server = createServer((req, res) => {
      res.writeHead(400, { 'Content-Type': 'text/plain', Connection: 'close' });
      res.end(`${req.url ?? ''}: streaming requests must upgrade to SPDY/3.1 or WebSocket\n`);
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.upgrade(req, socket, head));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.port, this.opts.address, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    this.base = `http://${host}:${a.port}`;
    this.logger.info('streaming server listening', { url: this.base });
  }

  /** The URL kubelet connects to for `req`. */
  url(req: StreamRequest): string {
    return `${this.base}/${req.kind}/${this.tokens.issue(req)}`;
  }

  async stop(): Promise<void> {
    this.tokens.clear();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    const refuse = (status: number, reason: string, message: string) => {
      this.logger.debug('stream refused', { url: req.url, upgrade: req.headers.upgrade, status, message });
      refuseUpgrade(socket, status, reason, `${message}\n`);
    };
    const m = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]+)$/.exec((req.url ?? '').split('?')[0] as string);
    if (!m) {
      refuse(404, 'Not Found', 'unknown streaming URL');
      return;
    }
    const transport = (req.headers.upgrade ?? '').toLowerCase();
    if (transport !== 'spdy/3.1' && transport !== 'websocket') {
      refuse(400, 'Bad Request', 'only SPDY/3.1 and WebSocket upgrades are served');
      return;
    }
    const websocket = transport === 'websocket';
    const request = this.tokens.consume(m[2] as string);
    if (!request || request.kind !== m[1]) {
      refuse(404, 'Not Found', 'the streaming URL is unknown, used or expired');
      return;
    }
    const supported: readonly string[] =
      request.kind === 'portforward'
        ? websocket
          ? WEBSOCKET_PORT_FORWARD_PROTOCOLS
          : [PORT_FORWARD_PROTOCOL]
        : websocket
          ? WEBSOCKET_COMMAND_PROTOCOLS
          : REMOTE_COMMAND_PROTOCOLS;
    const offers = offered(req, websocket ? 'sec-websocket-protocol' : 'x-stream-protocol-version');
    const protocol = offers.find((p) => supported.includes(p));
    if (!protocol) {
      refuse(403, 'Forbidden', `none of the offered protocols (${offers.join(', ')}) is supported (${supported.join(', ')})`);
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    if (websocket) {
      // The handshake answers with the protocol picked above. `ws` refuses
      // names with "/" (not an RFC 6455 token), which Kubernetes uses
      // ("SPDY/3.1+portforward.k8s.io"), so the header is answered here.
      delete req.headers['sec-websocket-protocol'];
      const handshake = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 32 * 1024 * 1024 });
      handshake.once('headers', (headers) => headers.push(`Sec-WebSocket-Protocol: ${protocol}`));
      handshake.handleUpgrade(req, socket, head, (ws) => {
        this.idleTimeout(socket, () => ws.terminate(), request.kind);
        this.logger.debug('stream opened', { kind: request.kind, protocol, transport });
        this.serveWebSocket(ws, request, protocol);
      });
      return;
    }
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${protocol}\r\n\r\n`);
    // Bytes that came with the upgrade request belong to the session.
    if (head.length > 0) socket.unshift(head);
    const session = new SpdySession(socket);
    this.idleTimeout(socket, () => session.close(), request.kind);
    this.logger.debug('stream opened', { kind: request.kind, protocol, transport });
    if (request.kind === 'portforward') {
      servePortForward(session, request.ports, (port) => this.backend.connect(request.podId, port), this.logger);
      return;
    }
    const run = request.kind === 'exec' ? (io: ClientIO) => this.backend.exec(request, io) : (io: ClientIO) => this.backend.attach(request, io);
    void serveRemoteCommand(session, protocol as RemoteCommandProtocol, request, run, this.logger);
  }

  private idleTimeout(socket: Duplex, close: () => void, kind: string): void {
    const tcp = socket as Socket;
    if (typeof tcp.setTimeout !== 'function') return;
    tcp.setTimeout(timerMs(this.opts.idleTimeoutMs()));
    tcp.on('timeout', () => {
      this.logger.info('closing an idle stream', { kind });
      close();
    });
  }

  private serveWebSocket(ws: WebSocket, request: StreamRequest, protocol: string): void {
    ws.on('error', () => undefined);
    if (request.kind === 'portforward') {
      serveWebSocketPortForward(ws, protocol, request.ports, (port) => this.backend.connect(request.podId, port), this.logger);
      return;
    }
    const run = request.kind === 'exec' ? (io: ClientIO) => this.backend.exec(request, io) : (io: ClientIO) => this.backend.attach(request, io);
    void serveWebSocketCommand(ws, protocol as RemoteCommandProtocol, request, run);
  }
}
