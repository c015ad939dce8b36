import { getHeapSpaceStatistics } from 'node:v8';
import { expect } from 'chai';
import { silentLogger } from '../../core/logger.js';
import { compactingGc, QuietReclaim } from '../../bin/quiet-reclaim.js';

const MiB = 1024 * 1024;

function oldSpace(): { committed: number; used: number } {
  const s = getHeapSpaceStatistics().find((x) => x.space_name === 'old_space');
  if (!s) throw new Error('no old_space in V8 heap statistics');
  return { committed: s.space_size, used: s.space_used_size };
}

describe('the compacting GC', () => {
  it('gives back old-space pages that survivors are scattered over, and never shows gc to the globals', () => {
    const gc = compactingGc();
    expect(gc).to.be.a('function');
    expect((globalThis as { gc?: unknown }).gc).to.equal(undefined);
    // Objects that live long enough to be promoted, then die but for one in eight: every page keeps a few.
    let rounds: { i: number; s: string }[][] = [];
    for (let r = 0; r < 24; r++) rounds.push(Array.from({ length: 20_000 }, (_, i) => ({ i, s: `survivor-or-not-${r}-${i}` })));
    gc?.();
    rounds = rounds.map((round) => round.filter((_, i) => i % 8 === 0));
    const before = oldSpace();
    gc?.();
    const after = oldSpace();
    // A plain full GC frees the dead objects but keeps every page, each holding survivors: only compaction returns them.
    expect(before.committed, 'pages to start from').to.be.greaterThan(40 * MiB);
    expect(after.committed).to.be.lessThan(before.committed / 2);
    expect(after.committed - after.used).to.be.lessThan(8 * MiB);
    expect(rounds.reduce((n, r) => n + r.length, 0)).to.equal(24 * 2500);
  });
});

describe('QuietReclaim', () => {
  /** A daemon whose RSS, loop and clock the test sets. */
  function harness() {
    const state = { rss: 100 * MiB, busy: 0, now: 1_000_000, collected: 0, trimmed: 0 };
    const reclaim = new QuietReclaim({
      logger: silentLogger,
      rss: () => state.rss,
      loopBusy: () => state.busy,
      now: () => state.now,
      collect: () => state.collected++,
      trim: () => state.trimmed++,
    });
    return { state, reclaim };
  }

  it('waits for growth over the low point and a quiet loop, then collects and trims once', () => {
    const { state, reclaim } = harness();
    expect(reclaim.check(), 'at its low point').to.equal(false);
    state.rss = 103 * MiB;
    expect(reclaim.check(), 'grown by less than 4 MiB').to.equal(false);
    state.rss = 110 * MiB;
    state.busy = 0.5;
    expect(reclaim.check(), 'in a burst').to.equal(false);
    state.busy = 0.02;
    expect(reclaim.check(), 'quiet after growing').to.equal(true);
    expect(state).to.include({ collected: 1, trimmed: 1 });
  });

  it('takes its next low point after the reclaim, and pauses at most once a minute', () => {
    const { state, reclaim } = harness();
    state.rss = 0;
    reclaim.check();
    state.rss = 80 * MiB;
    expect(reclaim.check()).to.equal(true);
    state.rss = 70 * MiB;
    state.now += 5_000;
    expect(reclaim.check(), 'the new low point').to.equal(false);
    state.rss = 80 * MiB;
    state.now += 30_000;
    expect(reclaim.check(), 'grown again, but within the minute').to.equal(false);
    state.now += 30_000;
    expect(reclaim.check(), 'grown again after the minute').to.equal(true);
    expect(state.collected).to.equal(2);
  });

  it("after start, reclaims start-up's garbage at the first quiet look", () => {
    const { state, reclaim } = harness();
    reclaim.start();
    try {
      expect(reclaim.check()).to.equal(true);
      expect(state.collected).to.equal(1);
    } finally {
      reclaim.stop();
    }
  });
});
