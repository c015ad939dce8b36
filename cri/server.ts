import { chmodSync, unlinkSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/logger.js';
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
      timer = setTimeout(() => resolve(false), graceMs);
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
