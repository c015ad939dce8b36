import protobuf from 'protobufjs';
import { criRoot } from '../../cri/proto-root.js';
import type { Random } from './random.js';

/** Strings that have broken runtimes: injections, escapes, odd sizes and encodings. */
export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  'a',
  '.',
  '..',
  '../../../../tmp/cradle-fuzz-escape',
  '../../tmp/cradle-fuzz-escape',
  '/',
  '/etc/shadow',
  '/proc/self/environ',
  '/sys/fs/cgroup',
  '/sys/fs/cgroup/memory',
  '/dev/zero',
  '/tmp/cradle-fuzz-escape',
  'relative/path',
  'x;IP=10.87.250.250',
  'K8S_POD_NAME=evil',
  'line\nnameserver 6.6.6.6',
  'host\n1.2.3.4 evil',
  'tab\there',
  'nul\0byte',
  'crlf\r\n',
  '$bigint',
  '{"$bigint":"1"}',
  'cgroup.procs',
  'memory.max',
  'not-an-ip',
  '999.1.1.1',
  '::1',
  '127.0.0.1',
  '-1',
  '0-99999',
  '0,1,,2',
  'ALL',
  'CAP_SYS_ADMIN',
  'SIGKILL',
  'localhost/../../etc/passwd',
  'runtime/default',
  'unconfined',
  `sha256:${'f'.repeat(64)}`,
  'docker.io/library/busybox:latest',
  'UPPER_case',
  'ünïcödé-✓',
  '\u202e\u0000',
  'a'.repeat(64),
  'a'.repeat(65),
  'a'.repeat(300),
  'a'.repeat(5000),
];

const INT_EDGES: readonly bigint[] = [
  0n,
  1n,
  -1n,
  2n,
  999n,
  1000n,
  5000n,
  65535n,
  65536n,
  2n ** 31n - 1n,
  2n ** 31n,
  2n ** 32n - 1n,
  2n ** 32n,
  2n ** 53n + 1n,
  2n ** 63n - 1n,
  -(2n ** 63n),
];
const UINT_EDGES: readonly bigint[] = INT_EDGES.filter((v) => v >= 0n);

type Plain = Record<string, unknown>;

/**
 * Random and mutated CRI messages, driven by the proto itself so every
 * field of every request is reached: hostile strings, edge numbers,
 * undefined enum values, huge maps and lists, nested messages left out or
 * filled.
 */
export class MessageFuzzer {
  private readonly root = criRoot();

  constructor(private readonly random: Random) {}

  type(name: string): protobuf.Type {
    return this.root.lookupType(name.includes('.') ? name : `runtime.v1.${name}`);
  }

  hostileString(): string {
    const r = this.random;
    if (r.chance(0.1)) return Array.from({ length: r.int(1, 40) }, () => String.fromCharCode(r.int(0, 0x2fff))).join('');
    return r.pick(HOSTILE_STRINGS);
  }

  private scalar(field: protobuf.Field): unknown {
    const r = this.random;
    switch (field.type) {
      case 'string':
        return this.hostileString();
      case 'bytes':
        return Buffer.from(this.hostileString());
      case 'bool':
        return r.chance(0.5);
      case 'int64':
      case 'sint64':
      case 'sfixed64':
        return r.pick(INT_EDGES);
      case 'uint64':
      case 'fixed64':
        return r.pick(UINT_EDGES);
      case 'int32':
      case 'sint32':
      case 'sfixed32':
        return r.pick([0, 1, -1, 80, 65535, 65536, 2 ** 31 - 1, -(2 ** 31)]);
      case 'uint32':
      case 'fixed32':
        return r.pick([0, 1, 80, 65535, 65536, 2 ** 32 - 1]);
      case 'double':
      case 'float':
        return r.pick([0, -1, 1.5, 1e308, Number.NaN]);
      default:
        return undefined;
    }
  }

  private value(field: protobuf.Field, depth: number): unknown {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Enum) {
      const values = Object.values(resolved.values);
      return this.random.chance(0.8) ? this.random.pick(values) : this.random.pick([-1, 99, 2 ** 31 - 1]);
    }
    if (resolved instanceof protobuf.Type) return depth > 3 ? {} : this.message(resolved.fullName.slice(1), depth + 1);
    return this.scalar(field);
  }

  /** A message with each field set at random (or left out). */
  message(typeName: string, depth = 0): Plain {
    const out: Plain = {};
    for (const field of this.type(typeName).fieldsArray) {
      field.resolve();
      if (this.random.chance(0.4)) continue;
      if (field.map) {
        const n = depth <= 1 && this.random.chance(0.05) ? 3000 : this.random.int(0, 4);
        const map: Plain = {};
        for (let i = 0; i < n; i++)
          map[this.random.chance(0.5) ? this.hostileString() : `k${i}`] = field.type === 'string' ? this.hostileString() : this.value(field, depth);
        out[field.name] = map;
      } else if (field.repeated) {
        const n = depth <= 1 && this.random.chance(0.05) ? 2000 : this.random.int(0, 3);
        out[field.name] = Array.from({ length: n }, () => this.value(field, depth));
      } else {
        out[field.name] = this.value(field, depth);
      }
    }
    return out;
  }

  /** `valid` with one to three of its leaves (at any depth) replaced by hostile values. */
  mutate(typeName: string, valid: Plain): Plain {
    const copy = structuredClone(valid) as Plain;
    const n = this.random.int(1, 3);
    for (let i = 0; i < n; i++) this.mutateOne(this.type(typeName), copy, 0);
    return copy;
  }

  private mutateOne(type: protobuf.Type, obj: Plain, depth: number): void {
    const fields = type.fieldsArray;
    const field = this.random.pick(fields);
    field.resolve();
    const current = obj[field.name];
    if (
      field.resolvedType instanceof protobuf.Type &&
      !field.repeated &&
      !field.map &&
      current &&
      typeof current === 'object' &&
      depth < 5 &&
      this.random.chance(0.7)
    ) {
      this.mutateOne(field.resolvedType, current as Plain, depth + 1);
      return;
    }
    if (field.map) {
      const map = { ...((current as Plain | undefined) ?? {}) };
      map[this.hostileString()] = field.type === 'string' ? this.hostileString() : this.value(field, depth);
      obj[field.name] = map;
    } else if (field.repeated) {
      const list = [...((current as unknown[] | undefined) ?? [])];
      list.push(this.value(field, depth));
      obj[field.name] = list;
    } else {
      obj[field.name] = this.value(field, depth);
    }
  }
}
