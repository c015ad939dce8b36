import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { InvalidArgumentError } from '../../core/errors.js';
import type { ImageConfigInfo } from '../../oci/image-config.js';
import { capabilitiesInMask, DEFAULT_CAPABILITIES, resolveCapabilities } from '../../oci/capabilities.js';
import type { ContainerSpec } from '../../oci/container-spec.js';
import { DEFAULT_MASKED_PATHS, ociSpec, processArgs, processEnv, type SpecContext } from '../../oci/oci-spec.js';
import { parseUlimit } from '../../core/ulimit.js';
import { runtimeDefaultProfile } from '../../oci/seccomp.js';
import { resolveUser } from '../../oci/user.js';

const image: ImageConfigInfo = {
  entrypoint: ['/entry'],
  cmd: ['default-arg'],
  env: ['PATH=/bin', 'A=image'],
  workingDir: '/work',
  user: '',
  stopSignal: '',
  exposedPorts: [],
  volumes: [],
  labels: {},
};

function spec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    name: 'c',
    attempt: 0,
    image: 'img',
    command: [],
    args: [],
    workingDir: '',
    envs: [],
    mounts: [],
    devices: [],
    labels: {},
    annotations: {},
    logPath: 'c/0.log',
    stdin: false,
    stdinOnce: false,
    tty: false,
    resources: {
      cpuPeriod: 0,
      cpuQuota: 0,
      cpuShares: 0,
      memoryLimit: 0,
      memorySwapLimit: 0,
      oomScoreAdj: -998,
      cpusetCpus: '',
      cpusetMems: '',
      hugepageLimits: [{ pageSize: '2MB', limit: 4194304 }],
      unified: { 'memory.high': '1000000' },
    },
    security: {
      privileged: false,
      capabilitiesAdd: [],
      capabilitiesDrop: [],
      supplementalGroupsPolicy: 'merge',
      runAsUser: undefined,
      runAsGroup: undefined,
      runAsUsername: '',
      supplementalGroups: [],
      readonlyRootfs: false,
      noNewPrivs: false,
      maskedPaths: [],
      readonlyPaths: [],
      pidMode: 'pod',
      targetId: '',
      seccomp: { kind: 'unconfined' },
      appArmor: { kind: 'unset' },
      selinux: undefined,
    },
    stopSignal: '',
    ...over,
  };
}

function specContext(over: Partial<SpecContext> = {}): SpecContext {
  return {
    id: 'x',
    spec: spec(),
    image,
    userns: undefined,
    rootfs: '/r',
    user: { uid: 0, gid: 0, additionalGids: [] },
    capabilities: ['CAP_CHOWN'],
    pins: { net: '/p/net', ipc: '/p/ipc', uts: '/p/uts', pid: '/p/pid' },
    podHostname: 'web',
    podFiles: { hostname: '/f/hostname', hosts: '/f/hosts', resolvConf: '/f/resolv.conf', shm: '/f/shm' },
    cgroupsPath: '/cradle/x',
    cgroupNamespace: false,
    oomScoreAdjFloor: 0,
    sysctls: {},
    devices: [],
    targetPidNamespace: undefined,
    criAnnotations: { 'io.kubernetes.cri.container-type': 'container' },
    rlimits: [parseUlimit('nofile=1024:4096')],
    appArmorProfile: undefined,
    selinux: {},
    ...over,
  };
}

