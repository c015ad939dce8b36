import { expect } from 'chai';
import { InvalidArgumentError } from '../../core/errors.js';
import { cgroupDir, checkCgroupParent, containerCgroupsPath, expandSlice, isSystemdCgroupsPath, podCgroupDir } from '../../cgroups/cgroup-paths.js';
import { podLimitFiles, podLimits, sharesToWeight } from '../../cgroups/pod-limits.js';

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

  it("finds the pod's own cgroup for each driver", () => {
    expect(podCgroupDir('cgroupfs', '/kubepods/burstable/pod1')).to.equal('/kubepods/burstable/pod1');
    expect(podCgroupDir('systemd', '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice')).to.equal(
      '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice',
    );
    expect(podCgroupDir('systemd', 'kubepods-pod1.slice')).to.equal('/kubepods.slice/kubepods-pod1.slice');
  });
});

describe('pod limits', () => {
  const none = {
    cpuPeriod: 0,
    cpuQuota: 0,
    cpuShares: 0,
    memoryLimit: 0,
    memorySwapLimit: 0,
    oomScoreAdj: 0,
    cpusetCpus: '',
    cpusetMems: '',
    hugepageLimits: [],
    unified: {},
  };

  it("adds the runtime class's overhead, scaling its quota to the pod's period", () => {
    const pod = { ...none, cpuPeriod: 100_000, cpuQuota: 150_000, cpuShares: 1536, memoryLimit: 256 * 2 ** 20 };
    const overhead = { ...none, cpuPeriod: 50_000, cpuQuota: 5_000, cpuShares: 102, memoryLimit: 16 * 2 ** 20 };
    expect(podLimits(pod, overhead)).to.deep.equal({ cpuPeriod: 100_000, cpuQuota: 160_000, cpuShares: 1638, memoryLimit: 272 * 2 ** 20 });
    // Unlimited stays unlimited whatever the overhead.
    expect(podLimits({ ...none, cpuShares: 2 }, overhead)).to.deep.equal({ cpuPeriod: 50_000, cpuQuota: 0, cpuShares: 104, memoryLimit: 0 });
  });

  it('writes the files of each cgroup version, touching only what is set', () => {
    const l = { cpuPeriod: 100_000, cpuQuota: 50_000, cpuShares: 1024, memoryLimit: 2 ** 28 };
    expect(podLimitFiles('/kubepods/pod1', l, true)).to.deep.equal([
      ['/kubepods/pod1/cpu.weight', '39'],
      ['/kubepods/pod1/cpu.max', '50000 100000'],
      ['/kubepods/pod1/memory.max', '268435456'],
    ]);
    expect(podLimitFiles('/kubepods/pod1', l, false)).to.deep.equal([
      ['cpu/kubepods/pod1/cpu.shares', '1024'],
      ['cpu/kubepods/pod1/cpu.cfs_period_us', '100000'],
      ['cpu/kubepods/pod1/cpu.cfs_quota_us', '50000'],
      ['memory/kubepods/pod1/memory.limit_in_bytes', '268435456'],
    ]);
    expect(podLimitFiles('/p', { cpuPeriod: 0, cpuQuota: 0, cpuShares: 0, memoryLimit: 0 }, true)).to.deep.equal([]);
    expect(podLimitFiles('/p', { cpuPeriod: 100_000, cpuQuota: -1, cpuShares: 0, memoryLimit: 0 }, true)).to.deep.equal([['/p/cpu.max', 'max 100000']]);
    expect([sharesToWeight(2), sharesToWeight(262_144)]).to.deep.equal([1, 10_000]);
  });
});
