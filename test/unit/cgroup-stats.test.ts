import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { CGROUP_V2, parsePressure, readCgroupsStats } from '../../cgroups/cgroup-stats.js';

const readCgroupStats = async (dir: string, root: string, v2: boolean) => (await readCgroupsStats([dir], root, v2))[0];
import type { ContainerRecord } from '../../runtime/container-record.js';
import { StatsSampler } from '../../runtime/stats-sampler.js';

/** Writes cgroup files under a fake hierarchy root. */
function files(root: string, entries: Record<string, string>): void {
  for (const [path, text] of Object.entries(entries)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

describe('cgroup stats from cgroup files', () => {
  let root: string;
  beforeEach(() => (root = mkdtempSync(join(tmpdir(), 'cradle-cgstats-'))));
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('reads v2: usage, working set, limit, swap and pressure', async () => {
    files(root, {
      'pod/c/cpu.stat': 'usage_usec 1500\nuser_usec 1000\n',
      'pod/c/memory.current': '10485760\n',
      'pod/c/memory.stat': 'anon 4096\ninactive_file 1048576\npgfault 7\npgmajfault 1\n',
      'pod/c/memory.max': '67108864\n',
      'pod/c/memory.swap.current': '8192\n',
      'pod/c/memory.swap.max': 'max\n',
      'pod/c/cpu.pressure': 'some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n',
      'pod/c/memory.events': 'low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\n',
    });
    const s = await readCgroupStats('/pod/c', root, true);
    expect(s).to.include({
      cpuUsageNs: 1_500_000n,
      memoryUsage: 10485760n,
      workingSet: 9437184n,
      rss: 4096n,
      pageFaults: 7n,
      majorPageFaults: 1n,
      memoryLimit: 67108864n,
      swapUsage: 8192n,
      swapLimit: undefined,
      oomKills: 2n,
    });
    expect(s?.psi.cpu?.some).to.deep.equal({ avg10: 1.5, avg60: 0.25, avg300: 0, total: 12345n });
    expect(s?.psi.memory).to.equal(undefined);
  });

  it('reads v1: memory+swap accounting gives swap, a page-rounded huge limit is none', async () => {
    files(root, {
      'cpuacct/pod/c/cpuacct.usage': '2000\n',
      'memory/pod/c/memory.usage_in_bytes': '5000\n',
      'memory/pod/c/memory.stat': 'total_rss 100\ntotal_inactive_file 1000\ntotal_pgfault 3\ntotal_pgmajfault 0\n',
      'memory/pod/c/memory.limit_in_bytes': '9223372036854771712\n',
      'memory/pod/c/memory.memsw.usage_in_bytes': '7000\n',
      'memory/pod/c/memory.memsw.limit_in_bytes': '9223372036854771712\n',
      'memory/pod/c/memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 1\n',
    });
    const s = await readCgroupStats('/pod/c', root, false);
    expect(s).to.include({
      cpuUsageNs: 2000n,
      memoryUsage: 5000n,
      workingSet: 4000n,
      rss: 100n,
      memoryLimit: undefined,
      swapUsage: 2000n,
      swapLimit: undefined,
      oomKills: 1n,
    });
    files(root, { 'memory/pod/c/memory.limit_in_bytes': '1048576\n', 'memory/pod/c/memory.memsw.limit_in_bytes': '3145728\n' });
    expect(await readCgroupStats('/pod/c', root, false)).to.include({ memoryLimit: 1048576n, swapLimit: 2097152n });
  });

  it('answers undefined for a cgroup that is gone, and ignores malformed pressure lines', async () => {
    expect(await readCgroupStats('/gone', root, true)).to.equal(undefined);
    expect(await readCgroupStats('/gone', root, false)).to.equal(undefined);
    expect(parsePressure('garbage\n')).to.equal(undefined);
    expect(parsePressure(undefined)).to.equal(undefined);
  });
});

describe('stats sampler', () => {
  it('shares one reading among overlapping calls, and reads anew after it', async () => {
    const sampler = new StatsSampler(async () => ({ bytes: 0, inodes: 0 }));
    // The root cgroup stands in for a container's: it exists on every host.
    const rec = { id: 'c1', cgroupsPath: '/', startedAt: 1n } as unknown as ContainerRecord;
    const [a, b] = await Promise.all([sampler.sampleCgroups([rec]), sampler.sampleCgroups([rec])]);
    expect(a[0], 'one reading').to.equal(b[0]);
    if (!CGROUP_V2) expect((a[0]?.cgroup?.cpuUsageNs ?? 0n) > 0n).to.equal(true);
    const [c] = await sampler.sampleCgroups([rec]);
    expect(c).to.not.equal(a[0]);
    expect((c?.timestamp ?? 0n) > (a[0]?.timestamp ?? 0n)).to.equal(true);
    const [stopped] = await sampler.sampleCgroups([{ ...rec, finishedAt: 2n } as ContainerRecord]);
    expect(stopped?.cgroup).to.equal(undefined);
    expect(stopped?.processes).to.equal(0n);
  });
});
