import type { EventEmitter } from 'node:events';
import { chmodSync, unlinkSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/logger.js';
import { MAX_TIMER_MS, timerMs } from '../core/timers.js';
import { ImageServiceName, RuntimeServiceName, type ImageServiceMethods, type RuntimeServiceMethods } from './generated/api.js';
import { ReadinessGate, RpcAdapter, type AnyHandler } from './adapter.js';
import { serviceDefinition } from './service-definitions.js';
import type { ServiceHandlers } from './service-types.js';
import { claimSocketPath } from './socket-path.js';

/**
 * kubelet's client accepts 16 MiB; requests can be larger (a pod with many
 * containers' configs), so the server takes up to 80 MiB as CRI-O does.
 */
export const MAX_MESSAGE_BYTES = 80 * 1024 * 1024;

/** The longest `grpc-timeout` grpc-js's server can turn into a timer (see clampDeadlineHeaders). */
const MAX_DEADLINE = `${Math.floor(MAX_TIMER_MS / 1000)}S`;
const TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** A `grpc-timeout` header value kept as it is, or shortened to what a timer can hold. */
export function clampTimeoutHeader(value: string): string {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (!m) return value;
  return Number(m[1]) * (TIMEOUT_UNIT_MS[m[2] as string] as number) > MAX_TIMER_MS ? MAX_DEADLINE : value;
}

/**
 * grpc-js's server turns the `grpc-timeout` header into a timer with
 * 32-bit arithmetic: a deadline beyond ~24.8 days (`crictl --timeout 720h`)
 * wraps around and the call is answered DEADLINE_EXCEEDED at once while
 * its handler still runs, so the caller is told a create failed that went
 * ahead. grpc-js offers no hook before it reads the header, so a listener
 * placed before its own on each HTTP/2 server shortens such deadlines to
 * the longest it can hold; a test sends a month-long deadline to keep this
 * honest across grpc-js upgrades.
 */
function clampDeadlineHeaders(server: grpc.Server, logger: Logger): void {
  const internals = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(internals instanceof Map)) {
    logger.warn('cannot guard against month-long gRPC deadlines with this grpc-js version');
    return;
  }
  for (const http2Server of internals.keys()) {
    http2Server.prependListener('stream', (_stream: unknown, headers: Record<string, unknown>) => {
      const timeout = headers['grpc-timeout'];
      if (typeof timeout === 'string') headers['grpc-timeout'] = clampTimeoutHeader(timeout);
    });
  }
}

export interface CriHandlers {
  runtime: ServiceHandlers<RuntimeServiceMethods>;
  image: ServiceHandlers<ImageServiceMethods>;
}

export class CriServer {
  readonly gate = new ReadinessGate();
  private readonly server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  private listening = false;

  constructor(
    private readonly socketPath: string,
    private readonly logger: Logger,
    handlers: CriHandlers,
  ) {
    const adapter = new RpcAdapter(logger, this.gate);
    const runtime = handlers.runtime as Readonly<Record<string, AnyHandler | undefined>>;
    const image = handlers.image as Readonly<Record<string, AnyHandler | undefined>>;
    this.server.addService(serviceDefinition(RuntimeServiceName), adapter.implementation(RuntimeServiceName, runtime));
    this.server.addService(serviceDefinition(ImageServiceName), adapter.implementation(ImageServiceName, image));
  }

  async listen(): Promise<void> {
    await claimSocketPath(this.socketPath);
    await new Promise<void>((resolve, reject) => {
      this.server.bindAsync(`unix://${this.socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
    clampDeadlineHeaders(this.server, this.logger);
    // kubelet runs as root; group access lets an operator's group use crictl.
    chmodSync(this.socketPath, 0o660);
    this.listening = true;
    this.logger.info('serving CRI', { socket: this.socketPath });
  }

  /**
   * Stops accepting, lets in-flight RPCs finish for up to `graceMs`, then
   * cancels what is left, and removes the socket file.
   */
  async shutdown(graceMs: number): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const graceful = new Promise<boolean>((resolve) => this.server.tryShutdown(() => resolve(true)));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timerMs(graceMs));
    });
    const finished = await Promise.race([graceful, timeout]);
    clearTimeout(timer);
    if (!finished) {
      this.logger.warn('in-flight requests did not finish in time; cancelling them', { graceMs });
      this.server.forceShutdown();
    }
    try {
      unlinkSync(this.socketPath);
    } catch {
      // grpc-js may already have removed it.
    }
  }
}
