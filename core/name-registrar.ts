import { AlreadyExistsError } from './errors.js';

/**
 * Names kubelet derives from pod and container metadata map to one object
 * each. A second reservation of a held name fails naming the holder.
 */
export class NameRegistrar {
  private readonly holders = new Map<string, string>();
  private readonly namesOf = new Map<string, string>();

  constructor(private readonly kind: string) {}

  reserve(name: string, id: string): void {
    const holder = this.holders.get(name);
    if (holder !== undefined && holder !== id) {
      throw new AlreadyExistsError(`name "${name}" is reserved for ${this.kind} "${holder}"`);
    }
    this.holders.set(name, id);
    this.namesOf.set(id, name);
  }

  holder(name: string): string | undefined {
    return this.holders.get(name);
  }

  release(name: string, id: string): void {
    if (this.holders.get(name) !== id) return;
    this.holders.delete(name);
    if (this.namesOf.get(id) === name) this.namesOf.delete(id);
  }

  /** Releases whatever name `id` holds. */
  releaseHolder(id: string): void {
    const name = this.namesOf.get(id);
    if (name !== undefined) this.release(name, id);
  }
}
