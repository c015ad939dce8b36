/**
 * A response already in wire form. List RPCs kubelet calls every second
 * (PLEG relists) assemble their answer from per-object bytes cached until
 * the object changes, instead of converting and encoding every object on
 * every call.
 */
export class EncodedMessage {
  constructor(readonly bytes: Buffer) {}
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A message whose only set field is `fieldNumber`: a repeated message field holding `items` (each already encoded). */
export function encodedRepeated(fieldNumber: number, items: readonly Buffer[]): EncodedMessage {
  const tag = varint((fieldNumber << 3) | 2);
  const parts: Buffer[] = [];
  for (const item of items) parts.push(tag, varint(item.length), item);
  return new EncodedMessage(Buffer.concat(parts));
}

/** Encodes `make(obj)` once per object; objects are replaced, never mutated, when they change. */
export class EncodingCache<T extends object> {
  private readonly cache = new WeakMap<T, Buffer>();

  constructor(private readonly encode: (obj: T) => Buffer) {}

  get(obj: T): Buffer {
    let bytes = this.cache.get(obj);
    if (bytes === undefined) {
      bytes = this.encode(obj);
      this.cache.set(obj, bytes);
    }
    return bytes;
  }
}
