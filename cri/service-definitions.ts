import type * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { codecFor, MalformedRequest } from './codec.js';
import { criRoot } from './proto-root.js';

export interface MethodInfo {
  name: string;
  path: string;
  serverStreaming: boolean;
}

/** grpc-js definition of a runtime.v1 service, with the bigint-aware codec. */
export function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  const service = criRoot().lookupService(fullName);
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methodsArray) {
    method.resolve();
    const req = codecFor<unknown>((method.resolvedRequestType as protobuf.Type).fullName.slice(1));
    const res = codecFor<unknown>((method.resolvedResponseType as protobuf.Type).fullName.slice(1));
    definition[method.name] = {
      path: `/${fullName}/${method.name}`,
      originalName: method.name,
      requestStream: method.requestStream === true,
      responseStream: method.responseStream === true,
      requestSerialize: (value: unknown) => req.encode(value),
      // grpc-js answers a throwing deserializer with INTERNAL; a caller's bad bytes are INVALID_ARGUMENT.
      requestDeserialize: (bytes: Buffer) => {
        try {
          return req.decode(bytes);
        } catch (err) {
          return new MalformedRequest(err instanceof Error ? err.message : String(err));
        }
      },
      responseSerialize: (value: unknown) => res.encode(value),
      responseDeserialize: (bytes: Buffer) => res.decode(bytes),
    };
  }
  return definition;
}

export function methodsOf(fullName: string): MethodInfo[] {
  return criRoot()
    .lookupService(fullName)
    .methodsArray.map((m) => ({ name: m.name, path: `/${fullName}/${m.name}`, serverStreaming: m.responseStream === true }));
}
