import { status as Code } from '@grpc/grpc-js';
import { CradleError, errorMessage, type ErrorKind } from '../core/errors.js';

const KIND_TO_CODE: Record<ErrorKind, Code> = {
  NotFound: Code.NOT_FOUND,
  AlreadyExists: Code.ALREADY_EXISTS,
  InvalidArgument: Code.INVALID_ARGUMENT,
  FailedPrecondition: Code.FAILED_PRECONDITION,
  DeadlineExceeded: Code.DEADLINE_EXCEEDED,
  Unavailable: Code.UNAVAILABLE,
  Unauthenticated: Code.UNAUTHENTICATED,
  ResourceExhausted: Code.RESOURCE_EXHAUSTED,
  Internal: Code.INTERNAL,
};

export interface GrpcFailure {
  code: Code;
  details: string;
}

/** Domain errors keep their kind; anything else is a bug and INTERNAL. */
export function toGrpcFailure(err: unknown): GrpcFailure {
  if (err instanceof CradleError) return { code: KIND_TO_CODE[err.kind], details: err.message };
  return { code: Code.INTERNAL, details: errorMessage(err) };
}

export function codeName(code: Code): string {
  return Code[code] ?? String(code);
}

/** Codes that mean the daemon failed, not the caller: logged at error. */
export function isServerFault(code: Code): boolean {
  return code === Code.INTERNAL || code === Code.UNKNOWN || code === Code.DATA_LOSS;
}
