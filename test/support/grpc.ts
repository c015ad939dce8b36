import { expect } from 'chai';

export interface GrpcError {
  code: number;
  details: string;
}

/** The gRPC error a call fails with; fails the test if the call succeeds. */
export async function grpcFailure(p: Promise<unknown>): Promise<GrpcError> {
  try {
    await p;
  } catch (err) {
    return err as GrpcError;
  }
  expect.fail('expected the call to fail');
}
