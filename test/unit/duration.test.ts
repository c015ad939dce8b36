import { expect } from 'chai';
import { parseDuration } from '../../core/duration.js';

describe('durations', () => {
  it('parses Go-style durations', () => {
    expect(parseDuration('0')).to.equal(0);
    expect(parseDuration('250ms')).to.equal(250);
    expect(parseDuration('90s')).to.equal(90_000);
    expect(parseDuration('1m30s')).to.equal(90_000);
    expect(parseDuration('4h')).to.equal(14_400_000);
    expect(parseDuration('1.5s')).to.equal(1500);
  });

  it('rejects what is not a duration', () => {
    for (const bad of ['', '10', 's', '10 s', '-1s', '1d', '1m junk']) expect(parseDuration(bad), bad).to.equal(undefined);
  });
});
