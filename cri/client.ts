import * as grpc from '@grpc/grpc-js';
import { ImageServiceName, RuntimeServiceName, type ImageServiceMethods, type RuntimeServiceMethods } from './generated/api.js';
import { MAX_MESSAGE_BYTES } from './server.js';
import { serviceDefinition } from './service-definitions.js';
import type { Init, MethodShape } from './service-types.js';

export interface CallOptions {
  /** Milliseconds from now. */
  timeoutMs?: number;
}

type Unary<Methods> = {
  [K in keyof Methods]: Methods[K] extends MethodShape ? (Methods[K]['serverStreaming'] extends false ? K : never) : never;
}[keyof Methods];
type Streaming<Methods> = {
  [K in keyof Methods]: Methods[K] extends MethodShape ? (Methods[K]['serverStreaming'] extends true ? K : never) : never;
}[keyof Methods];
type Req<Methods, K extends keyof Methods> = Methods[K] extends MethodShape ? Methods[K]['request'] : never;
type Res<Methods, K extends keyof Methods> = Methods[K] extends MethodShape ? Methods[K]['response'] : never;

type GenericClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

class ServiceClient<Methods> {
  constructor(private readonly client: GenericClient) {}

  call<K extends Unary<Methods> & string>(method: K, request: Init<Req<Methods, K>>, options: CallOptions = {}): Promise<Res<Methods, K>> {
    const fn = this.client[method] as (
      req: unknown,
      meta: grpc.Metadata,
      opts: grpc.CallOptions,
      cb: (err: grpc.ServiceError | null, res: unknown) => void,
    ) => void;
    const callOptions: grpc.CallOptions = options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs };
    return new Promise((resolve, reject) => {
      fn.call(this.client, request, new grpc.Metadata(), callOptions, (err, res) => (err ? reject(err) : resolve(res as Res<Methods, K>)));
    });
  }

  /** A server stream left open: read it, pause it or cancel it. */
  open<K extends Streaming<Methods> & string>(method: K, request: Init<Req<Methods, K>>): grpc.ClientReadableStream<Res<Methods, K>> {
    const fn = this.client[method] as (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<Res<Methods, K>>;
    return fn.call(this.client, request, new grpc.Metadata(), {});
  }

  async collect<K extends Streaming<Methods> & string>(method: K, request: Init<Req<Methods, K>>, options: CallOptions = {}): Promise<Res<Methods, K>[]> {
    const fn = this.client[method] as (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<unknown>;
    const callOptions: grpc.CallOptions = options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs };
    const out: Res<Methods, K>[] = [];
    for await (const item of fn.call(this.client, request, new grpc.Metadata(), callOptions)) out.push(item as Res<Methods, K>);
    return out;
  }
}

/**
 * A typed CRI client on a unix socket: for tests, `cradle bench` and other
 * operator tools. Works against any CRI runtime (Cradle, containerd, CRI-O).
 */
export class CriClient {
  readonly runtime: ServiceClient<RuntimeServiceMethods>;
  readonly image: ServiceClient<ImageServiceMethods>;
  private readonly clients: grpc.Client[];

  constructor(socketPath: string) {
    const target = `unix://${socketPath.replace(/^unix:\/\//, '')}`;
    const options = { 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.max_send_message_length': MAX_MESSAGE_BYTES };
    const Runtime = grpc.makeGenericClientConstructor(serviceDefinition(RuntimeServiceName), 'RuntimeService');
    const Image = grpc.makeGenericClientConstructor(serviceDefinition(ImageServiceName), 'ImageService');
    const runtime = new Runtime(target, grpc.credentials.createInsecure(), options) as unknown as GenericClient;
    const image = new Image(target, grpc.credentials.createInsecure(), options) as unknown as GenericClient;
    this.clients = [runtime, image];
    this.runtime = new ServiceClient<RuntimeServiceMethods>(runtime);
    this.image = new ServiceClient<ImageServiceMethods>(image);
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
