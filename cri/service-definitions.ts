import type * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { codecFor } from './codec.js';
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
      requestDeserialize: (bytes: Buffer) => req.decode(bytes),
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
