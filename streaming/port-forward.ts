import type { Socket } from 'node:net';
import type { Logger } from '../core/logger.js';
import type { SpdySession, SpdyStream } from './spdy-session.js';

export const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';

/**
 * Serves port-forward over a SPDY session: the client opens an error and a
 * data stream per connection, tied by their requestID and naming the port.
 * Each pair gets its own connection to the port inside the pod's network
 * namespace; bytes flow both ways until either side closes.
 */
export function servePortForward(session: SpdySession, ports: readonly number[], connect: (port: number) => Promise<Socket>, logger: Logger): void {
  const pending = new Map<string, { error?: SpdyStream; data?: SpdyStream; port?: number }>();
  // One listener for the session's end, however many connections it carries.
  const open = new Set<Socket>();
  session.once('close', () => {
    for (const c of open) c.destroy();
  });
  session.on('stream', (s) => {
    const type = s.header('streamType');
    const requestId = s.header('requestID') ?? '';
    const port = Number(s.header('port'));
    if ((type !== 'error' && type !== 'data') || !Number.isInteger(port) || port <= 0 || port > 65535) {
      s.reset();
      return;
    }
    const pair = pending.get(requestId) ?? {};
    if (pair[type] || (pair.port !== undefined && pair.port !== port)) {
      s.reset();
      return;
    }
    pair[type] = s;
    pair.port = port;
    pending.set(requestId, pair);
    if (pair.error && pair.data) {
      pending.delete(requestId);
      void forward(pair.error, pair.data, port);
    }
  });

  const forward = async (error: SpdyStream, data: SpdyStream, port: number): Promise<void> => {
    // The client writes nothing on its error stream.
    error.resume();
    if (ports.length > 0 && !ports.includes(port)) {
      error.write(Buffer.from(`port ${port} was not asked for in the PortForward request`));
      error.end();
      data.end();
      return;
    }
    let conn: Socket;
    try {
      conn = await connect(port);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      logger.info('port-forward connection failed', { port, error: message });
      error.write(Buffer.from(`error forwarding port ${port} to pod: ${message}`));
      error.end();
      data.end();
      return;
    }
    error.end();
    // Half-closes travel through: the client's FIN ends the connection's writing side and back.
    data.pipe(conn);
    conn.pipe(data);
    open.add(conn);
    conn.on('close', () => open.delete(conn));
    conn.on('error', () => data.reset());
    data.on('close', () => conn.destroy());
  };
}
