import protobuf from 'protobufjs';
import { criRoot } from './proto-root.js';
import { EncodedMessage } from './encoded.js';

/**
 * Converts between protobufjs messages and the plain objects handlers see.
 * protobufjs represents 64-bit integers as Long; CRI timestamps are
 * nanoseconds (~1.7e18), beyond a JS number's exact range, so every 64-bit
 * field becomes a bigint on decode and is turned back into Long bits on
 * encode. Converters are built once per message type by reflection.
 */

type Plain = Record<string, unknown>;
type Convert = (value: unknown) => unknown;

const SIGNED_64 = new Set(['int64', 'sint64', 'sfixed64']);
const UNSIGNED_64 = new Set(['uint64', 'fixed64']);

interface LongLike {
  low: number;
  high: number;
}

export function longToBigInt(value: unknown, unsigned: boolean): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number') return BigInt(value);
  if (typeof value === 'string') return BigInt(value);
  const l = value as LongLike;
  const bits = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
  return unsigned ? bits : BigInt.asIntN(64, bits);
}

export function bigIntToLongBits(value: unknown): LongLike {
  const big = typeof value === 'bigint' ? value : BigInt(value as number | string);
  const bits = BigInt.asUintN(64, big);
  return { low: Number(bits & 0xffffffffn) | 0, high: Number(bits >> 32n) | 0 };
}

function is64(field: protobuf.Field): boolean {
  return SIGNED_64.has(field.type) || UNSIGNED_64.has(field.type);
}

/** Decoded message → plain object, every field present with its default. */
const toPlainCache = new Map<protobuf.Type, (msg: Plain) => Plain>();
/** Plain object → object protobufjs encodes (64-bit as Long bits); null when the type needs no change. */
const fromPlainCache = new Map<protobuf.Type, ((obj: Plain) => Plain) | null>();

function elementToPlain(field: protobuf.Field): Convert {
  if (field.resolvedType instanceof protobuf.Type) {
    const sub = toPlainFor(field.resolvedType);
    return (v) => (v == null ? undefined : sub(v as Plain));
  }
  if (is64(field)) {
    const unsigned = UNSIGNED_64.has(field.type);
    return (v) => longToBigInt(v, unsigned);
  }
  if (field.type === 'bytes') return (v) => (Buffer.isBuffer(v) ? v : Buffer.from(v as Uint8Array));
  return (v) => v;
}

function fieldToPlain(field: protobuf.Field): Convert {
  const element = elementToPlain(field);
  if (field.map) {
    return (v) => {
      const out: Plain = {};
      for (const [k, x] of Object.entries(v as Plain)) out[k] = element(x);
      return out;
    };
  }
  if (field.repeated) return (v) => Array.from(v as unknown[], element);
  return element;
}

function toPlainFor(type: protobuf.Type): (msg: Plain) => Plain {
  const cached = toPlainCache.get(type);
  if (cached) return cached;
  const fields: Array<[string, Convert]> = [];
  const convert = (msg: Plain): Plain => {
    const out: Plain = {};
    for (const [name, conv] of fields) out[name] = conv(msg[name]);
    return out;
  };
  toPlainCache.set(type, convert);
  for (const f of type.fieldsArray) fields.push([f.name, fieldToPlain(f.resolve())]);
  return convert;
}

function holds64(type: protobuf.Type, seen: Set<protobuf.Type> = new Set()): boolean {
  if (seen.has(type)) return false;
  seen.add(type);
  return type.fieldsArray.some((f) => {
    f.resolve();
    return is64(f) || (f.resolvedType instanceof protobuf.Type && holds64(f.resolvedType, seen));
  });
}

function elementFromPlain(field: protobuf.Field): Convert | null {
  if (field.resolvedType instanceof protobuf.Type) {
    const sub = fromPlainFor(field.resolvedType);
    return sub === null ? null : (v) => (v == null ? v : sub(v as Plain));
  }
  if (is64(field)) return bigIntToLongBits;
  return null;
}

function fromPlainFor(type: protobuf.Type): ((obj: Plain) => Plain) | null {
  if (fromPlainCache.has(type)) return fromPlainCache.get(type) ?? null;
  if (!holds64(type)) {
    fromPlainCache.set(type, null);
    return null;
  }
  const fields: Array<[string, Convert]> = [];
  const convert = (obj: Plain): Plain => {
    const out: Plain = { ...obj };
    for (const [name, conv] of fields) {
      const v = out[name];
      if (v != null) out[name] = conv(v);
    }
    return out;
  };
  fromPlainCache.set(type, convert);
  for (const f of type.fieldsArray) {
    const element = elementFromPlain(f.resolve());
    if (element === null) continue;
    if (f.map) {
      fields.push([f.name, (v) => Object.fromEntries(Object.entries(v as Plain).map(([k, x]) => [k, element(x)]))]);
    } else if (f.repeated) {
      fields.push([f.name, (v) => (v as unknown[]).map(element)]);
    } else {
      fields.push([f.name, element]);
    }
  }
  return convert;
}

/** A request that could not be decoded: the adapter answers INVALID_ARGUMENT naming why. */
export class MalformedRequest {
  constructor(readonly reason: string) {}
}

export interface MessageCodec<T> {
  readonly typeName: string;
  decode(bytes: Uint8Array): T;
  /** Accepts partial objects: unset fields encode as proto3 defaults. */
  encode(message: unknown): Buffer;
}

const codecs = new Map<string, MessageCodec<unknown>>();

/** The codec of a runtime.v1 message, e.g. `codecFor('ContainerConfig')`. */
export function codecFor<T>(name: string): MessageCodec<T> {
  const fullName = name.includes('.') ? name : `runtime.v1.${name}`;
  const existing = codecs.get(fullName);
  if (existing) return existing as MessageCodec<T>;
  const type = criRoot().lookupType(fullName);
  const toPlain = toPlainFor(type);
  const fromPlain = fromPlainFor(type);
  const codec: MessageCodec<T> = {
    typeName: fullName,
    // protobufjs refuses strings that are not UTF-8 (as proto3 requires) by throwing.
    decode: (bytes) => toPlain(type.decode(bytes) as unknown as Plain) as T,
    encode: (message) => {
      if (message instanceof EncodedMessage) return message.bytes;
      const prepared = fromPlain === null ? (message as Plain) : fromPlain(message as Plain);
      const out = type.encode(prepared).finish();
      return Buffer.isBuffer(out) ? out : Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    },
  };
  codecs.set(fullName, codec as MessageCodec<unknown>);
  return codec;
}
