/**
 * Who holds which layers: images (`image:<id>`), containers' root
 * filesystems (`container:<id>`) and pulls in progress (`pull:<n>`). A
 * layer may be deleted only while nobody holds it. The holders' own
 * records are what persists: images and root filesystems register their
 * layers again when they are loaded.
 */
export class LayerReferences {
  private readonly byOwner = new Map<string, readonly string[]>();
  private readonly counts = new Map<string, number>();

  /** `owner` holds `layers` (replacing what it held before). */
  hold(owner: string, layers: readonly string[]): void {
    this.release(owner);
    this.byOwner.set(owner, [...layers]);
    for (const l of layers) this.counts.set(l, (this.counts.get(l) ?? 0) + 1);
  }

  release(owner: string): void {
    const layers = this.byOwner.get(owner);
    if (!layers) return;
    this.byOwner.delete(owner);
    for (const l of layers) {
      const n = (this.counts.get(l) ?? 1) - 1;
      if (n > 0) this.counts.set(l, n);
      else this.counts.delete(l);
    }
  }

  isHeld(layer: string): boolean {
    return this.counts.has(layer);
  }

  holds(owner: string): boolean {
    return this.byOwner.has(owner);
  }
}
