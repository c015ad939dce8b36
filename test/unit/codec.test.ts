import { expect } from 'chai';
import { bigIntToLongBits, codecFor, longToBigInt } from '../../cri/codec.js';
import type { ContainerConfig, ContainerStatus, LinuxContainerResources, PodSandboxConfig } from '../../cri/generated/api.js';
import { ContainerState, Signal } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';

/**
 * Expected bytes were computed by a separate, minimal proto3 encoder (field
 * tags, varints, length-delimited fields by hand), not by protobufjs.
 */
const TWO_POW_53_PLUS_1 = 9007199254740993n;

const RESOURCES_HEX =
  '08a08d0610ffffffffffffffffff01188008208180808080808010289af8ffffffffffffff013203302d31420b0a03324d42' +
  '1080808080104a160a0b6d656d6f72792e68696768120731303030303030';
const POD_HEX =
  '0a160a056e67696e78120275311a0764656661756c74200112037765621a1e2f7661722f6c6f672f706f64732f6465666175' +
  '6c745f6e67696e785f753122300a0a31302e39362e302e3130121964656661756c742e7376632e636c75737465722e6c6f63' +
  '616c1a076e646f74733a352a05105018903f320a0a036170701203776562';
const CONTAINER_HEX =
  '0a070a03617070100212100a0e62757379626f783a6c61746573741a02736822022d6322076563686f2068692a012f32060a' +
  '01411201314a090a04746965721201785a096170702f322e6c6f6770017a0b0a09208180808080808010900117';

const resources: Init<LinuxContainerResources> = {
  cpu_period: 100000n,
  cpu_quota: -1n,
  cpu_shares: 1024n,
  memory_limit_in_bytes: TWO_POW_53_PLUS_1,
  oom_score_adj: -998n,
  cpuset_cpus: '0-1',
  hugepage_limits: [{ page_size: '2MB', limit: 4294967296n }],
  unified: { 'memory.high': '1000000' },
};

const pod: Init<PodSandboxConfig> = {
  metadata: { name: 'nginx', uid: 'u1', namespace: 'default', attempt: 1 },
  hostname: 'web',
  log_directory: '/var/log/pods/default_nginx_u1',
  dns_config: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local'], options: ['ndots:5'] },
  port_mappings: [{ container_port: 80, host_port: 8080 }],
  labels: { app: 'web' },
};

const container: Init<ContainerConfig> = {
  metadata: { name: 'app', attempt: 2 },
  image: { image: 'busybox:latest' },
  command: ['sh'],
  args: ['-c', 'echo hi'],
  working_dir: '/',
  envs: [{ key: 'A', value: Buffer.from('1') }],
  labels: { tier: 'x' },
  log_path: 'app/2.log',
  tty: true,
  linux: { resources: { memory_limit_in_bytes: TWO_POW_53_PLUS_1 } },
  stop_signal: Signal.SIGNAL_SIGTERM,
};

describe('CRI codec', () => {
  it('encodes LinuxContainerResources to the hand-computed bytes, 64-bit values exactly', () => {
    expect(codecFor('LinuxContainerResources').encode(resources).toString('hex')).to.equal(RESOURCES_HEX);
  });

  it('decodes LinuxContainerResources to bigints without loss', () => {
    const decoded = codecFor<LinuxContainerResources>('LinuxContainerResources').decode(Buffer.from(RESOURCES_HEX, 'hex'));
    expect(decoded.memory_limit_in_bytes).to.equal(TWO_POW_53_PLUS_1);
    expect(decoded.cpu_quota).to.equal(-1n);
    expect(decoded.oom_score_adj).to.equal(-998n);
    expect(decoded.memory_swap_limit_in_bytes).to.equal(0n);
    expect(decoded.hugepage_limits).to.deep.equal([{ page_size: '2MB', limit: 4294967296n }]);
    expect(decoded.unified).to.deep.equal({ 'memory.high': '1000000' });
  });

  it('encodes and decodes PodSandboxConfig', () => {
    const codec = codecFor<PodSandboxConfig>('PodSandboxConfig');
    expect(codec.encode(pod).toString('hex')).to.equal(POD_HEX);
    const decoded = codec.decode(Buffer.from(POD_HEX, 'hex'));
    expect(decoded.metadata).to.deep.equal({ name: 'nginx', uid: 'u1', namespace: 'default', attempt: 1 });
    expect(decoded.port_mappings).to.deep.equal([{ protocol: 0, container_port: 80, host_port: 8080, host_ip: '' }]);
    expect(decoded.labels).to.deep.equal({ app: 'web' });
    // Unset: maps are empty objects, messages undefined.
    expect(decoded.annotations).to.deep.equal({});
    expect(decoded.linux).to.equal(undefined);
  });

  it('encodes and decodes ContainerConfig', () => {
    const codec = codecFor<ContainerConfig>('ContainerConfig');
    expect(codec.encode(container).toString('hex')).to.equal(CONTAINER_HEX);
    const decoded = codec.decode(Buffer.from(CONTAINER_HEX, 'hex'));
    expect(decoded.args).to.deep.equal(['-c', 'echo hi']);
    expect(decoded.envs).to.have.length(1);
    expect(decoded.envs[0]?.key).to.equal('A');
    expect(Buffer.from(decoded.envs[0]?.value ?? []).toString()).to.equal('1');
    expect(decoded.linux?.resources?.memory_limit_in_bytes).to.equal(TWO_POW_53_PLUS_1);
    expect(decoded.linux?.resources?.cpu_shares).to.equal(0n);
    expect(decoded.linux?.security_context).to.equal(undefined);
    expect(decoded.stdin).to.equal(false);
    expect(decoded.tty).to.equal(true);
    expect(decoded.stop_signal).to.equal(Signal.SIGNAL_SIGTERM);
    expect(decoded.mounts).to.deep.equal([]);
  });

  it('round-trips nanosecond timestamps beyond 2^53 exactly', () => {
    const codec = codecFor<ContainerStatus>('ContainerStatus');
    const created = 1763928000123456789n;
    const decoded = codec.decode(
      codec.encode({ id: 'c1', state: ContainerState.CONTAINER_EXITED, created_at: created, finished_at: created + 1n, exit_code: -1 }),
    );
    expect(decoded.created_at).to.equal(created);
    expect(decoded.finished_at).to.equal(created + 1n);
    expect(decoded.started_at).to.equal(0n);
    expect(decoded.exit_code).to.equal(-1);
  });

  it('converts 64-bit bit patterns both ways, signed and unsigned', () => {
    for (const v of [0n, 1n, -1n, 2n ** 63n - 1n, -(2n ** 63n), TWO_POW_53_PLUS_1]) {
      expect(longToBigInt(bigIntToLongBits(v), false)).to.equal(v);
    }
    expect(longToBigInt(bigIntToLongBits(2n ** 64n - 1n), true)).to.equal(2n ** 64n - 1n);
  });
});
