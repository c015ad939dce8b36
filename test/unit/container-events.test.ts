import { expect } from 'chai';
import { Fanout } from '../../core/fanout.js';
import { ResourceExhaustedError } from '../../core/errors.js';
import { containerEventTypes, podEventTypes } from '../../cri/convert/container-events.js';
import { ContainerEventType as E } from '../../cri/generated/api.js';
import type { ContainerRecord } from '../../runtime/container-record.js';
import type { SandboxRecord } from '../../sandbox/sandbox-spec.js';

const container = (over: Partial<ContainerRecord> = {}) => ({ id: 'c', startedAt: undefined, finishedAt: undefined, ...over }) as ContainerRecord;
const pod = (over: Partial<SandboxRecord> = {}) => ({ id: 'p', state: 'ready', phase: undefined, ...over }) as SandboxRecord;

describe('container events', () => {
  it('turns container record changes into events, in order', () => {
    const created = container();
    const running = container({ startedAt: 2n });
    const exited = container({ startedAt: 2n, finishedAt: 3n });
    expect(containerEventTypes(undefined, created)).to.deep.equal([E.CONTAINER_CREATED_EVENT]);
    expect(containerEventTypes(created, running)).to.deep.equal([E.CONTAINER_STARTED_EVENT]);
    expect(containerEventTypes(running, exited)).to.deep.equal([E.CONTAINER_STOPPED_EVENT]);
    expect(containerEventTypes(exited, { ...exited, phase: 'removing' })).to.deep.equal([]);
    expect(containerEventTypes(exited, undefined)).to.deep.equal([E.CONTAINER_DELETED_EVENT]);
    // An exit seen before the start was recorded, and a create never started.
    expect(containerEventTypes(created, exited)).to.deep.equal([E.CONTAINER_STARTED_EVENT, E.CONTAINER_STOPPED_EVENT]);
    expect(containerEventTypes(created, container({ finishedAt: 3n }))).to.deep.equal([E.CONTAINER_STOPPED_EVENT]);
    expect(containerEventTypes(running, { ...running, pid: 7 })).to.deep.equal([]);
  });

  it('turns pod record changes into the events a sandbox gives', () => {
    expect(podEventTypes(undefined, pod())).to.deep.equal([E.CONTAINER_CREATED_EVENT, E.CONTAINER_STARTED_EVENT]);
    expect(podEventTypes(pod(), pod({ phase: 'stopping' }))).to.deep.equal([E.CONTAINER_STOPPED_EVENT]);
    expect(podEventTypes(pod({ phase: 'stopping' }), pod({ state: 'notready' }))).to.deep.equal([]);
    expect(podEventTypes(pod(), pod({ state: 'notready' }))).to.deep.equal([E.CONTAINER_STOPPED_EVENT]);
    expect(podEventTypes(pod({ state: 'notready' }), undefined)).to.deep.equal([E.CONTAINER_DELETED_EVENT]);
    expect(podEventTypes(undefined, undefined)).to.deep.equal([]);
  });

  it('hands every item to every subscriber in order, and builds none without subscribers', async () => {
    const fanout = new Fanout<number>(10, 'test');
    let built = 0;
    fanout.publish(() => ++built);
    expect(built).to.equal(0);
    const stop = new AbortController();
    const a = fanout.subscribe(stop.signal);
    const b = fanout.subscribe(stop.signal);
    expect(fanout.size).to.equal(2);
    for (let i = 0; i < 5; i++) fanout.publish(() => ++built);
    expect(built).to.equal(5);
    const take = async (it: AsyncGenerator<number>, n: number) => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push((await it.next()).value as number);
      return out;
    };
    expect(await take(a, 5)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(await take(b, 5)).to.deep.equal([1, 2, 3, 4, 5]);
    // A reader waiting for the next item gets it when it comes, and ends on abort.
    const waiting = a.next();
    fanout.publish(() => 6);
    expect((await waiting).value).to.equal(6);
    const ending = a.next();
    stop.abort();
    expect((await ending).done).to.equal(true);
    expect(fanout.size).to.equal(0);
  });

  it('cuts off a subscriber that falls behind, telling it at once, and goes on with the others', async () => {
    const fanout = new Fanout<number>(3, 'test');
    const signal = new AbortController().signal;
    const cuts: Error[] = [];
    const slow = fanout.subscribe(signal, (err) => cuts.push(err));
    const fast = fanout.subscribe(signal);
    for (let i = 1; i <= 4; i++) {
      fanout.publish(() => i);
      expect((await fast.next()).value).to.equal(i);
    }
    expect(cuts).to.have.length(1);
    expect(cuts[0]).to.be.instanceOf(ResourceExhaustedError);
    expect(cuts[0]?.message).to.contain('fell more than 3 behind');
    expect(fanout.size).to.equal(1);
    let thrown: unknown;
    try {
      await slow.next();
    } catch (err) {
      thrown = err;
    }
    expect(thrown).to.equal(cuts[0]);
  });
});
