/**
 * Typed domain errors. Domain code throws these; the protocol edge (cri/)
 * maps each kind to a gRPC status code, so no domain module knows about gRPC.
 */
export type ErrorKind =
  | 'NotFound'
  | 'AlreadyExists'
  | 'InvalidArgument'
  | 'FailedPrecondition'
  | 'DeadlineExceeded'
  | 'Unavailable'
  | 'Unauthenticated'
  | 'ResourceExhausted'
  | 'Internal';

export class CradleError extends Error {
  readonly kind: ErrorKind;

  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = `${kind}Error`;
  }
}

export class NotFoundError extends CradleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NotFound', message, options);
  }
}

export class AlreadyExistsError extends CradleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('AlreadyExists', message, options);
  }
}

export class InvalidArgumentError extends CradleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('InvalidArgument', message, options);
  }
}

export class FailedPreconditionError extends CradleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FailedPrecondition', message, options);
  }
}

export class DeadlineExceededError extends CradleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DeadlineExceeded', message, options);
  }
}

export class UnavailableError extends CradleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('Unavailable', message, options);
  }
}

export class UnauthenticatedError extends CradleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('Unauthenticated', message, options);
  }
}

export class ResourceExhaustedError extends CradleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ResourceExhausted', message, options);
  }
}

export class InternalError extends CradleError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('Internal', message, options);
  }
}

/** The message of anything thrown, for logs and wrapped errors. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** errno code (ENOENT, EEXIST, ...) of a Node or addon error, if it has one. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}
