import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { expect } from 'chai';
import { codecFor } from '../../cri/codec.js';
import { ImageServiceName, RuntimeServiceName } from '../../cri/generated/api.js';
import { criRoot } from '../../cri/proto-root.js';
import { BUSYBOX_IMAGE, busyboxNode } from '../support/busybox-node.js';
import { MessageFuzzer } from '../support/fuzz.js';
import { containerCgroups, findLeaks } from '../support/leaks.js';
import { podConfig } from '../support/pods.js';
import { Random, runSeed } from '../support/random.js';
import { TestRegistry } from '../support/registry.js';
import type { TestNode } from '../support/test-node.js';

/**
 * A seeded fuzzer over every RPC of both services: valid requests with
 * one to three fields made hostile, random messages, invalid enums, huge
 * strings and maps, undecodable bytes, oversize messages, streams never
 * read. A caller's mistake must get a clear error with the right code
 * (never INTERNAL or UNKNOWN), the daemon must stay up and answer, nothing
 * may be written outside its directories or left behind, and registry
 * credentials must never reach its log or verbose output.
 * CRADLE_FUZZ_CASES sets the number of cases; CRADLE_SEED reproduces a run.
 */

const CASES = Number(process.env.CRADLE_FUZZ_CASES ?? 1200);
const FAKE_ID = 'f'.repeat(64);

type Plain = Record<string, unknown>;

/** A request shown in a failure: long strings, buffers and collections cut short. */
function summarize(value: unknown, depth = 0): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...(${value.length})` : value);
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (Array.isArray(value))
    return depth > 3
      ? '[...]'
      : `[${value
          .slice(0, 4)
          .map((v) => summarize(v, depth + 1))
          .join(', ')}${value.length > 4 ? `, ...(${value.length})` : ''}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    return depth > 3
      ? '{...}'
      : `{${entries
          .slice(0, 8)
          .map(([k, v]) => `${summarize(k)}: ${summarize(v, depth + 1)}`)
          .join(', ')}${entries.length > 8 ? `, ...(${entries.length})` : ''}}`;
  }
  return String(value);
}

interface Method {
  service: string;
  name: string;
  requestType: string;
  serverStreaming: boolean;
}

function methods(): Method[] {
  const out: Method[] = [];
  for (const service of [RuntimeServiceName, ImageServiceName]) {
    for (const m of criRoot().lookupService(service).methodsArray) {
      m.resolve();
      out.push({
        service,
        name: m.name,
        requestType: (m.resolvedRequestType as { fullName: string }).fullName.slice(1),
        serverStreaming: m.responseStream === true,
      });
    }
  }
  return out;
}

/** Codes a caller's mistake may get; UNAVAILABLE only where a registry can be unreachable, DEADLINE_EXCEEDED where the request sets a timeout. */
function acceptable(method: string, code: grpc.status): boolean {
  if (code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN || code === grpc.status.CANCELLED) return false;
  if (code === grpc.status.UNAVAILABLE) return method === 'PullImage';
  if (code === grpc.status.DEADLINE_EXCEEDED) return method === 'ExecSync';
  return true;
}