describe('container process and OCI spec', () => {
  it('merges command and args with the image as kubelet does', () => {
    expect(processArgs(spec(), image)).to.deep.equal(['/entry', 'default-arg']);
    expect(processArgs(spec({ args: ['x'] }), image)).to.deep.equal(['/entry', 'x']);
    expect(processArgs(spec({ command: ['/bin/sh'], args: ['-c', 'true'] }), image)).to.deep.equal(['/bin/sh', '-c', 'true']);
    expect(processArgs(spec({ command: ['/bin/sh'] }), image)).to.deep.equal(['/bin/sh']);
    expect(() => processArgs(spec(), { ...image, entrypoint: [], cmd: [] })).to.throw(InvalidArgumentError, 'no command');
  });

  it('lets container envs replace image envs and defaults PATH', () => {
    expect(
      processEnv(
        spec({
          envs: [
            ['A', 'pod'],
            ['B', 'new'],
          ],
        }),
        image,
      ),
    ).to.deep.equal(['PATH=/bin', 'A=pod', 'B=new']);
    expect(processEnv(spec(), { ...image, env: [] })[0]).to.match(/^PATH=\/usr\/local\/sbin/);
  });

  it('joins the pod namespaces, masks the default paths, and clamps oom_score_adj', () => {
    const s = ociSpec(specContext()) as {
      process: { oomScoreAdj: number; cwd: string };
      hostname: string;
      linux: { namespaces: object[]; maskedPaths: string[] };
      mounts: Array<{ destination: string; source: string }>;
    };
    expect(s.linux.namespaces).to.deep.equal([
      { type: 'mount' },
      { type: 'network', path: '/p/net' },
      { type: 'ipc', path: '/p/ipc' },
      { type: 'uts', path: '/p/uts' },
      { type: 'pid', path: '/p/pid' },
    ]);
    const ownCgroups = ociSpec(specContext({ cgroupNamespace: true })) as { linux: { namespaces: object[] } };
    expect(ownCgroups.linux.namespaces.at(-1)).to.deep.equal({ type: 'cgroup' });
    expect(s.linux.maskedPaths).to.deep.equal(DEFAULT_MASKED_PATHS);
    expect(s.process.oomScoreAdj).to.equal(0);
    expect(s.process.cwd).to.equal('/work');
    expect(s.hostname).to.equal('web');
    expect(s.mounts.find((m) => m.destination === '/dev/shm')?.source).to.equal('/f/shm');
    expect(s.mounts.find((m) => m.destination === '/etc/resolv.conf')?.source).to.equal('/f/resolv.conf');
    expect((s as unknown as { annotations: Record<string, string> }).annotations['io.kubernetes.cri.container-type']).to.equal('container');
    const full = s as unknown as { process: { rlimits: object[] }; linux: { resources: { hugepageLimits: object[]; unified: object } } };
    expect(full.process.rlimits).to.deep.equal([{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 4096 }]);
    expect(full.linux.resources.hugepageLimits).to.deep.equal([{ pageSize: '2MB', limit: 4194304 }]);
    expect(full.linux.resources.unified).to.deep.equal({ 'memory.high': '1000000' });
  });

  it('parses ulimits and names a malformed one', () => {
    expect(parseUlimit('nproc=100')).to.deep.equal({ type: 'RLIMIT_NPROC', soft: 100, hard: 100 });
    expect(() => parseUlimit('nofile=10:5')).to.throw(InvalidArgumentError, 'soft limit is above');
    expect(() => parseUlimit('files=10')).to.throw(InvalidArgumentError, 'NAME=SOFT[:HARD]');
  });
});

