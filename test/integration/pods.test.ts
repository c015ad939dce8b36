import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { NamespaceMode, PodSandboxState } from '../../cri/generated/api.js';
import { bridgeConflist, installFailingPlugin, ipamDir, leasedIps, TEST_GATEWAY, TEST_NETWORK, writeConflist } from '../support/cni.js';
import { grpcFailure } from '../support/grpc.js';
import { inPod, podConfig, podInfo } from '../support/pods.js';
import { spawnTracked } from '../support/processes.js';
import { TestNode } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';

function leases(node: TestNode): string[] {
  const dir = join(ipamDir(node), TEST_NETWORK);
  return existsSync(dir) ? leasedIps(readdirSync(dir)) : [];
}

/** Every mount under the node's pod directories, as the daemon sees them. */
function podMounts(node: TestNode): string[] {
  return node
    .mountinfo()
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(join(node.dir, 'run', 'pods')));
}

describe('pod sandboxes', function () {
  this.timeout(60_000);
  let node: TestNode;

  before(async () => {
    node = await TestNode.create();
    writeConflist(node, bridgeConflist(node));
    await node.startDaemon();
  });
  after(async () => node.destroy());

  const run = async (name: string, extra = {}) => (await node.client().runtime.call('RunPodSandbox', { config: podConfig(name, extra) })).pod_sandbox_id;
  const status = (id: string) => node.client().runtime.call('PodSandboxStatus', { pod_sandbox_id: id });
  const stop = (id: string) => node.client().runtime.call('StopPodSandbox', { pod_sandbox_id: id });
  const remove = (id: string) => node.client().runtime.call('RemovePodSandbox', { pod_sandbox_id: id });

  it('gives two pods distinct IPs from the range, and they reach each other', async () => {
    const a = await run('ping-a');
    const b = await run('ping-b');
    const [ia, ib] = [await podInfo(node, a), await podInfo(node, b)];
    expect(ia.ips[0]).to.match(/^10\.89\.0\.\d+$/);
    expect(ib.ips[0]).to.match(/^10\.89\.0\.\d+$/);
    expect(ia.ips[0]).not.to.equal(ib.ips[0]);
    expect(leases(node)).to.include.members([ia.ips[0], ib.ips[0]]);
    const ab = await inPod(node, { net: ia.namespaces.net }, ['busybox', 'ping', '-c', '1', '-W', '2', ib.ips[0] as string]);
    expect(ab.code, ab.stdout + ab.stderr).to.equal(0);
    const ba = await inPod(node, { net: ib.namespaces.net }, ['busybox', 'ping', '-c', '1', '-W', '2', ia.ips[0] as string]);
    expect(ba.code, ba.stdout + ba.stderr).to.equal(0);
    expect((await status(a)).status?.network?.ip).to.equal(ia.ips[0]);
    for (const id of [a, b]) await remove(id);
  });

  it('brings loopback up, sets the hostname and mounts a 64 MiB /dev/shm', async () => {
    const id = await run('basics', { hostname: 'pod-host-name' });
    const info = await podInfo(node, id);
    const lo = await inPod(node, { net: info.namespaces.net }, ['ip', '-o', 'link', 'show', 'lo']);
    expect(lo.stdout).to.match(/<LOOPBACK,UP,LOWER_UP>/);
    const host = await inPod(node, { uts: info.namespaces.uts }, ['hostname']);
    expect(host.stdout.trim()).to.equal('pod-host-name');
    const shm = node
      .mountinfo()
      .split('\n')
      .find((l) => l.split(' ')[4] === info.shm);
    expect(shm).to.match(/ rw,nosuid,nodev,noexec,.* - tmpfs shm rw,size=65536k/);
    // tmpfs leaves its default mode (1777) out of mountinfo: ask stat.
    expect((await node.exec('stat', ['-c', '%a', info.shm])).stdout.trim()).to.equal('1777');
    expect(readFileSync(info.files.hostname, 'utf8')).to.equal('pod-host-name\n');
    expect(readFileSync(info.files.hosts, 'utf8')).to.contain(`${info.ips[0]}\tpod-host-name`);
    await remove(id);
  });

  it('writes resolv.conf from the DNS config', async () => {
    const id = await run('dns', {
      dns_config: { servers: ['10.96.0.10'], searches: ['default.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] },
    });
    const info = await podInfo(node, id);
    expect(readFileSync(info.files.resolvConf, 'utf8')).to.equal(
      'search default.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n',
    );
    await remove(id);
  });

  it('forwards a hostPort to a listener in the pod', async () => {
    const id = await run('web', { port_mappings: [{ container_port: 8000, host_port: 18080 }] });
    const info = await podInfo(node, id);
    // The pin is a mount in the node's mount namespace: enter that first, then the pod's netns.
    const server = spawnTracked(
      'nsenter',
      [
        '-t',
        String(node.holderPid),
        '--mount',
        '--',
        'nsenter',
        `--net=${info.namespaces.net}`,
        '--',
        process.execPath,
        '-e',
        "require('net').createServer((s) => s.end('hello from the pod\\n')).listen(8000, () => console.log('listening'))",
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        server.stdout?.once('data', () => resolve());
        server.once('exit', (code) => reject(new Error(`listener exited with ${String(code)}`)));
      });
      const client = `const s = require('net').connect(18080, '${TEST_GATEWAY}'); let d=''; s.on('data', (c) => d += c); s.on('end', () => { console.log(d.trim()); }); s.on('error', (e) => { console.error(e.message); process.exit(1); });`;
      const r = await node.exec(process.execPath, ['-e', client], { timeoutMs: 10_000 });
      expect(r.stdout.trim(), r.stderr).to.equal('hello from the pod');
    } finally {
      server.kill('SIGKILL');
    }
    await remove(id);
  });

  it('releases the IP lease on stop and leaves no mount after remove', async () => {
    const id = await run('lease');
    const info = await podInfo(node, id);
    const ip = info.ips[0] as string;
    expect(leases(node)).to.include(ip);
    expect(podMounts(node).filter((m) => m.includes(id))).to.have.length(5); // net, uts, ipc, pid, shm
    await stop(id);
    expect(leases(node)).not.to.include(ip);
    const s = await status(id);
    expect(s.status?.state).to.equal(PodSandboxState.SANDBOX_NOTREADY);
    await stop(id); // idempotent
    await remove(id);
    expect(podMounts(node).filter((m) => m.includes(id))).to.deep.equal([]);
    expect(existsSync(join(node.dir, 'run', 'pods', id))).to.equal(false);
    expect(existsSync(join(node.dir, 'root', 'pods', id))).to.equal(false);
    expect((await grpcFailure(status(id))).code).to.equal(Code.NOT_FOUND);
  });

  it('applies namespaced sysctls inside the pod, not on the host', async () => {
    const before = await node.exec('cat', ['/proc/sys/net/ipv4/ip_unprivileged_port_start']);
    const id = await run('sysctl', { linux: { sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0', 'kernel.shmmni': '1234' } } });
    const info = await podInfo(node, id);
    expect((await inPod(node, { net: info.namespaces.net }, ['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start'])).stdout.trim()).to.equal('0');
    expect((await inPod(node, { ipc: info.namespaces.ipc }, ['cat', '/proc/sys/kernel/shmmni'])).stdout.trim()).to.equal('1234');
    const after = await node.exec('cat', ['/proc/sys/net/ipv4/ip_unprivileged_port_start']);
    expect(after.stdout).to.equal(before.stdout);
    expect(after.stdout.trim()).not.to.equal('0');
    await remove(id);
  });

  it("refuses sysctls that are not namespaced, or not the pod's own", async () => {
    const podsBefore = readdirSync(join(node.dir, 'run', 'pods')).length;
    const host = await grpcFailure(run('bad-sysctl', { linux: { sysctls: { 'vm.swappiness': '10' } } }));
    expect(host.code).to.equal(Code.INVALID_ARGUMENT);
    expect(host.details).to.contain('vm.swappiness is not namespaced');
    const hostNet = await grpcFailure(
      run('bad-sysctl-2', { linux: { sysctls: { 'net.ipv4.ip_forward': '1' }, security_context: { namespace_options: { network: NamespaceMode.NODE } } } }),
    );
    expect(hostNet.code).to.equal(Code.INVALID_ARGUMENT);
    expect(hostNet.details).to.contain("host's network namespace");
    expect(readdirSync(join(node.dir, 'run', 'pods')).length).to.equal(podsBefore);
  });

  it('refuses a second pod with the same metadata, naming the holder', async () => {
    const config = podConfig('dup');
    const id = (await node.client().runtime.call('RunPodSandbox', { config })).pod_sandbox_id;
    const err = await grpcFailure(node.client().runtime.call('RunPodSandbox', { config }));
    expect(err.code).to.equal(Code.ALREADY_EXISTS);
    expect(err.details).to.contain(id);
    await remove(id);
    // The name is free again once the pod is gone.
    const again = (await node.client().runtime.call('RunPodSandbox', { config })).pod_sandbox_id;
    await remove(again);
  });

  it('gives a retry of a RunPodSandbox whose caller gave up the pod it created, not "name reserved"', async () => {
    // kubelet retries with the same config when its deadline passes while the runtime is still working.
    const config = podConfig('retry');
    const first = await grpcFailure(node.client().runtime.call('RunPodSandbox', { config }, { timeoutMs: 20 }));
    expect(first.code).to.equal(Code.DEADLINE_EXCEEDED);
    const id = (await node.client().runtime.call('RunPodSandbox', { config })).pod_sandbox_id;
    const pods = (await node.client().runtime.call('ListPodSandbox', { filter: { label_selector: { app: 'retry' } } })).items;
    expect(pods.map((p) => p.id)).to.deep.equal([id]);
    // Handed over once: a further identical request is a real duplicate.
    expect((await grpcFailure(node.client().runtime.call('RunPodSandbox', { config }))).code).to.equal(Code.ALREADY_EXISTS);
    await remove(id);
  });

  it('succeeds in stopping and removing an unknown pod', async () => {
    await stop('0'.repeat(64));
    await remove('0'.repeat(64));
    expect((await grpcFailure(status('0'.repeat(64)))).code).to.equal(Code.NOT_FOUND);
  });

  it('refuses an unknown runtime handler and missing metadata with INVALID_ARGUMENT', async () => {
    const handler = await grpcFailure(node.client().runtime.call('RunPodSandbox', { config: podConfig('h'), runtime_handler: 'kata' }));
    expect(handler.code).to.equal(Code.INVALID_ARGUMENT);
    expect(handler.details).to.equal('runtime handler "kata" is not configured (configured: runc, crun)');
    const meta = await grpcFailure(node.client().runtime.call('RunPodSandbox', { config: { hostname: 'x' } }));
    expect(meta.code).to.equal(Code.INVALID_ARGUMENT);
  });

  it('lists pods by id prefix, state and labels', async () => {
    const a = await run('list-a', { labels: { tier: 'front', app: 'list' } });
    const b = await run('list-b', { labels: { tier: 'back', app: 'list' } });
    await stop(b);
    const list = async (filter: object) => (await node.client().runtime.call('ListPodSandbox', { filter })).items.map((i) => i.id).sort();
    expect(await list({ label_selector: { app: 'list' } })).to.deep.equal([a, b].sort());
    expect(await list({ label_selector: { app: 'list', tier: 'front' } })).to.deep.equal([a]);
    expect(await list({ id: b.slice(0, 12) })).to.deep.equal([b]);
    expect(await list({ label_selector: { app: 'list' }, state: { state: PodSandboxState.SANDBOX_NOTREADY } })).to.deep.equal([b]);
    expect(await list({ label_selector: { app: 'list' }, state: { state: PodSandboxState.SANDBOX_READY } })).to.deep.equal([a]);
    const item = (await node.client().runtime.call('ListPodSandbox', { filter: { id: a } })).items[0];
    expect(item?.metadata?.name).to.equal('list-a');
    expect(item?.created_at).to.be.a('bigint');
    expect(Number(item?.created_at) / 1e9).to.be.closeTo(Date.now() / 1000, 60);
    const streamed = await node.client().runtime.collect('StreamPodSandboxes', { filter: { label_selector: { app: 'list' } } });
    expect(streamed.flatMap((m) => m.pod_sandboxes.map((p) => p.id)).sort()).to.deep.equal([a, b].sort());
    for (const id of [a, b]) await remove(id);
  });

  it('gives a pod-wide PID namespace an init that is PID 1, inside the pod namespaces', async () => {
    const id = await run('pidns');
    const info = (await podInfo(node, id)) as Awaited<ReturnType<typeof podInfo>> & { initPid: number; namespaces: { pid: string } };
    const pid = info.initPid;
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).to.match(/NSpid:\s+\d+\s+1\n/);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0]).to.equal('/usr/bin/catatonit');
    const netInode = (await node.exec('stat', ['-L', '-c', '%i', info.namespaces.net as string])).stdout.trim();
    expect((await node.exec('readlink', [`/proc/${pid}/ns/net`])).stdout.trim()).to.equal(`net:[${netInode}]`);
    await stop(id);
    await waitFor('the init to be gone', () => (existsSync(`/proc/${pid}`) ? undefined : true), 2000);
    await remove(id);
  });

  it('creates no init for pods whose containers each get their own PID namespace', async () => {
    const id = await run('pid-container', { linux: { security_context: { namespace_options: { pid: NamespaceMode.CONTAINER } } } });
    const info = (await podInfo(node, id)) as Awaited<ReturnType<typeof podInfo>> & { initPid?: number; namespaces: { pid?: string } };
    expect(info.initPid).to.equal(undefined);
    expect(info.namespaces.pid).to.equal(undefined);
    await remove(id);
  });

  it('turns a pod NOTREADY as soon as its init dies', async () => {
    const id = await run('init-dies');
    const { initPid } = (await podInfo(node, id)) as Awaited<ReturnType<typeof podInfo>> & { initPid: number };
    process.kill(initPid, 'SIGKILL');
    await waitFor('NOTREADY', async () => ((await status(id)).status?.state === PodSandboxState.SANDBOX_NOTREADY ? true : undefined), 2000);
    await remove(id);
  });

  it('resolves unique id prefixes for status', async () => {
    const id = await run('prefix');
    expect((await status(id.slice(0, 10))).status?.id).to.equal(id);
    await remove(id.slice(0, 10));
  });
});

describe('pod sandboxes and the network', function () {
  this.timeout(60_000);
  let node: TestNode;

  beforeEach(async () => (node = await TestNode.create()));
  afterEach(async () => node.destroy());

  it('rolls back everything when a CNI plugin fails, and says which plugin and why', async () => {
    installFailingPlugin(node);
    writeConflist(node, bridgeConflist(node, { extra: [{ type: 'cradle-fail' }] }));
    await node.startDaemon();
    const err = await grpcFailure(node.client().runtime.call('RunPodSandbox', { config: podConfig('fail') }));
    expect(err.code).to.equal(Code.INTERNAL);
    expect(err.details).to.equal('CNI plugin cradle-fail ADD failed with exit code 7 (CNI error code 11): refusing on purpose: test plugin');
    expect(leases(node)).to.deep.equal([]);
    expect(podMounts(node)).to.deep.equal([]);
    expect(readdirSync(join(node.dir, 'run', 'pods'))).to.deep.equal([]);
    expect(readdirSync(join(node.dir, 'root', 'pods'))).to.deep.equal([]);
    expect(readdirSync(join(node.dir, 'root', 'pods-records'))).to.deep.equal([]);
    expect(readdirSync(join(node.dir, 'root', 'cni-cache'))).to.deep.equal([]);
    expect((await node.client().runtime.call('ListPodSandbox', {})).items).to.deep.equal([]);
    // The name was released: fixing the network lets the same pod run.
    writeConflist(node, bridgeConflist(node));
    await waitFor('config reload', async () => {
      const s = await node.client().runtime.call('Status', {});
      return s.status?.conditions.find((c) => c.type === 'NetworkReady')?.status ? true : undefined;
    });
  });

  it('runs host-network pods while the network is not ready, and refuses the others', async () => {
    await node.startDaemon();
    const hostNet = { linux: { security_context: { namespace_options: { network: NamespaceMode.NODE } } } };
    const id = (await node.client().runtime.call('RunPodSandbox', { config: podConfig('hostnet', hostNet) })).pod_sandbox_id;
    const s = await node.client().runtime.call('PodSandboxStatus', { pod_sandbox_id: id });
    expect(s.status?.state).to.equal(PodSandboxState.SANDBOX_READY);
    expect(s.status?.linux?.namespaces?.options?.network).to.equal(NamespaceMode.NODE);
    expect(s.status?.network?.ip).to.equal('');
    const err = await grpcFailure(node.client().runtime.call('RunPodSandbox', { config: podConfig('podnet') }));
    expect(err.code).to.equal(Code.FAILED_PRECONDITION);
    expect(err.details).to.contain('pod network is not ready');
    await node.client().runtime.call('RemovePodSandbox', { pod_sandbox_id: id });
  });

  it('keeps pods, namespaces and IPs across a daemon restart', async () => {
    writeConflist(node, bridgeConflist(node));
    await node.startDaemon();
    const a = (await node.client().runtime.call('RunPodSandbox', { config: podConfig('keep-a') })).pod_sandbox_id;
    const b = (await node.client().runtime.call('RunPodSandbox', { config: podConfig('keep-b') })).pod_sandbox_id;
    const before = await podInfo(node, a);
    const beforeB = await podInfo(node, b);
    expect(await node.stopDaemon('SIGKILL')).to.deep.equal({ code: null, signal: 'SIGKILL' });
    await node.startDaemon();
    const s = await node.client().runtime.call('PodSandboxStatus', { pod_sandbox_id: a });
    expect(s.status?.state).to.equal(PodSandboxState.SANDBOX_READY);
    expect(s.status?.network?.ip).to.equal(before.ips[0]);
    const ping = await inPod(node, { net: before.namespaces.net }, ['busybox', 'ping', '-c', '1', '-W', '2', beforeB.ips[0] as string]);
    expect(ping.code, ping.stderr).to.equal(0);
    // Names are reserved again after recovery.
    const list = await node.client().runtime.call('ListPodSandbox', {});
    expect(list.items.map((i) => i.id).sort()).to.deep.equal([a, b].sort());
    // The init survived the restart and is watched again.
    const { initPid } = (await podInfo(node, b)) as Awaited<ReturnType<typeof podInfo>> & { initPid: number };
    expect(existsSync(`/proc/${initPid}`)).to.equal(true);
    process.kill(initPid, 'SIGKILL');
    await waitFor(
      'NOTREADY',
      async () =>
        (await node.client().runtime.call('PodSandboxStatus', { pod_sandbox_id: b })).status?.state === PodSandboxState.SANDBOX_NOTREADY ? true : undefined,
      2000,
    );
    // DEL uses what ADD used, even once the network config is gone.
    rmSync(join(node.cniConfDir, '10-cradle-test.conflist'));
    for (const id of [a, b]) await node.client().runtime.call('RemovePodSandbox', { pod_sandbox_id: id });
    expect(leases(node)).to.deep.equal([]);
  });

  it('shows pods NOTREADY after a reboot, and removes them cleanly, releasing their IPs', async () => {
    writeConflist(node, bridgeConflist(node));
    await node.startDaemon();
    const id = (await node.client().runtime.call('RunPodSandbox', { config: podConfig('reboot') })).pod_sandbox_id;
    const ip = (await podInfo(node, id)).ips[0] as string;
    await node.reboot();
    await node.startDaemon();
    const s = await node.client().runtime.call('PodSandboxStatus', { pod_sandbox_id: id });
    expect(s.status?.state).to.equal(PodSandboxState.SANDBOX_NOTREADY);
    expect(leases(node)).to.include(ip);
    await node.client().runtime.call('StopPodSandbox', { pod_sandbox_id: id });
    await node.client().runtime.call('RemovePodSandbox', { pod_sandbox_id: id });
    expect(leases(node)).to.deep.equal([]);
    expect((await node.client().runtime.call('ListPodSandbox', {})).items).to.deep.equal([]);
  });
});
