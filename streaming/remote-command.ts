import type { Writable } from 'node:stream';
import type { Logger } from '../core/logger.js';
import type { ClientIO, CommandResult, TerminalSize } from '../runtime/stream-io.js';
import type { SpdySession, SpdyStream } from './spdy-session.js';

/** Kubernetes' remote command sub-protocols over SPDY, newest first. */
export const REMOTE_COMMAND_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;
/** Over WebSocket, v5 adds closing stdin without closing the connection. */
export const WEBSOCKET_COMMAND_PROTOCOLS = ['v5.channel.k8s.io', ...REMOTE_COMMAND_PROTOCOLS] as const;
export type RemoteCommandProtocol = (typeof WEBSOCKET_COMMAND_PROTOCOLS)[number];

/** Protocols that report the outcome as a metav1.Status and carry terminal sizes. */
const STATUS_PROTOCOLS: readonly string[] = ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
const RESIZE_PROTOCOLS: readonly string[] = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io'];

/** Whether a client on `protocol` sends terminal sizes for a tty. */
export function carriesResize(protocol: RemoteCommandProtocol): boolean {
  return RESIZE_PROTOCOLS.includes(protocol);
}

export interface StreamOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** How long a client may take to open the streams it announced. */
const STREAM_SETUP_TIMEOUT_MS = 30_000;

/** Consecutive JSON objects ({"Width":80,"Height":24}) as clients write them on the resize stream or channel. */
export function resizeParser(onSize: (size: TerminalSize) => void): (chunk: Buffer) => void {
  let pending = '';
  return (chunk) => {
    pending += chunk.toString('utf8');
    for (;;) {
      const end = pending.indexOf('}');
      if (end < 0) return;
      const text = pending.slice(pending.indexOf('{'), end + 1);
      pending = pending.slice(end + 1);
      try {
        // Go decodes field names case-insensitively, and clients rely on it: client-node sends "width".
        const v = Object.fromEntries(Object.entries(JSON.parse(text) as object).map(([k, x]) => [k.toLowerCase(), x as unknown]));
        if (typeof v.width === 'number' && typeof v.height === 'number') onSize({ width: v.width, height: v.height });
      } catch {
        // a malformed size is ignored, as kubelet does
      }
    }
  };
}

/** Terminal sizes from the client, replayed to a listener that comes after them. */
export class TerminalSizes {
  private readonly seen: TerminalSize[] = [];
  private readonly listeners: Array<(s: TerminalSize) => void> = [];

  push(size: TerminalSize): void {
    this.seen.push(size);
    for (const l of this.listeners) l(size);
  }

  listen(listener: (s: TerminalSize) => void): void {
    this.listeners.push(listener);
    for (const s of this.seen) listener(s);
  }
}

/**
 * What v4 clients read from the error stream: a metav1.Status. A non-zero
 * exit carries its code as an ExitCode cause, which kubectl turns into its
 * own exit code.
 */
export function statusJson(result: CommandResult): string {
  if ('error' in result) return JSON.stringify({ metadata: {}, status: 'Failure', message: result.error, reason: 'InternalError', code: 500 });
  if (result.exitCode === 0) return JSON.stringify({ metadata: {}, status: 'Success' });
  return JSON.stringify({
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code ${result.exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(result.exitCode) }] },
  });
}

/**
 * Serves one exec or attach over a SPDY session: waits for the streams the
 * request announced (error always; stdin, stdout, stderr as asked; resize
 * for a tty on v3 and later), runs `run` with them, reports the outcome on
 * the error stream and closes the session.
 */
export async function serveRemoteCommand(
  session: SpdySession,
  protocol: RemoteCommandProtocol,
  opts: StreamOptions,
  run: (io: ClientIO) => Promise<CommandResult>,
  logger: Logger,
): Promise<void> {
  const wanted = new Set<string>(['error']);
  if (opts.stdin) wanted.add('stdin');
  if (opts.stdout) wanted.add('stdout');
  if (opts.stderr && !opts.tty) wanted.add('stderr');
  if (opts.tty && carriesResize(protocol)) wanted.add('resize');
  const streams = new Map<string, SpdyStream>();
  const abort = new AbortController();
  session.once('close', () => abort.abort());
  const sizes = new TerminalSizes();

  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`the client opened ${[...streams.keys()].join(', ') || 'no streams'} of ${[...wanted].join(', ')} in time`)),
      STREAM_SETUP_TIMEOUT_MS,
    );
    timer.unref();
    abort.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new Error('the client went away before opening its streams'));
    });
    session.on('stream', (s) => {
      const type = s.header('streamType') ?? '';
      if (!wanted.has(type) || streams.has(type)) {
        s.reset();
        return;
      }
      streams.set(type, s);
      if (type === 'resize') {
        s.on(
          'data',
          resizeParser((size) => sizes.push(size)),
        );
      }
      if (streams.size === wanted.size) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  try {
    await ready;
  } catch (err) {
    logger.warn('streaming request abandoned', { error: err instanceof Error ? err.message : String(err) });
    session.close();
    return;
  }

  // Our half of stdin stays open until the end: kubectl takes its closing as
  // the server being done and closes its own half, racing the input it has
  // not sent yet.
  const stdin = streams.get('stdin');
  const io: ClientIO = {
    stdin,
    stdout: streams.get('stdout'),
    stderr: streams.get('stderr'),
    onResize: (l) => sizes.listen(l),
    signal: abort.signal,
  };
  const errorStream = streams.get('error') as SpdyStream;
  const outcome = await runCommand(protocol, io, run);
  if (outcome) errorStream.write(outcome);
  errorStream.end();
  stdin?.end();
  streams.get('resize')?.end();
  session.close();
}

/**
 * Runs the command with the client's streams and returns what the client
 * reads on its error stream or channel: a status (v4, v5) or the error's
 * text, nothing for a success on older protocols. Output is flushed first.
 */
export async function runCommand(protocol: RemoteCommandProtocol, io: ClientIO, run: (io: ClientIO) => Promise<CommandResult>): Promise<Buffer | undefined> {
  let result: CommandResult;
  try {
    result = await run(io);
  } catch (err) {
    result = { error: err instanceof Error ? err.message : String(err) };
  }
  const finish = (w: Writable | undefined) => (w && !w.writableFinished ? new Promise<void>((r) => w.end(r)) : Promise.resolve());
  await Promise.all([finish(io.stdout), finish(io.stderr)]);
  if (STATUS_PROTOCOLS.includes(protocol)) return Buffer.from(statusJson(result));
  if ('error' in result) return Buffer.from(result.error);
  if (result.exitCode !== 0) return Buffer.from(`command terminated with non-zero exit code ${result.exitCode}`);
  return undefined;
}
