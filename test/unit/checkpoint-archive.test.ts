import { expect } from 'chai';
import { InternalError, ResourceExhaustedError } from '../../core/errors.js';
import { tarFailure } from '../../runtime/checkpoint-archive.js';

describe('checkpoint archives: how a failed tar is reported', () => {
  it('a full filesystem is RESOURCE_EXHAUSTED, naming what tar said', () => {
    const full = tarFailure('-x', 'tar: ./checkpoint/pages-1.img: Wrote only 4096 of 10240 bytes\ntar: ./x: Cannot write: No space left on device\n', 'exit 2');
    expect(full).to.be.instanceOf(ResourceExhaustedError);
    expect(full.message).to.contain('No space left on device');
    expect(tarFailure('-c', 'tar: ./a: Cannot open: Disk quota exceeded', 'exit 2')).to.be.instanceOf(ResourceExhaustedError);
  });

  it('anything else is the daemon’s fault, with the process error when tar said nothing', () => {
    const other = tarFailure('-x', '', 'Command failed: tar -x');
    expect(other).to.be.instanceOf(InternalError);
    expect(other.message).to.equal('tar -x: Command failed: tar -x');
  });
});
