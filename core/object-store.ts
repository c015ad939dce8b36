import { join } from 'node:path';
import { IdIndex } from './id-index.js';
import { KeyedLock } from './keyed-lock.js';
import type { Logger } from './logger.js';
import { NameRegistrar } from './name-registrar.js';
import { RecordStore, type VersionedRecord } from './record-store.js';

/** Sees one change of an object: `before` undefined when it is new, `after` when it is gone. */
export type Watcher<T> = (before: T | undefined, after: T | undefined) => void;

/**
 * The objects of one kind (pods, containers): all in memory, so reads
 * never touch disk; one record per object, written before a change is
 * visible; names reserved in one registrar; ids found by unique prefix;
 * and one lock per object, so one object's requests never interleave.
 */
export class ObjectStore<T extends VersionedRecord> {
  private readonly objects = new Map<string, T>();
  private readonly index: IdIndex;
  private readonly records: RecordStore<T>;
  readonly names: NameRegistrar;
  readonly locks = new KeyedLock();
  private readonly watchers = new Set<Watcher<T>>();

  constructor(root: string, recordsDir: string, kind: string) {
    this.index = new IdIndex(kind);
    this.names = new NameRegistrar(kind);
    this.records = new RecordStore<T>(join(root, recordsDir), kind);
  }

  /** The object for a full id or unique prefix; NotFound otherwise. */
  get(idOrPrefix: string): T {
    return this.objects.get(this.index.resolve(idOrPrefix)) as T;
  }

  /** The full id of a known object, by id or unique prefix. */
  find(idOrPrefix: string): string | undefined {
    return this.index.find(idOrPrefix);
  }

  /** The object with exactly this id, if it is known. */
  peek(id: string): T | undefined {
    return this.objects.get(id);
  }

  has(id: string): boolean {
    return this.objects.has(id);
  }

  values(): T[] {
    return [...this.objects.values()];
  }

  ids(): Set<string> {
    return new Set(this.objects.keys());
  }

  get size(): number {
    return this.objects.size;
  }

  /** Writes the record, then shows the object (new objects join the index). */
  save(rec: T): T {
    this.records.write(rec);
    const before = this.objects.get(rec.id);
    this.show(rec);
    this.notify(before, rec);
    return rec;
  }

  /**
   * Calls `watcher` with the object before and after each save and delete,
   * synchronously, in the order they happen (recovery's `show` is not a
   * change). Watchers must not throw. Returns the way to stop.
   */
  watch(watcher: Watcher<T>): () => void {
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  private notify(before: T | undefined, after: T | undefined): void {
    for (const w of this.watchers) w(before, after);
  }

  /** Shows an object whose record is already on disk (recovery). */
  show(rec: T): void {
    if (!this.objects.has(rec.id)) this.index.add(rec.id);
    this.objects.set(rec.id, rec);
  }

  /** Writes a record nobody sees yet: the intent of a request under way. */
  writeRecord(rec: T): void {
    this.records.write(rec);
  }

  /** Deletes a record; the object, if shown, is forgotten with its name. */
  delete(id: string): void {
    this.records.remove(id);
    this.hide(id);
  }

  /**
   * Writes the record, then forgets the object as `delete` does, keeping
   * the record on disk until `purge`: for a removal answered at once and
   * finished in the background, which recovery finishes after a crash.
   */
  retire(rec: T): void {
    this.records.write(rec);
    this.hide(rec.id);
  }

  /** Deletes the record of a retired object. */
  purge(id: string): void {
    this.records.remove(id);
  }

  private hide(id: string): void {
    const before = this.objects.get(id);
    this.objects.delete(id);
    this.index.delete(id);
    this.names.releaseHolder(id);
    if (before) this.notify(before, undefined);
  }

  /** Every record on disk (unreadable ones logged and skipped). */
  loadAll(logger: Logger): T[] {
    return this.records.loadAll(logger);
  }
}
