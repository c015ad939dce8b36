import { expect } from 'chai';
import { splitCriLog } from '../../runtime/exec-sync.js';

describe('exec output from a CRI log', () => {
  it('rebuilds stdout and stderr, joining partial lines and keeping line ends', () => {
    const log = [
      '2026-11-23T22:10:20.123443800+00:00 stdout P hello ',
      '2026-11-23T22:10:20.123443801+00:00 stdout F world',
      '2026-11-23T22:10:20.123496589+00:00 stderr F oops',
      '2026-11-23T22:10:20.123496590+00:00 stdout F with  double  spaces',
      '2026-11-23T22:10:20.123496591+00:00 stdout P no newline at the end',
      '',
    ].join('\n');
    const { stdout, stderr } = splitCriLog(log);
    expect(stdout.toString()).to.equal('hello world\nwith  double  spaces\nno newline at the end');
    expect(stderr.toString()).to.equal('oops\n');
  });
});
