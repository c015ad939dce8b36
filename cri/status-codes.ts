import { status as Code } from '@grpc/grpc-js';
import { CradleError, errnoCode, errorMessage, type ErrorKind } from '../core/errors.js';

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

/** The node out of something (disk, inodes, quota, open files): neither the caller's mistake nor a bug. */
const EXHAUSTED: Record<string, string> = {
  ENOSPC: 'the node is out of disk space or inodes',
  EDQUOT: 'a disk quota on the node is used up',
  EMFILE: 'the daemon has too many open files',
  ENFILE: 'the node has too many open files',
};

/** Domain errors keep their kind; the node running out of a resource is RESOURCE_EXHAUSTED; anything else is a bug and INTERNAL. */
export function toGrpcFailure(err: unknown): GrpcFailure {
  if (err instanceof CradleError) return { code: KIND_TO_CODE[err.kind], details: err.message };
  const exhausted = EXHAUSTED[errnoCode(err) ?? ''];
  if (exhausted !== undefined) return { code: Code.RESOURCE_EXHAUSTED, details: `${exhausted}: ${errorMessage(err)}` };
  return { code: Code.INTERNAL, details: errorMessage(err) };
}

export function codeName(code: Code): string {
  return Code[code] ?? String(code);
}

/** Codes that mean the daemon failed, not the caller: logged at error. */
export function isServerFault(code: Code): boolean {
  return code === Code.INTERNAL || code === Code.UNKNOWN || code === Code.DATA_LOSS;
}
