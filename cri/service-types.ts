import type { Logger } from '../core/logger.js';

/**
 * What a handler returns: the response message with every field optional,
 * so handlers set only what they know (proto3 encodes the rest as defaults).
 */
export type Init<T> = T extends bigint | string | number | boolean | Uint8Array
  ? T
  : T extends ReadonlyArray<infer E>
    ? Init<E>[]
    : T extends object
      ? { [K in keyof T]?: Init<T[K]> }
      : T;

export interface MethodShape {
  request: unknown;
  response: unknown;
  serverStreaming: boolean;
}

export interface CallContext {
  /** Aborted when the client cancels or the deadline passes. */
  signal: AbortSignal;
  /** Milliseconds since the epoch, or Infinity without a deadline. */
  deadline: number;
  logger: Logger;
  /**
   * Ends a streaming call with `err` now, even while it waits for a client
   * that does not read (a subscriber cut off for falling behind).
   */
  end(err: Error): void;
}

export type UnaryHandler<M extends MethodShape> = (request: M['request'], ctx: CallContext) => Promise<Init<M['response']>>;
export type StreamHandler<M extends MethodShape> = (request: M['request'], ctx: CallContext) => AsyncIterable<Init<M['response']>>;
export type HandlerFor<M extends MethodShape> = M['serverStreaming'] extends true ? StreamHandler<M> : UnaryHandler<M>;

/** The handlers of one service; a missing method answers UNIMPLEMENTED. */
export type ServiceHandlers<Methods> = {
  [K in keyof Methods]?: Methods[K] extends MethodShape ? HandlerFor<Methods[K]> : never;
};