describe('adversarial input', function () {
  this.timeout(900_000);
  const seed = runSeed();
  const random = new Random(seed);
  const fuzz = new MessageFuzzer(random);
  const secret = `pw-${seed}-Zq9x`;
  const token = `tok-${seed}-Yw8v`;
  let node: TestNode;
  let registry: TestRegistry;
  let locked: TestRegistry;
  let raw: grpc.Client;
  let fixture: { pod: string; container: string };
  let cgroupBaseline: Set<string>;

  const rt = () => node.client().runtime;

  /** One call with raw bytes, so that anything at all can be sent; resolves with the status code. */
  const send = (m: Method, bytes: Buffer, timeoutMs = 120_000): Promise<{ code: grpc.status; details: string; response?: Buffer }> => {
    const path = `/${m.service}/${m.name}`;
    const deadline = Date.now() + timeoutMs;
    const identity = (b: Buffer) => b;
    return new Promise((resolve) => {
      if (m.serverStreaming) {
        const stream = raw.makeServerStreamRequest(path, identity, identity, bytes, new grpc.Metadata(), { deadline });
        stream.on('data', () => undefined);
        stream.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, details: err.details }));
        stream.on('end', () => resolve({ code: grpc.status.OK, details: '' }));
        if (m.name === 'GetContainerEvents') {
          // A subscription never ends: taken, unless refused by the time a later call is answered.
          void rt()
            .call('Version', {})
            .finally(() => {
              resolve({ code: grpc.status.OK, details: '' });
              stream.cancel();
            });
        }
      } else {
        raw.makeUnaryRequest(path, identity, identity, bytes, new grpc.Metadata(), { deadline }, (err, res) =>
          resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '', response: res }),
        );
      }
    });
  };

  /** Valid requests to start mutating from; destructive ones aim at ids that do not exist. */
  const templates = (): Record<string, Plain> => ({
    RunPodSandbox: { config: podConfig(`fuzz-${random.int(0, 1e9)}`, { log_directory: join(node.dir, 'logs') }) },
    StopPodSandbox: { pod_sandbox_id: FAKE_ID },
    RemovePodSandbox: { pod_sandbox_id: FAKE_ID },
    PodSandboxStatus: { pod_sandbox_id: fixture.pod, verbose: true },
    ListPodSandbox: { filter: { label_selector: { app: 'fixture' } } },
    CreateContainer: {
      pod_sandbox_id: fixture.pod,
      config: {
        metadata: { name: `c${random.int(0, 1e9)}` },
        image: { image: BUSYBOX_IMAGE },
        command: ['sleep', '60'],
        log_path: 'c.log',
        linux: {
          resources: { cpu_period: 100000n, cpu_quota: 50000n, memory_limit_in_bytes: 64n * 1024n * 1024n },
          security_context: { run_as_user: { value: 1000n } },
        },
      },
      sandbox_config: podConfig('fixture'),
    },
    StartContainer: { container_id: FAKE_ID },
    StopContainer: { container_id: FAKE_ID, timeout: 1n },
    RemoveContainer: { container_id: FAKE_ID },
    ContainerStatus: { container_id: fixture.container, verbose: true },
    UpdateContainerResources: { container_id: fixture.container, linux: { memory_limit_in_bytes: 128n * 1024n * 1024n, cpu_shares: 512n } },
    ReopenContainerLog: { container_id: fixture.container },
    ExecSync: { container_id: fixture.container, cmd: ['echo', 'hi'], timeout: 30n },
    Exec: { container_id: fixture.container, cmd: ['sh'], stdout: true },
    Attach: { container_id: fixture.container, stdout: true },
    PortForward: { pod_sandbox_id: fixture.pod, port: [80] },
    ContainerStats: { container_id: fixture.container },
    PodSandboxStats: { pod_sandbox_id: fixture.pod },
    UpdateRuntimeConfig: { runtime_config: { network_config: { pod_cidr: '10.89.0.0/24' } } },
    PullImage: {
      image: { image: random.pick([BUSYBOX_IMAGE, `127.0.0.1:5001/test/busybox:v1`, '127.0.0.1:5000/test/nothing:v1']) },
      auth: random.pick([
        { username: 'alice', password: secret },
        { auth: Buffer.from(`alice:${secret}`).toString('base64') },
        { identity_token: token },
        { registry_token: token },
      ]),
    },
    ImageStatus: { image: { image: BUSYBOX_IMAGE }, verbose: true },
    RemoveImage: { image: { image: '127.0.0.1:5000/test/nothing:v1' } },
  });

  before(async () => {
    process.stdout.write(`      fuzzer seed ${seed}, ${CASES} cases (CRADLE_SEED=${seed} reproduces it)\n`);
    cgroupBaseline = containerCgroups();
    ({ node, registry } = await busyboxNode({
      beforeStart: async (n) => {
        // A registry that wants a password, so that wrong credentials are really sent and refused.
        locked = new TestRegistry(n, { port: 5001, user: { name: 'alice', password: 'right' } });
        await locked.start();
      },
    }));
    const { readFileSync: read, writeFileSync } = await import('node:fs');
    writeFileSync(
      node.configPath,
      read(node.configPath, 'utf8').replace('insecure_registries = ["127.0.0.1:5000"]', 'insecure_registries = ["127.0.0.1:5000", "127.0.0.1:5001"]'),
    );
    await node.stopDaemon();
    await node.startDaemon();
    await makeFixture();
    raw = new grpc.Client(`unix://${node.socket}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 200 * 1024 * 1024 });
  });

  after(async () => {
    raw?.close();
    await locked?.stop();
    await registry?.stop();
    await node?.destroy();
  });

  /** A pod with a running container for requests to aim at. */
  const makeFixture = async () => {
    const pod = (await rt().call('RunPodSandbox', { config: podConfig('fixture') })).pod_sandbox_id;
    const container = (
      await rt().call('CreateContainer', {
        pod_sandbox_id: pod,
        config: { metadata: { name: 'fixture' }, image: { image: BUSYBOX_IMAGE }, command: ['sleep', '3600'], log_path: 'fixture.log' },
      })
    ).container_id;
    await rt().call('StartContainer', { container_id: container });
    fixture = { pod, container };
  };

  /** Removes what successful cases made, keeping the fixture (made again if a case stopped it: ids may be given as prefixes). */
  const sweep = async () => {
    const ready = (await rt().call('ListPodSandbox', { filter: { id: fixture.pod, state: { state: 0 } } })).items.length === 1;
    const running = (await rt().call('ListContainers', { filter: { id: fixture.container, state: { state: 1 } } })).containers.length === 1;
    if (!ready || !running) {
      await rt().call('RemovePodSandbox', { pod_sandbox_id: fixture.pod });
      await makeFixture();
    }
    for (const c of (await rt().call('ListContainers', {})).containers)
      if (c.id !== fixture.container) await rt().call('RemoveContainer', { container_id: c.id });
    for (const p of (await rt().call('ListPodSandbox', {})).items) if (p.id !== fixture.pod) await rt().call('RemovePodSandbox', { pod_sandbox_id: p.id });
    for (const i of (await node.client().image.call('ListImages', {})).images)
      if (!i.repo_tags.includes(BUSYBOX_IMAGE)) await node.client().image.call('RemoveImage', { image: { image: i.id } });
  };

  it('refuses each request a probe of runtimes found getting through, naming the field', async () => {
    const IA = grpc.status.INVALID_ARGUMENT;
    const pod = (extra: Plain) => ({ config: { ...podConfig('probe'), ...extra } });
    const ctr = (extra: Plain) => ({
      pod_sandbox_id: fixture.pod,
      config: { metadata: { name: 'probe' }, image: { image: BUSYBOX_IMAGE }, command: ['true'], log_path: 'probe.log', ...extra },
    });
    const res = (r: Plain) => ctr({ linux: { resources: r } });
    const sec = (c: Plain) => ctr({ linux: { security_context: c } });
    const corpus: Array<[string, Plain, grpc.status, string]> = [
      ['RunPodSandbox', pod({ metadata: { name: 'web;IP=10.87.250.250', namespace: 'default', uid: 'u1' } }), IA, 'metadata.name'],
      ['RunPodSandbox', pod({ metadata: { name: 'nul\0name', namespace: 'default', uid: 'u1' } }), IA, 'metadata.name'],
      ['RunPodSandbox', pod({ metadata: { name: 'web', namespace: 'Default', uid: 'u1' } }), IA, 'metadata.namespace'],
      ['RunPodSandbox', pod({ metadata: { name: 'web', namespace: 'default', uid: 'u/1' } }), IA, 'metadata.uid'],
      ['RunPodSandbox', pod({ hostname: 'evil\n1.2.3.4 kubernetes' }), IA, 'hostname'],
      ['RunPodSandbox', pod({ hostname: 'h'.repeat(300) }), IA, 'hostname'],
      ['RunPodSandbox', pod({ dns_config: { servers: ['1.1.1.1\nnameserver 6.6.6.6'] } }), IA, 'dns_config.servers'],
      ['RunPodSandbox', pod({ dns_config: { searches: ['a.com\nsearch evil.com'] } }), IA, 'dns_config.searches'],
      ['RunPodSandbox', pod({ dns_config: { options: ['ndots:5\nnameserver 6.6.6.6'] } }), IA, 'dns_config.options'],
      ['RunPodSandbox', pod({ log_directory: '../../tmp/cradle-fuzz-escape' }), IA, 'log_directory'],
      ['RunPodSandbox', pod({ log_directory: '/var/log/pods/../../../tmp/cradle-fuzz-escape' }), IA, 'log_directory'],
      ['RunPodSandbox', pod({ linux: { cgroup_parent: '/sys/fs/cgroup' } }), IA, 'cgroup_parent'],
      ['RunPodSandbox', pod({ port_mappings: [{ container_port: 80, host_port: 8080, host_ip: 'not-an-ip' }] }), IA, 'host_ip'],
      ['RunPodSandbox', pod({ port_mappings: [{ container_port: 70000, host_port: 8080 }] }), IA, 'container_port'],
      ['RunPodSandbox', pod({ linux: { sysctls: { 'net.ipv4.ip_forward': '1\n0' } } }), IA, 'sysctl'],
      ['RunPodSandbox', pod({ annotations: { big: 'x'.repeat(300 * 1024) } }), IA, 'annotations'],
      ['CreateContainer', ctr({ metadata: { name: 'nul\0name' } }), IA, 'metadata.name'],
      ['CreateContainer', ctr({ working_dir: 'relative/dir' }), IA, 'working_dir'],
      // Only the runtime can see it: a device node of the container's /dev.
      ['CreateContainer', ctr({ working_dir: '/dev/null' }), IA, 'working_dir'],
      ['CreateContainer', ctr({ command: ['sh', '-c', 'a\0b'] }), IA, 'command'],
      ['CreateContainer', ctr({ envs: [{ key: 'A=B', value: Buffer.from('c') }] }), IA, 'envs'],
      ['CreateContainer', ctr({ log_path: '../../cradle-fuzz-escape' }), IA, 'log_path'],
      ['CreateContainer', ctr({ log_path: 'a'.repeat(300) }), IA, 'log_path'],
      ['CreateContainer', ctr({ mounts: [{ container_path: '/data', host_path: `/${'h'.repeat(300)}` }] }), IA, 'host_path'],
      ['CreateContainer', ctr({ mounts: [{ container_path: '/data', host_path: 'relative' }] }), IA, 'host_path'],
      ['CreateContainer', ctr({ devices: [{ container_path: '/dev/x', host_path: '/dev/null', permissions: 'xyz' }] }), IA, 'permissions'],
      ['CreateContainer', ctr({ devices: [{ container_path: '/dev/x', host_path: '/etc/passwd', permissions: 'rwm' }] }), IA, '/etc/passwd'],
      ['CreateContainer', ctr({ mounts: [{ container_path: '/', host_path: '/tmp' }] }), IA, 'container_path'],
      ['CreateContainer', ctr({ mounts: [{ container_path: '/proc', host_path: '/tmp' }] }), IA, 'container_path'],
      ['CreateContainer', ctr({ mounts: [{ container_path: '/proc/sys/kernel', host_path: '/tmp' }] }), IA, 'container_path'],
      ['CreateContainer', ctr({ image: { image: 'UPPER::bad' } }), IA, 'image'],
      ['CreateContainer', sec({ run_as_user: { value: 2n ** 32n } }), IA, 'run_as_user'],
      ['CreateContainer', sec({ run_as_group: { value: 1000n } }), IA, 'run_as_group'],
      ['CreateContainer', sec({ capabilities: { add_capabilities: ['CAP_NOPE'] } }), IA, 'CAP_NOPE'],
      ['CreateContainer', sec({ seccomp: { profile_type: 2, localhost_ref: '/etc/shadow' } }), IA, 'seccomp'],
      ['CreateContainer', res({ cpuset_cpus: '0-99999' }), IA, 'cpuset_cpus'],
      ['CreateContainer', res({ memory_limit_in_bytes: 1n }), IA, 'memory_limit_in_bytes'],
      ['CreateContainer', res({ cpu_quota: 500n, cpu_period: 100000n }), IA, 'cpu_quota'],
      ['CreateContainer', res({ unified: { 'cgroup.procs': '1' } }), IA, 'unified'],
      ['CreateContainer', res({ oom_score_adj: 5000n }), IA, 'oom_score_adj'],
      ['UpdateContainerResources', { container_id: fixture.container, linux: { memory_limit_in_bytes: 1n } }, IA, 'memory_limit_in_bytes'],
      ['UpdateContainerResources', { container_id: fixture.container, linux: { unified: { 'cgroup.procs': '1' } } }, IA, 'unified'],
      ['ExecSync', { container_id: fixture.container, cmd: [] }, IA, 'cmd'],
      ['ExecSync', { container_id: fixture.container, cmd: [''] }, IA, 'cmd'],
      ['PortForward', { pod_sandbox_id: fixture.pod, port: [0] }, IA, 'port'],
      ['UpdateRuntimeConfig', { runtime_config: { network_config: { pod_cidr: '10.0.0.0/99' } } }, IA, 'pod_cidr'],
      ['ContainerStatus', { container_id: '../../etc/passwd' }, grpc.status.NOT_FOUND, 'not found'],
      ['RemoveContainer', { container_id: '../../etc/passwd' }, grpc.status.OK, ''],
      ['StopContainer', { container_id: `${fixture.container.slice(0, 3)}/x`, timeout: -5n }, grpc.status.OK, ''],
    ];
    const all = methods();
    const wrong: string[] = [];
    for (const [name, request, code, mentions] of corpus) {
      const m = all.find((x) => x.name === name) as Method;
      const r = await send(m, codecFor(m.requestType).encode(request));
      if (r.code !== code || !r.details.includes(mentions)) wrong.push(`${name} ${summarize(request)}: ${grpc.status[r.code]} ${r.details.slice(0, 200)}`);
      // Never a quote of a host file in an answer.
      if (r.details.includes('root:')) wrong.push(`${name}: the answer quotes a host file: ${r.details}`);
    }
    expect(wrong).to.deep.equal([]);
    const missing = await rt().call('ExecSync', { container_id: fixture.container, cmd: ['no-such-command'], timeout: 30n });
    expect(missing.exit_code).to.equal(127);
    // Invalid UTF-8 in an id: the request cannot be read, and says so.
    const bad = await send(all.find((x) => x.name === 'ContainerStatus') as Method, Buffer.from([0x0a, 0x03, 0xc3, 0x28, 0xff]));
    expect(bad.code).to.equal(IA);
    expect(bad.details.toLowerCase()).to.contain('utf-8');
  });

  it(`answers ${CASES} hostile requests with the caller's error, never INTERNAL, and stays up`, async () => {
    const all = methods();
    const failures: string[] = [];
    const counts = new Map<string, number>();
    for (let i = 0; i < CASES; i++) {
      // The requests with the most fields to get wrong get a larger share.
      const rich = random.pick(['RunPodSandbox', 'CreateContainer', 'UpdateContainerResources', 'ExecSync', 'PullImage']);
      const m = random.chance(0.4) ? (all.find((x) => x.name === rich) as Method) : random.pick(all);
      const t = templates()[m.name];
      const codec = codecFor<unknown>(m.requestType);
      const roll = random.next();
      let bytes: Buffer;
      let shown: () => string;
      if (roll < 0.08) {
        // Bytes that are no message at all, or a message cut short.
        const valid = codec.encode(t ?? {});
        bytes = random.chance(0.5)
          ? Buffer.from(Array.from({ length: random.int(1, 64) }, () => random.int(0, 255)))
          : valid.subarray(0, Math.max(1, valid.length - random.int(1, 8)));
        const hex = bytes.toString('hex').slice(0, 60);
        shown = () => `bytes ${hex}`;
      } else if (roll < 0.12) {
        // A string field holding bytes that are not UTF-8.
        bytes = Buffer.concat([Buffer.from([0x0a, 0x04]), Buffer.from([0xc3, 0x28, 0xff, 0xfe])]);
        shown = () => 'invalid UTF-8 in field 1';
      } else {
        const request = t && roll < 0.8 ? (roll < 0.25 ? t : fuzz.mutate(m.requestType, t)) : fuzz.message(m.requestType);
        try {
          bytes = codec.encode(request);
        } catch {
          continue; // not encodable: the client library would refuse it before sending
        }
        shown = () => summarize(request);
      }
      const r = await send(m, bytes);
      const key = `${m.name} ${grpc.status[r.code]}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (!acceptable(m.name, r.code))
        failures.push(`case ${i} (seed ${seed}): ${m.name} answered ${grpc.status[r.code]}: ${r.details.slice(0, 300)}\n    request: ${shown()}`);
      if (i % 50 === 49) {
        expect((await rt().call('Version', {}, { timeoutMs: 30_000 })).runtime_name, `the daemon answers after case ${i}`).to.equal('cradle');
        await sweep();
      }
    }
    await sweep();
    const summary = [...counts.entries()]
      .sort()
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ');
    process.stdout.write(`      outcomes: ${summary}\n`);
    expect(failures).to.deep.equal([]);
  });

  it('refuses messages beyond the size limit, and survives streams nobody reads', async () => {
    const big = codecFor('ListContainersRequest').encode({ filter: { label_selector: { k: 'x'.repeat(90 * 1024 * 1024) } } });
    const r = await send({ service: RuntimeServiceName, name: 'ListContainers', requestType: 'runtime.v1.ListContainersRequest', serverStreaming: false }, big);
    expect(r.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
    // Streams opened and dropped at once, or left unread, many times over.
    for (let i = 0; i < 50; i++) {
      const stream = raw.makeServerStreamRequest(
        '/runtime.v1.RuntimeService/StreamContainers',
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
        new grpc.Metadata(),
        {},
      );
      if (i % 2 === 0) stream.cancel();
      stream.on('error', () => undefined);
    }
    expect((await rt().call('Version', {})).runtime_name).to.equal('cradle');
  });

  it('wrote nothing outside its directories, leaked nothing, and kept every credential out of its log', async () => {
    for (const path of ['/tmp/cradle-fuzz-escape', join(node.dir, '..', 'tmp', 'cradle-fuzz-escape')]) expect(existsSync(path), path).to.equal(false);
    for (const h of readdirSync('/sys/fs/cgroup')) expect(existsSync(join('/sys/fs/cgroup', h, 'sys')), `cgroup dirs under ${h}`).to.equal(false);
    const resolv = readFileSync(join(node.dir, 'root', 'pods', fixture.pod, 'resolv.conf'), 'utf8');
    expect(resolv).to.not.contain('6.6.6.6');
    const verbose = JSON.stringify(
      [await node.client().image.call('ImageStatus', { image: { image: BUSYBOX_IMAGE }, verbose: true }), await rt().call('Status', { verbose: true })],
      (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
    );
    expect(verbose).to.not.contain(secret);
    const log = node.daemon.log();
    expect(log).to.not.contain(secret);
    expect(log).to.not.contain(token);
    expect(log).to.not.contain(Buffer.from(`alice:${secret}`).toString('base64'));
    expect(await findLeaks(node, cgroupBaseline)).to.deep.equal([]);
  });
});