describe('capabilities', () => {
  const all = capabilitiesInMask('000001fffeffffff');

  it('decodes the daemon bounding set (this host lacks CAP_SYS_RESOURCE)', () => {
    expect(all).not.to.include('CAP_SYS_RESOURCE');
    expect(all).to.include('CAP_SYS_ADMIN');
  });

  it('adds and drops by name, with ALL meaning what the daemon holds', () => {
    expect(resolveCapabilities([], [], false, all)).to.deep.equal(DEFAULT_CAPABILITIES.slice().sort((a, b) => all.indexOf(a) - all.indexOf(b)));
    expect(resolveCapabilities(['net_admin'], ['KILL'], false, all))
      .to.include('CAP_NET_ADMIN')
      .and.not.include('CAP_KILL');
    expect(resolveCapabilities(['ALL'], [], false, all)).to.deep.equal(all);
    expect(resolveCapabilities(['CAP_NET_RAW'], ['ALL'], false, all)).to.deep.equal(['CAP_NET_RAW']);
    expect(resolveCapabilities([], [], true, all)).to.deep.equal(all);
    expect(() => resolveCapabilities(['SYS_RESOURCE'], [], false, all)).to.throw(InvalidArgumentError, 'CAP_SYS_RESOURCE is not available');
    expect(() => resolveCapabilities(['FLY'], [], false, all)).to.throw(InvalidArgumentError, 'unknown capability');
  });

  it('passes AppArmor and SELinux labels through to the process and mounts', () => {
    const s = ociSpec(
      specContext({
        appArmorProfile: 'custom',
        selinux: { processLabel: 'system_u:system_r:container_t:s0:c1,c2', mountLabel: 'system_u:object_r:container_file_t:s0:c1,c2' },
      }),
    ) as {
      process: { apparmorProfile?: string; selinuxLabel?: string };
      linux: { mountLabel?: string };
    };
    expect(s.process.apparmorProfile).to.equal('custom');
    expect(s.process.selinuxLabel).to.equal('system_u:system_r:container_t:s0:c1,c2');
    expect(s.linux.mountLabel).to.equal('system_u:object_r:container_file_t:s0:c1,c2');
    const none = ociSpec(specContext()) as { process: object; linux: object };
    expect(none.process).to.not.have.any.keys('apparmorProfile', 'selinuxLabel');
    expect(none.linux).to.not.have.any.keys('mountLabel');
  });

  it('lets the seccomp default allow what a held capability covers', () => {
    const names = (caps: string[]) => (runtimeDefaultProfile(caps).syscalls as Array<{ names: string[] }>)[0]?.names ?? [];
    expect(names([])).to.include.members(['mount', 'unshare', 'ptrace', 'keyctl']);
    expect(names(['CAP_SYS_ADMIN'])).not.to.include('mount');
    expect(names(['CAP_SYS_ADMIN'])).to.include('keyctl');
  });
});

describe('container user', () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'cradle-user-'));
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
    writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\napp:x:1000:\naudio:x:29:app\nvideo:x:44:other\n');
  });
  after(() => rmSync(root, { recursive: true, force: true }));
  const req = (over: object) => ({
    runAsUser: undefined,
    runAsGroup: undefined,
    runAsUsername: '',
    imageUser: '',
    supplementalGroups: [],
    strict: false,
    ...over,
  });

  it('resolves uids, names and groups from the container files', () => {
    expect(resolveUser(root, req({}))).to.deep.equal({ uid: 0, gid: 0, additionalGids: [] });
    expect(resolveUser(root, req({ runAsUser: 1000n }))).to.deep.equal({ uid: 1000, gid: 1000, additionalGids: [29] });
    expect(resolveUser(root, req({ imageUser: 'app:video' }))).to.deep.equal({ uid: 1000, gid: 44, additionalGids: [29] });
    expect(resolveUser(root, req({ runAsUsername: 'app', runAsGroup: 5n, supplementalGroups: [7n] }))).to.deep.equal({
      uid: 1000,
      gid: 5,
      additionalGids: [7, 29],
    });
    expect(resolveUser(root, req({ imageUser: '4242' }))).to.deep.equal({ uid: 4242, gid: 0, additionalGids: [] });
    // Strict: only what kubelet gives, none of the image's /etc/group memberships.
    expect(resolveUser(root, req({ runAsUser: 1000n, supplementalGroups: [7n], strict: true }))).to.deep.equal({ uid: 1000, gid: 1000, additionalGids: [7] });
    expect(() => resolveUser(root, req({ runAsUsername: 'ghost' }))).to.throw(InvalidArgumentError, 'ghost');
  });

  it('does not follow an /etc/passwd symlink out of the container', () => {
    const other = mkdtempSync(join(tmpdir(), 'cradle-user-link-'));
    try {
      mkdirSync(join(other, 'etc'));
      symlinkSync('/etc/passwd', join(other, 'etc', 'passwd'));
      expect(() => resolveUser(other, req({ runAsUsername: 'root' }))).to.throw(InvalidArgumentError);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
