import { expect } from 'chai';
import { FailedPreconditionError } from '../../core/errors.js';
import { checkPropagation, mountOf, parseMountinfo, rootfsPropagation } from '../../oci/mount-propagation.js';

const MOUNTINFO = [
  '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
  '30 22 0:5 / /srv rw shared:7 - tmpfs tmpfs rw',
  '31 30 0:6 / /srv/private rw - tmpfs tmpfs rw',
  '32 22 0:7 / /mnt/slave rw master:3 - tmpfs tmpfs rw',
  '33 22 0:8 / /mnt/with\\040space rw shared:9 - tmpfs tmpfs rw',
].join('\n');

describe('mount propagation', () => {
  it('reads propagation from mountinfo and finds the mount a path lies on', () => {
    const table = parseMountinfo(MOUNTINFO);
    expect(mountOf('/srv/data/x', table)).to.include({ path: '/srv', shared: true });
    expect(mountOf('/srv/private/x', table)).to.include({ path: '/srv/private', shared: false, slave: false });
    expect(mountOf('/srvx', table)?.path).to.equal('/');
    expect(mountOf('/mnt/slave', table)).to.include({ slave: true, shared: false });
    expect(mountOf('/mnt/with space/a', table)?.path).to.equal('/mnt/with space');
  });

  it('gives the container root the propagation its mounts need', () => {
    expect(rootfsPropagation([{ propagation: 'private' }])).to.equal(undefined);
    expect(rootfsPropagation([{ propagation: 'host-to-container' }, { propagation: 'private' }])).to.equal('rslave');
    expect(rootfsPropagation([{ propagation: 'host-to-container' }, { propagation: 'bidirectional' }])).to.equal('rshared');
  });

  it('refuses a source that cannot propagate what the mount asks for', () => {
    const mount = (hostPath: string, propagation: 'private' | 'host-to-container' | 'bidirectional') => ({
      containerPath: '/x',
      hostPath,
      readonly: false,
      recursiveReadOnly: false,
      propagation,
      selinuxRelabel: false,
    });
    // Real paths on this machine stand for the table's mount points.
    const info = (root: string) => `22 1 8:1 / / rw ${root} - ext4 /dev/sda1 rw`;
    expect(() => checkPropagation([mount('/tmp', 'bidirectional')], info(''))).to.throw(FailedPreconditionError, /not shared/);
    expect(() => checkPropagation([mount('/tmp', 'host-to-container')], info(''))).to.throw(FailedPreconditionError, /private/);
    checkPropagation([mount('/tmp', 'host-to-container')], info('master:4'));
    checkPropagation([mount('/tmp', 'bidirectional')], info('shared:1'));
    checkPropagation([mount('/tmp', 'private')], info(''));
  });
});
