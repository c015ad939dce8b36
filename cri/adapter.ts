import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../core/errors.js';
import { metrics } from '../core/metrics.js';
import type { Logger } from '../core/logger.js';
import { packageVersion } from '../core/package-info.js';
import { timerMs } from '../core/timers.js';
import { annotate, describeSteps, type SpanAttributes, traced } from '../core/tracing.js';
import { MalformedRequest } from './codec.js';
import { methodsOf } from './service-definitions.js';
import type { CallContext } from './service-types.js';
import { codeName, isServerFault, toGrpcFailure, type GrpcFailure } from './status-codes.js';

/**
 * Answers UNAVAILABLE until start-up has rebuilt the daemon's state, so
 * kubelet never acts on a partial list. Version is always answered: kubelet
 * and crictl use it to see that the runtime is there at all.
 */
export class ReadinessGate {
  private openNow = false;
  private why = 'cradle is starting: recovering state';

  get isOpen(): boolean {
    return this.openNow;
  }

  get reason(): string {
    return this.why;
  }

  open(): void {
    this.openNow = true;
  }

  close(reason: string): void {
    this.openNow = false;
    this.why = reason;
  }
}

const ALWAYS_ANSWERED = new Set(['Version']);

/** A handler as the adapter sees it, before its service's types are known. */
export type AnyHandler = (request: never, ctx: CallContext) => Promise<unknown> | AsyncIterable<unknown>;
type Callback = (error: grpc.ServiceError | Partial<grpc.StatusObject> | null, value?: unknown) => void;

interface CallOutcome {
  code: grpc.status;
  details?: string;
}

interface BaseCall {
  request: unknown;
  getDeadline(): grpc.Deadline;
  on(event: 'cancelled', listener: () => void): unknown;
}

/** The ids a request or response names, as span attributes: what a trace is looked up by. */
function messageIds(request: unknown): SpanAttributes {
  const ids: SpanAttributes = {};
  if (typeof request !== 'object' || request === null) return ids;
  for (const key of ['container_id', 'pod_sandbox_id'] as const) {
    const v = (request as Record<string, unknown>)[key];
    if (typeof v === 'string' && v !== '') ids[`cri.${key}`] = v;
  }
  return ids;
}

function deadlineMs(deadline: grpc.Deadline): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/**
 * Builds the grpc-js implementation of a service: every RPC of the proto is
 * registered; each one passes the readiness gate, is logged with its
 * duration and outcome, and maps domain errors to gRPC codes.
 */
export class RpcAdapter {
  constructor(
    private readonly logger: Logger,
    private readonly gate: ReadinessGate,
  ) {}

  implementation(serviceFullName: string, handlers: Readonly<Record<string, AnyHandler | undefined>>): grpc.UntypedServiceImplementation {
    const impl: grpc.UntypedServiceImplementation = {};
    for (const method of methodsOf(serviceFullName)) {
      const handler = handlers[method.name];
      impl[method.name] = method.serverStreaming ? this.streaming(method.name, handler) : this.unary(serviceFullName, method.name, handler);
    }
    return impl;
  }

  private refusal(rpc: string, handler: AnyHandler | undefined, request: unknown): GrpcFailure | undefined {
    if (!this.gate.isOpen && !ALWAYS_ANSWERED.has(rpc)) return { code: grpc.status.UNAVAILABLE, details: this.gate.reason };
    if (handler === undefined) return { code: grpc.status.UNIMPLEMENTED, details: `${rpc} is not implemented by cradle ${packageVersion}` };
    if (request instanceof MalformedRequest) return { code: grpc.status.INVALID_ARGUMENT, details: `${rpc}: the request cannot be decoded: ${request.reason}` };
    return undefined;
  }

  private context(rpc: string, call: BaseCall): { ctx: CallContext; done: () => void; ended: AbortSignal } {
    const abort = new AbortController();
    const ended = new AbortController();
    const deadline = deadlineMs(call.getDeadline());
    call.on('cancelled', () => abort.abort(new Error(`${rpc} cancelled by the client`)));
    let timer: NodeJS.Timeout | undefined;
    if (Number.isFinite(deadline)) {
      timer = setTimeout(() => abort.abort(new Error(`${rpc} deadline exceeded`)), timerMs(deadline - Date.now()));
      timer.unref();
    }
    return {
      ctx: { signal: abort.signal, deadline, logger: this.logger, end: (err) => ended.abort(err) },
      done: () => clearTimeout(timer),
      ended: ended.signal,
    };
  }

