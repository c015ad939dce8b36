import { expect } from 'chai';
import { InvalidArgumentError } from '../../core/errors.js';
import { cgroupDir, checkCgroupParent, containerCgroupsPath, expandSlice, isSystemdCgroupsPath } from '../../cgroups/cgroup-paths.js';

describe('cgroup paths per driver', () => {
  it('expands a slice name into its parent slices as systemd nests them', () => {
    expect(expandSlice('kubepods-besteffort-pod12ab.slice')).to.equal('kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12ab.slice');
    expect(expandSlice('system.slice')).to.equal('system.slice');
    expect(expandSlice('-.slice')).to.equal('');
  });

  it('names the container cgroup as each driver expects it in the OCI spec', () => {
    expect(containerCgroupsPath('systemd', 'kubepods-pod1.slice', 'abc')).to.equal('kubepods-pod1.slice:cradle:abc');
    expect(containerCgroupsPath('systemd', '', 'abc')).to.equal('system.slice:cradle:abc');
    expect(containerCgroupsPath('cgroupfs', '/kubepods/pod1', 'abc')).to.equal('/kubepods/pod1/cradle-abc');
    expect(containerCgroupsPath('cgroupfs', '', 'abc')).to.equal('/cradle/cradle-abc');
  });

  it('takes the slice path kubelet sends with the systemd driver, using its last slice', () => {
    const parent = '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12_ab.slice';
    expect(checkCgroupParent('systemd', parent)).to.equal('kubepods-burstable-pod12_ab.slice');
    expect(containerCgroupsPath('systemd', parent, 'abc')).to.equal('kubepods-burstable-pod12_ab.slice:cradle:abc');
    expect(() => checkCgroupParent('systemd', '/kubepods.slice/besteffort/pod1')).to.throw(InvalidArgumentError, /not a systemd slice/);
  });

  it("refuses cgroupfs parents that are filesystem paths or name the kernel's own files", () => {
    for (const bad of ['/sys/fs/cgroup', '/sys/fs/cgroup/memory/x', '/a//b', '/a/./b', '/cgroup.procs', '/x/tasks', '/x/memory.max', '/a\nb']) {
      expect(() => checkCgroupParent('cgroupfs', bad), bad).to.throw(InvalidArgumentError);
    }
    expect(checkCgroupParent('cgroupfs', '/kubepods/burstable/pod12-ab')).to.equal('/kubepods/burstable/pod12-ab');
  });

  it('finds the directory of a systemd scope and leaves cgroupfs paths alone', () => {
    expect(cgroupDir('kubepods-besteffort-pod1.slice:cradle:abc')).to.equal(
      '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cradle-abc.scope',
    );
    expect(cgroupDir('system.slice:cradle:abc')).to.equal('/system.slice/cradle-abc.scope');
    expect(cgroupDir('/kubepods/pod1/cradle-abc')).to.equal('/kubepods/pod1/cradle-abc');
    expect(isSystemdCgroupsPath('/a:b:c')).to.equal(false);
    expect(isSystemdCgroupsPath('a.slice:cradle:x')).to.equal(true);
  });

  it('refuses a cgroup_parent written for the other driver, naming the likely cause', () => {
    expect(() => checkCgroupParent('systemd', '/kubepods/besteffort/pod1')).to.throw(InvalidArgumentError, /cgroup-driver "systemd"/);
    expect(() => checkCgroupParent('cgroupfs', 'kubepods-pod1.slice')).to.throw(InvalidArgumentError, /cgroup-driver "cgroupfs"/);
    for (const bad of ['kubepods--pod.slice', '-kubepods.slice', 'kubepods-.slice', 'a/b.slice', 'a:b.slice', '.slice']) {
      expect(() => checkCgroupParent('systemd', bad), bad).to.throw(InvalidArgumentError);
    }
    expect(() => checkCgroupParent('cgroupfs', '/kubepods/../etc')).to.throw(InvalidArgumentError);
    expect(() => checkCgroupParent('cgroupfs', 'relative/path')).to.throw(InvalidArgumentError);
    for (const good of ['', 'kubepods-besteffort-pod1.slice', 'system.slice', '-.slice']) checkCgroupParent('systemd', good);
    for (const good of ['', '/kubepods/besteffort/pod1', '/']) checkCgroupParent('cgroupfs', good);
  });
});
