import { expect } from 'chai';
import { breakdown } from '../../bin/bench/breakdown.js';
import { addTraceSink, annotate, describeSteps, type FinishedTrace, recentStepDurations, spanPaths, step, stepSync, traced } from '../../core/tracing.js';

describe('tracing (core)', () => {
  const collect = () => {
    const traces: FinishedTrace[] = [];
    const remove = addTraceSink((t) => traces.push(t));
    return { traces, remove };
  };

  it('nests steps under the call they run in, across awaits, and keeps calls apart', async () => {
    const { traces, remove } = collect();
    try {
      const call = (n: number) =>
        traced(`Unit${n}`, { n }, async () => {
          await step('outer', async () => {
            await new Promise((r) => setTimeout(r, 5));
            stepSync('inner sync', () => annotate({ depth: 2 }));
            await step('inner', () => undefined);
          });
          return n;
        });
      expect(await Promise.all([call(1), call(2)])).to.deep.equal([1, 2]);
      expect(traces.map((t) => spanPaths(t))).to.have.deep.members([
        ['Unit1', 'Unit1 / outer', 'Unit1 / outer / inner sync', 'Unit1 / outer / inner'],
        ['Unit2', 'Unit2 / outer', 'Unit2 / outer / inner sync', 'Unit2 / outer / inner'],
      ]);
      const t = traces[0] as FinishedTrace;
      expect(t.spans[2]?.attributes).to.deep.equal({ depth: 2 });
      for (const s of t.spans.slice(1)) {
        const parent = t.spans[s.parent];
        expect(s.start).to.be.at.least(parent?.start ?? Infinity);
        expect(s.end).to.be.at.most(parent?.end ?? -Infinity);
      }
      expect(describeSteps(t)[0]).to.match(/^outer \d+\.\dms$/);
    } finally {
      remove();
    }
  });

  it('records a failing step and call as errors, and leaves work that outlives the call out of its trace', async () => {
    const { traces, remove } = collect();
    let late: Promise<unknown> = Promise.resolve();
    try {
      const failing = traced('UnitFail', {}, async () => {
        late = new Promise((r) => setTimeout(r, 10)).then(() => step('after the call', () => 1));
        await step('breaks', () => {
          throw new Error('broken');
        });
      });
      await failing.then(
        () => expect.fail('the call should fail'),
        (err: unknown) => expect(String(err)).to.contain('broken'),
      );
      expect(await late).to.equal(1);
      const t = traces[0] as FinishedTrace;
      expect(t.spans.map((s) => [s.name, s.error])).to.deep.equal([
        ['UnitFail', 'broken'],
        ['breaks', 'broken'],
      ]);
    } finally {
      remove();
    }
  });

  it("keeps a bounded window of each step's recent durations, one sample per call", async () => {
    const before = recentStepDurations()['UnitWindow / twice']?.count ?? 0;
    for (let i = 0; i < 600; i++)
      await traced('UnitWindow', {}, async () => {
        await step('twice', () => undefined);
        await step('twice', () => undefined);
      });
    const w = recentStepDurations()['UnitWindow / twice'];
    expect(w?.count).to.equal(before + 600);
    expect(w?.recent.length).to.equal(512);
    // Outside any call a step is just the work.
    expect(await step('no call', () => 7)).to.equal(7);
    expect(recentStepDurations()['no call']).to.equal(undefined);
  });

  it('breaks a run down by the samples it added, children under their parent', () => {
    const w = (count: number, recent: number[]) => ({ count, recent });
    const before = { Run: w(2, [9, 9]), 'Run / a': w(2, [9, 9]) };
    const after = {
      Run: w(5, [9, 9, 1, 2, 3]),
      'Run / a': w(5, [9, 9, 1, 1, 1]),
      'Other / x': w(1, [5]),
      'Run / b': w(3, [4, 4, 4]),
      'Run / a / deep': w(3, [0.5, 0.5, 0.5]),
    };
    expect(breakdown(before, after, ['Run'])).to.deep.equal([
      { path: 'Run', p50: 2, calls: 3 },
      { path: 'Run / a', p50: 1, calls: 3 },
      { path: 'Run / a / deep', p50: 0.5, calls: 3 },
      { path: 'Run / b', p50: 4, calls: 3 },
    ]);
  });
});