  /** A unary call is a trace (core/tracing.ts): its steps are logged with its line and exported when tracing is on. */
  private unary(service: string, rpc: string, handler: AnyHandler | undefined): grpc.handleUnaryCall<unknown, unknown> {
    return (call: grpc.ServerUnaryCall<unknown, unknown>, callback: Callback) => {
      const started = process.hrtime.bigint();
      const refused = this.refusal(rpc, handler, call.request);
      if (refused) {
        callback(refused);
        this.record(rpc, started, refused, true);
        return;
      }
      const { ctx, done } = this.context(rpc, call);
      const fn = handler as (req: unknown, ctx: CallContext) => Promise<unknown>;
      let steps: string[] = [];
      traced(
        rpc,
        { 'rpc.system': 'grpc', 'rpc.service': service, 'rpc.method': rpc, ...messageIds(call.request) },
        () =>
          Promise.resolve()
            .then(() => fn(call.request, ctx))
            .then(
              (response) => {
                annotate({ 'rpc.grpc.status_code': grpc.status.OK, ...messageIds(response) });
                return response;
              },
              (err: unknown) => {
                annotate({ 'rpc.grpc.status_code': toGrpcFailure(err).code });
                throw err;
              },
            ),
        (trace) => {
          if (this.logger.isDebugEnabled()) steps = describeSteps(trace);
        },
      )
        .then(
          (response) => {
            callback(null, response);
            this.record(rpc, started, { code: grpc.status.OK }, false, undefined, steps);
          },
          (err: unknown) => {
            const failure = toGrpcFailure(err);
            callback(failure);
            this.record(rpc, started, failure, false, err, steps);
          },
        )
        .finally(done);
    };
  }

  private streaming(rpc: string, handler: AnyHandler | undefined): grpc.handleServerStreamingCall<unknown, unknown> {
    return (call: grpc.ServerWritableStream<unknown, unknown>) => {
      const started = process.hrtime.bigint();
      const refused = this.refusal(rpc, handler, call.request);
      if (refused) {
        call.emit('error', refused);
        this.record(rpc, started, refused, true);
        return;
      }
      const { ctx, done, ended } = this.context(rpc, call);
      const fn = handler as (req: unknown, ctx: CallContext) => AsyncIterable<unknown>;
      const stop = AbortSignal.any([ctx.signal, ended]);
      void (async () => {
        try {
          for await (const item of fn(call.request, ctx)) {
            if (stop.aborted) break;
            if (!call.write(item)) await once(call, 'drain', { signal: stop });
          }
          if (ended.aborted) throw ended.reason;
          call.end();
          this.record(rpc, started, { code: grpc.status.OK });
        } catch (err) {
          const failure = ended.aborted
            ? toGrpcFailure(ended.reason)
            : ctx.signal.aborted
              ? { code: grpc.status.CANCELLED, details: errorMessage(ctx.signal.reason) }
              : toGrpcFailure(err);
          call.emit('error', failure);
          this.record(rpc, started, failure, false, err);
        } finally {
          done();
        }
      })();
    };
  }

  private record(rpc: string, started: bigint, outcome: CallOutcome, quiet = false, err?: unknown, steps: string[] = []): void {
    const ok = outcome.code === grpc.status.OK;
    metrics.rpc(rpc, codeName(outcome.code), Number(process.hrtime.bigint() - started) / 1e9);
    if (ok || quiet) {
      if (!this.logger.isDebugEnabled()) return;
    }
    const fields = {
      rpc,
      code: codeName(outcome.code),
      durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      ...(outcome.details ? { error: outcome.details } : {}),
      ...(steps.length > 0 ? { steps } : {}),
    };
    if (ok || quiet) this.logger.debug('rpc', fields);
    else if (isServerFault(outcome.code)) this.logger.error('rpc failed', { ...fields, stack: err instanceof Error ? err.stack : undefined });
    else this.logger.warn('rpc failed', fields);
  }
}
