import { expect } from 'chai';
import { CappedOutput, startFailure } from '../../runtime/exec-sync.js';

describe('exec output', () => {
  it('keeps the first bytes up to the cap and counts the rest', () => {
    const out = new CappedOutput(10);
    out.add(Buffer.from('hello '));
    out.add(Buffer.from('world, and more'));
    out.add(Buffer.from('x'.repeat(1000)));
    expect(out.bytes().toString()).to.equal('hello worl');
    expect(out.dropped).to.equal(1011);
  });

  it('reports a command the runtime could not start as a result, 127 for a missing one', () => {
    const runc =
      'time="2026-12-02T06:23:10Z" level=error msg="exec failed: unable to start container process: exec: \\"nope\\": executable file not found in $PATH"\n';
    expect(startFailure(255, runc)).to.deep.equal({ exitCode: 127, reason: 'exec: "nope": executable file not found in $PATH' });
    const cwd = 'level=error msg="exec failed: unable to start container process: chdir to cwd (\\"/x\\") set in config.json failed: permission denied"';
    expect(startFailure(255, cwd)?.exitCode).to.equal(126);
    expect(startFailure(127, 'crun: executable file `nope` not found in $PATH: No such file or directory')?.exitCode).to.equal(127);
  });

  it('leaves a command that ran and failed alone, whatever it printed', () => {
    expect(startFailure(3, 'exec failed: unable to start container process: exec')).to.equal(undefined);
    expect(startFailure(255, 'my own error')).to.equal(undefined);
  });
});
