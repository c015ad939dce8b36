import { chmodSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { DeadlineExceededError, NotFoundError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { parseNetworkConfig } from '../../network/cni-config.js';
import {
  addNetworkList,
  checkNetworkList,
  delNetworkList,
  gcNetworkList,
  resultIps,
  statusNetworkList,
  type CniAttachment,
} from '../../network/cni-network.js';
import { CniPluginError } from '../../network/cni-plugin.js';
import { PodNetworks, type PodNetworkRequest } from '../../network/pod-network.js';
import { CniCache } from '../../network/cni-cache.js';
import { NetworkReadiness } from '../../network/network-readiness.js';

interface Call {
  plugin: string;
  command: string;
  env: Record<string, string>;
  stdin: Record<string, unknown>;
}

/**
 * Plugins here are small shell scripts that record what they were given
 * (command, environment, stdin) and answer like real plugins: the chaining
 * logic is exercised through real processes without touching any network.
 */
describe('CNI plugin chains', () => {
  let dir: string;
  let log: string;
  const att: CniAttachment = {
    containerId: 'pod1',
    netns: '/run/netns/pod1',
    ifName: 'eth0',
    args: 'IgnoreUnknown=1;K8S_POD_NAME=web',
    capabilityArgs: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], bandwidth: { ingressRate: 1000 } },
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cradle-cni-'));
    log = join(dir, 'calls.jsonl');
    const script = join(dir, 'recorder');
    writeFileSync(
      script,
      `#!/bin/sh
name=$(basename "$0")
input=$(cat)
printf '{"plugin":"%s","command":"%s","env":{"CNI_CONTAINERID":"%s","CNI_NETNS":"%s","CNI_IFNAME":"%s","CNI_ARGS":"%s","CNI_PATH":"%s"},"stdin":%s}\\n' \\
  "$name" "$CNI_COMMAND" "\${CNI_CONTAINERID-<unset>}" "\${CNI_NETNS-<unset>}" "\${CNI_IFNAME-<unset>}" "\${CNI_ARGS-<unset>}" "$CNI_PATH" "$input" >> ${log}
if [ "$CNI_COMMAND" = "VERSION" ]; then
  echo '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}'
  exit 0
fi
case "$name" in
  failing) echo '{"cniVersion":"1.0.0","code":7,"msg":"no addresses left","details":"range full"}'; exit 1 ;;
  sleepy) sleep 5 ;;
esac
if [ "$CNI_COMMAND" = "ADD" ]; then
  echo '{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/24"},{"address":"fd00::5/64"}],"by":"'$name'"}'
fi
`,
    );
    chmodSync(script, 0o755);
    for (const name of ['first', 'second', 'failing', 'sleepy']) symlinkSync(script, join(dir, name));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const calls = (): Call[] =>
    readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Call);
  const network = (plugins: object[], extra: object = {}) =>
    parseNetworkConfig('/x/10.conflist', JSON.stringify({ cniVersion: '1.0.0', name: 'net', plugins, ...extra }));
  const opts = () => ({ binDirs: ['/nonexistent', dir], timeoutMs: 2000 });

  it('ADDs in order, chaining prevResult, with runtimeConfig only for declared capabilities', async () => {
    const net = network([
      { type: 'first', capabilities: { portMappings: true } },
      { type: 'second', capabilities: { bandwidth: true, dns: true } },
    ]);
    const result = await addNetworkList(net, att, opts());
    expect(result.by).to.equal('second');
    expect(resultIps(result)).to.deep.equal(['10.1.0.5', 'fd00::5']);
    const [a, b] = calls();
    expect(a?.plugin).to.equal('first');
    expect(a?.env).to.deep.equal({
      CNI_CONTAINERID: 'pod1',
      CNI_NETNS: '/run/netns/pod1',
      CNI_IFNAME: 'eth0',
      CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web',
      CNI_PATH: `/nonexistent:${dir}`,
    });
    expect(a?.stdin).to.deep.include({ name: 'net', cniVersion: '1.0.0', type: 'first' });
    expect(a?.stdin.runtimeConfig).to.deep.equal({ portMappings: att.capabilityArgs.portMappings });
    expect(a?.stdin).not.to.have.property('prevResult');
    expect(b?.stdin.runtimeConfig).to.deep.equal({ bandwidth: { ingressRate: 1000 } });
    expect((b?.stdin.prevResult as { by: string } | undefined)?.by).to.equal('first');
  });

  it('DELs in reverse with the cached result, and CHECKs unless disabled', async () => {
    const net = network([{ type: 'first' }, { type: 'second' }]);
    const cached = { cniVersion: '1.0.0', ips: [{ address: '10.1.0.9/24' }] };
    await delNetworkList(net, att, cached, opts());
    await checkNetworkList(net, att, cached, opts());
    await checkNetworkList(network([{ type: 'first' }], { disableCheck: true }), att, cached, opts());
    expect(calls().map((c) => `${c.command} ${c.plugin}`)).to.deep.equal(['DEL second', 'DEL first', 'CHECK first', 'CHECK second']);
    expect(calls().every((c) => JSON.stringify(c.stdin.prevResult) === JSON.stringify(cached))).to.equal(true);
  });

  it('sends no prevResult on DEL before CNI 0.4.0', async () => {
    const net = parseNetworkConfig('/x/old.conflist', JSON.stringify({ cniVersion: '0.3.1', name: 'old', plugins: [{ type: 'first' }] }));
    await delNetworkList(net, att, { ips: [] }, opts());
    expect(calls()[0]?.stdin).not.to.have.property('prevResult');
  });

  it('reports a plugin failure with the plugin, exit code and its error JSON', async () => {
    const err = await addNetworkList(network([{ type: 'first' }, { type: 'failing' }]), att, opts()).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(CniPluginError);
    expect((err as Error).message).to.equal('CNI plugin failing ADD failed with exit code 1 (CNI error code 7): no addresses left: range full');
  });

  it('kills a plugin that runs past the timeout', async () => {
    const err = await addNetworkList(network([{ type: 'sleepy' }]), att, { binDirs: [dir], timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(DeadlineExceededError);
    expect((err as Error).message).to.equal('CNI plugin sleepy ADD did not finish within 200 ms');
  });

  it('names the directories it searched for a missing plugin', async () => {
    const err = await addNetworkList(network([{ type: 'absent' }]), att, opts()).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(NotFoundError);
    expect((err as Error).message).to.equal(`CNI plugin "absent" not found in /nonexistent, ${dir}`);
  });

  it('undoes a failed ADD with DEL, and keeps what DEL needs while DEL cannot succeed', async () => {
    const confDir = join(dir, 'net.d');
    const readiness = new NetworkReadiness(confDir, silentLogger, () => ({ binDirs: [dir], timeoutMs: 2000 }));
    const cache = new CniCache(join(dir, 'cache'));
    const networks = new PodNetworks(readiness, cache, () => ({ binDirs: [dir], timeoutMs: 2000 }), silentLogger);
    const req: PodNetworkRequest = { podId: 'p1', name: 'web', namespace: 'ns', uid: 'u', netns: '/ns', portMappings: [], dns: undefined, annotations: {} };
    const { mkdirSync } = await import('node:fs');
    mkdirSync(confDir);
    writeFileSync(join(confDir, '10.conflist'), JSON.stringify({ cniVersion: '1.0.0', name: 'n', plugins: [{ type: 'first' }, { type: 'failing' }] }));
    await readiness.start();
    await networks.attach(req).catch(() => undefined);
    readiness.stop();
    expect(
      calls()
        .filter((c) => c.command !== 'VERSION')
        .map((c) => `${c.command} ${c.plugin}`),
    ).to.deep.equal(['ADD first', 'ADD failing', 'DEL failing', 'DEL first']);
    // The plugin refuses DEL too: the entry ADD wrote first stays (no result), for recovery to try DEL again.
    const kept = cache.load('p1', 'eth0');
    expect(kept?.result).to.equal(undefined);
    expect(kept?.args).to.include('K8S_POD_NAME=web');
  });

  it('asks STATUS and GC of CNI 1.1 networks only, with no container variables and the live attachments', async () => {
    const v11 = parseNetworkConfig('/x/11.conflist', JSON.stringify({ cniVersion: '1.1.0', name: 'net', plugins: [{ type: 'first' }, { type: 'second' }] }));
    await statusNetworkList(v11, opts());
    await gcNetworkList(v11, [{ containerID: 'pod1', ifname: 'eth0' }], opts());
    await statusNetworkList(network([{ type: 'first' }]), opts());
    await gcNetworkList(network([{ type: 'first' }]), [], opts());
    const seen = calls();
    expect(seen.map((c) => `${c.command} ${c.plugin}`)).to.deep.equal(['STATUS first', 'STATUS second', 'GC first', 'GC second']);
    expect(seen[0]?.env).to.deep.include({ CNI_CONTAINERID: '<unset>', CNI_NETNS: '<unset>', CNI_IFNAME: '<unset>', CNI_ARGS: '<unset>' });
    expect(seen[2]?.stdin['cni.dev/valid-attachments']).to.deep.equal([{ containerID: 'pod1', ifname: 'eth0' }]);
  });

  it("reports a CNI 1.1 network whose plugin fails STATUS as not ready, with the plugin's words", async () => {
    const confDir = join(dir, 'net.d');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(confDir);
    writeFileSync(join(confDir, '10.conflist'), JSON.stringify({ cniVersion: '1.1.0', name: 'n11', plugins: [{ type: 'first' }, { type: 'failing' }] }));
    const readiness = new NetworkReadiness(confDir, silentLogger, () => ({ binDirs: [dir], timeoutMs: 2000 }));
    await readiness.start();
    readiness.stop();
    expect(readiness.readiness()).to.deep.equal({
      ready: false,
      reason: 'NetworkPluginNotReady',
      message: 'CNI network n11 reports it is not ready: CNI plugin failing STATUS failed with exit code 1 (CNI error code 7): no addresses left: range full',
    });
  });

  it('turns pod settings into capability args', () => {
    const networks = new PodNetworks(new NetworkReadiness('/nonexistent', silentLogger, opts), new CniCache(join(dir, 'cache')), opts, silentLogger);
    networks.setPodCidr('10.244.1.0/24');
    const caps = networks.capabilityArgs({
      podId: 'p',
      name: 'web',
      namespace: 'ns',
      uid: 'u',
      netns: '',
      portMappings: [
        { protocol: 'tcp', containerPort: 80, hostPort: 8080, hostIp: '' },
        { protocol: 'udp', containerPort: 53, hostPort: 0, hostIp: '' },
      ],
      dns: { servers: ['10.96.0.10'], searches: ['svc'], options: [] },
      annotations: { 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '1Mi', other: 'x' },
    });
    expect(caps).to.deep.equal({
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp', hostIP: '' }],
      'io.kubernetes.cri.pod-annotations': { 'kubernetes.io/ingress-bandwidth': '10M', 'kubernetes.io/egress-bandwidth': '1Mi', other: 'x' },
      bandwidth: { ingressRate: 10_000_000, ingressBurst: 2 ** 31 - 1, egressRate: 1024 * 1024, egressBurst: 2 ** 31 - 1 },
      dns: { servers: ['10.96.0.10'], searches: ['svc'], options: [] },
      ipRanges: [[{ subnet: '10.244.1.0/24' }]],
    });
    expect(() =>
      networks.capabilityArgs({
        podId: 'p',
        name: 'w',
        namespace: 'n',
        uid: 'u',
        netns: '',
        portMappings: [],
        dns: undefined,
        annotations: { 'kubernetes.io/ingress-bandwidth': 'fast' },
      }),
    ).to.throw('annotation kubernetes.io/ingress-bandwidth: "fast" is not a quantity');
  });
});
