import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import { IdIndex } from '../../core/id-index.js';
import { KeyedLock } from '../../core/keyed-lock.js';
import { silentLogger } from '../../core/logger.js';
import { NameRegistrar } from '../../core/name-registrar.js';
import { parseQuantity } from '../../core/quantity.js';
import { RecordStore } from '../../core/record-store.js';
import { UndoStack } from '../../core/undo.js';

import { Semaphore } from '../../core/semaphore.js';

describe('core primitives', () => {
  it('name registrar: refuses a held name naming its holder, frees it on release', () => {
    const names = new NameRegistrar('pod sandbox');
    names.reserve('a_b_c_0', 'id1');
    names.reserve('a_b_c_0', 'id1');
    expect(() => names.reserve('a_b_c_0', 'id2')).to.throw(AlreadyExistsError, 'name "a_b_c_0" is reserved for pod sandbox "id1"');
    names.release('a_b_c_0', 'id2');
    expect(names.holder('a_b_c_0')).to.equal('id1');
    names.release('a_b_c_0', 'id1');
    names.reserve('a_b_c_0', 'id2');
  });

  it('id index: full ids, unique prefixes, ambiguity and misses', () => {
    const index = new IdIndex('container');
    index.add('abc123');
    index.add('abd456');
    expect(index.resolve('abc')).to.equal('abc123');
    expect(index.resolve('abd456')).to.equal('abd456');
    expect(() => index.resolve('ab')).to.throw(InvalidArgumentError, 'ambiguous');
    expect(() => index.resolve('zz')).to.throw(NotFoundError, 'container "zz" not found');
    expect(index.find('zz')).to.equal(undefined);
    expect(() => index.find('')).to.throw(InvalidArgumentError);
  });

  it('keyed lock: serializes one key, lets others run alongside', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const slow = (tag: string, ms: number) => async () => {
      order.push(`${tag}+`);
      await new Promise((r) => setTimeout(r, ms));
      order.push(`${tag}-`);
    };
    await Promise.all([lock.run('a', slow('a1', 30)), lock.run('a', slow('a2', 1)), lock.run('b', slow('b1', 1))]);
    expect(order.indexOf('a1-')).to.be.below(order.indexOf('a2+'));
    expect(order.indexOf('b1-')).to.be.below(order.indexOf('a1-'));
  });

  it('undo stack: runs steps in reverse and carries on past a failing one', async () => {
    const undo = new UndoStack();
    const done: number[] = [];
    undo.push('one', () => void done.push(1));
    undo.push('two', () => {
      throw new Error('boom');
    });
    undo.push('three', async () => void done.push(3));
    await undo.rollback(silentLogger);
    expect(done).to.deep.equal([3, 1]);
    undo.push('four', () => void done.push(4));
    undo.commit();
    await undo.rollback(silentLogger);
    expect(done).to.deep.equal([3, 1]);
  });

  it('record store: writes atomically, keeps bigints exact, drops temp files of torn writes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cradle-records-'));
    try {
      const store = new RecordStore<{ schema: number; id: string; at: bigint; note: string }>(dir, 'test');
      store.write({ schema: 1, id: 'r1', at: 1763928000123456789n, note: '100n' });
      writeFileSync(join(dir, 'r2.json.tmp'), '{"half');
      writeFileSync(join(dir, 'r3.json'), '{"broken');
      const all = store.loadAll(silentLogger);
      expect(all).to.deep.equal([{ schema: 1, id: 'r1', at: 1763928000123456789n, note: '100n' }]);
      expect(readdirSync(dir).sort()).to.deep.equal(['r1.json', 'r3.json']);
      store.remove('r1');
      expect(store.loadAll(silentLogger)).to.deep.equal([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('parses Kubernetes quantities', () => {
    expect(parseQuantity('64Mi')).to.equal(64 * 1024 * 1024);
    expect(parseQuantity('10M')).to.equal(10_000_000);
    expect(parseQuantity('1.5Gi')).to.equal(1.5 * 1024 ** 3);
    expect(parseQuantity('100')).to.equal(100);
    expect(parseQuantity('10 MB')).to.equal(undefined);
    expect(parseQuantity('-1')).to.equal(undefined);
  });

  it('semaphore: at most its limit, waiters in order, an aborted waiter leaves the queue unserved', async () => {
    const sem = new Semaphore(2);
    const order: string[] = [];
    const a = await sem.acquire();
    const b = await sem.acquire();
    const gone = new AbortController();
    const served = (name: string) => (release: () => void) => {
      order.push(name);
      return release;
    };
    const c = sem.acquire().then(served('c'));
    const d = sem.acquire(gone.signal).then(
      () => order.push('d'),
      (err: unknown) => order.push(`d refused: ${String(err)}`),
    );
    const e = sem.acquire().then(served('e'));
    expect(sem.queued).to.equal(3);
    gone.abort(new Error('caller gone'));
    await d;
    expect(sem.queued).to.equal(2);
    a();
    a();
    const releaseC = await c;
    expect(order).to.deep.equal(['d refused: Error: caller gone', 'c']);
    b();
    (await e)();
    releaseC();
    expect(order).to.deep.equal(['d refused: Error: caller gone', 'c', 'e']);
    // All slots free again: two at once without waiting.
    (await sem.acquire())();
    expect(sem.queued).to.equal(0);
  });
});
