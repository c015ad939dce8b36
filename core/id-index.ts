import { InvalidArgumentError, NotFoundError } from './errors.js';

/** Resolves full ids and unique prefixes (crictl accepts short ids). */
export class IdIndex {
  private readonly ids = new Set<string>();

  constructor(private readonly kind: string) {}

  add(id: string): void {
    this.ids.add(id);
  }

  delete(id: string): void {
    this.ids.delete(id);
  }

  /** The full id for `idOrPrefix`, or undefined when none matches. */
  find(idOrPrefix: string): string | undefined {
    if (idOrPrefix === '') throw new InvalidArgumentError(`${this.kind} id is empty`);
    if (this.ids.has(idOrPrefix)) return idOrPrefix;
    let match: string | undefined;
    for (const id of this.ids) {
      if (!id.startsWith(idOrPrefix)) continue;
      if (match !== undefined) throw new InvalidArgumentError(`${this.kind} id prefix "${idOrPrefix}" is ambiguous`);
      match = id;
    }
    return match;
  }

  resolve(idOrPrefix: string): string {
    const id = this.find(idOrPrefix);
    if (id === undefined) throw new NotFoundError(`${this.kind} "${idOrPrefix}" not found`);
    return id;
  }
}
