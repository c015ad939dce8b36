import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import protobuf from 'protobufjs';
import { packageRoot } from '../../core/package-info.js';
import { criRoot } from '../../cri/proto-root.js';
import { generateTypes, GENERATED_PATH } from '../../cri/gen/generate-types.js';

interface FieldFact {
  number: number;
  type: string;
  label: string;
  packed?: boolean;
}
interface RpcFact {
  request: string;
  response: string;
  client_streaming: boolean;
  server_streaming: boolean;
}
interface Facts {
  package: string;
  services: Record<string, Record<string, RpcFact>>;
  messages: Record<string, Record<string, FieldFact>>;
  enums: Record<string, Record<string, number>>;
}

/** The wire contract, kept beside the checkout (shared/ is a sibling of the repo). */
function loadFacts(): Facts {
  const candidates = [join(packageRoot, '..', 'shared', 'cri-api-facts.json'), join(packageRoot, 'test', 'fixtures', 'cri-api-facts.json')];
  for (const path of candidates) {
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as Facts;
    } catch {
      // try the next place
    }
  }
  throw new Error(`cri-api-facts.json not found in ${candidates.join(' or ')}`);
}

function collect(ns: protobuf.NamespaceBase, types: protobuf.Type[], enums: protobuf.Enum[], services: protobuf.Service[]): void {
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) {
      types.push(nested);
      collect(nested, types, enums, services);
    } else if (nested instanceof protobuf.Enum) enums.push(nested);
    else if (nested instanceof protobuf.Service) services.push(nested);
    else if (nested instanceof protobuf.Namespace) collect(nested, types, enums, services);
  }
}

function fieldFact(f: protobuf.Field): FieldFact {
  f.resolve();
  const type = f.resolvedType ? f.resolvedType.fullName.slice(1) : f.type;
  const label = f.map ? `map<${(f as unknown as protobuf.MapField).keyType},${f.type}>` : f.repeated ? 'repeated' : 'singular';
  const fact: FieldFact = { number: f.id, type, label };
  if (f.repeated && !f.map && (protobuf.types.packed as Record<string, number | undefined>)[f.type] !== undefined && f.packed) fact.packed = true;
  return fact;
}

describe('runtime.v1 proto contract', () => {
  const facts = loadFacts();
  const types: protobuf.Type[] = [];
  const enums: protobuf.Enum[] = [];
  const services: protobuf.Service[] = [];
  collect(criRoot(), types, enums, services);
  const name = (o: protobuf.ReflectionObject) => o.fullName.slice(1);

  it('declares exactly the upstream messages, each field with its number, type and label', () => {
    const ours: Record<string, Record<string, FieldFact>> = {};
    for (const t of types) ours[name(t)] = Object.fromEntries(t.fieldsArray.map((f) => [f.name, fieldFact(f)]));
    expect(Object.keys(ours).sort()).to.deep.equal(Object.keys(facts.messages).sort());
    for (const [message, fields] of Object.entries(facts.messages)) {
      expect(ours[message], message).to.deep.equal(fields);
    }
  });

  it('declares exactly the upstream enums and values', () => {
    const ours = Object.fromEntries(enums.map((e) => [name(e), { ...e.values }]));
    expect(ours).to.deep.equal(facts.enums);
  });

  it('declares exactly the upstream services and RPC signatures', () => {
    const ours: Record<string, Record<string, RpcFact>> = {};
    for (const s of services) {
      ours[name(s)] = Object.fromEntries(
        s.methodsArray.map((m) => {
          m.resolve();
          return [
            m.name,
            {
              request: name(m.resolvedRequestType as protobuf.Type),
              response: name(m.resolvedResponseType as protobuf.Type),
              client_streaming: m.requestStream === true,
              server_streaming: m.responseStream === true,
            },
          ];
        }),
      );
    }
    expect(ours).to.deep.equal(facts.services);
  });

  it('is package runtime.v1', () => {
    expect(facts.package).to.equal('runtime.v1');
    expect(services.map(name).sort()).to.deep.equal(['runtime.v1.ImageService', 'runtime.v1.RuntimeService']);
  });

  it('has committed TypeScript types generated from the current proto', () => {
    expect(readFileSync(GENERATED_PATH, 'utf8'), 'run "npm run gen:types" and commit cri/generated/api.ts').to.equal(generateTypes());
  });
});
