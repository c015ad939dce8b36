import { join } from 'node:path';
import { IdIndex } from './id-index.js';
import { KeyedLock } from './keyed-lock.js';
import type { Logger } from './logger.js';
import { NameRegistrar } from './name-registrar.js';
import { RecordStore, type VersionedRecord } from './record-store.js';

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
    this.show(rec);
    return rec;
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
    this.objects.delete(id);
    this.index.delete(id);
    this.names.releaseHolder(id);
  }

  /** Every record on disk (unreadable ones logged and skipped). */
  loadAll(logger: Logger): T[] {
    return this.records.loadAll(logger);
  }
}
