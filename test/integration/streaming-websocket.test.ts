import { join } from 'node:path';
import { expect } from 'chai';
import type { ContainerConfig } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import { packageRoot } from '../../core/package-info.js';
import { busyboxNode, startBusybox } from '../support/busybox-node.js';
import { Kubectl } from '../support/kubectl.js';
import { podConfig } from '../support/pods.js';
import { exited } from '../support/processes.js';
import type { TestRegistry } from '../support/registry.js';
import type { TestNode } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';

const WS_CLIENT = join(packageRoot, 'dist', 'test', 'support', 'ws-client.js');
const MODERN_KUBECTL = '/usr/bin/kubectl';

/**
 * Exec, attach and port-forward over WebSocket, the transport of current
 * clients: @kubernetes/client-node's own Exec, Attach and PortForward
 * (test/support/ws-client.ts), through the stand-in API server, to the
 * daemon's streaming server.
 */
describe('streaming over WebSocket, with @kubernetes/client-node', function () {
  this.timeout(120_000);
  let node: TestNode;
  let registry: TestRegistry;
  let kubectl: Kubectl;
  let pod: string;
  const rt = () => node.client().runtime;

  const start = (name: string, extra: Init<ContainerConfig>) => startBusybox(node, pod, name, extra);
  const client = (args: string[], input?: string) =>
    node.exec(process.execPath, [WS_CLIENT, `http://127.0.0.1:${kubectl.port}`, ...args], { input, timeoutMs: 60_000 });
  const spawnClient = (args: string[]) => node.spawn(process.execPath, [WS_CLIENT, `http://127.0.0.1:${kubectl.port}`, ...args]);
  const statusOf = (stderr: string) => JSON.parse(/ws-client status: (.*)\n/.exec(stderr)?.[1] ?? 'null') as { status?: string; reason?: string } | null;

  before(async () => {
    ({ node, registry } = await busyboxNode());
    pod = (await rt().call('RunPodSandbox', { config: podConfig('wstream', { log_directory: join(node.dir, 'logs') }) })).pod_sandbox_id;
    const app = await start('app', { command: ['sleep', '1000'] });
    const web = await start('web', { command: ['sh', '-c', 'mkdir -p /www && echo hello-over-websocket > /www/index.html && exec httpd -f -p 8080 -h /www'] });
    const ticker = await start('ticker', { command: ['sh', '-c', 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done'] });
    kubectl = new Kubectl(node);
    await kubectl.start();
    kubectl.addPod('default', 'wstream', pod, { app, web, ticker });
  });

  after(async () => {
    await kubectl?.stop();
    await registry?.stop();
    await node?.destroy();
  });

  it('runs a command with its stdout, stderr and exit code (v5.channel.k8s.io)', async () => {
    const r = await client(['exec', 'default', 'wstream', 'app', '--', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 3']);
    expect(r.stdout).to.equal('to-stdout\n');
    expect(r.stderr).to.contain('to-stderr\n');
    expect(statusOf(r.stderr)).to.deep.include({ status: 'Failure', reason: 'NonZeroExitCode' });
    expect(r.code, r.stderr).to.equal(3);
    const ok = await client(['exec', 'default', 'wstream', 'app', '--', 'id', '-u']);
    expect([ok.code, ok.stdout]).to.deep.equal([0, '0\n']);
    expect(statusOf(ok.stderr)).to.deep.include({ status: 'Success' });
    expect(node.daemon.log()).to.contain('"protocol":"v5.channel.k8s.io"');
  });

  it('feeds stdin until the client closes it, and the command goes on to finish (v5 close)', async () => {
    const r = await client(['exec', 'default', 'wstream', 'app', '--stdin', '--', 'sh', '-c', 'tr a-z A-Z; echo after-eof'], 'shout this\n');
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal('SHOUT THIS\nafter-eof\n');
    const big = await client(['exec', 'default', 'wstream', 'app', '--stdin', '--', 'wc', '-c'], 'x'.repeat(8 * 1024 * 1024));
    expect(big.code, big.stderr).to.equal(0);
    expect(big.stdout.trim()).to.equal(String(8 * 1024 * 1024));
  });

  it('gives a tty exec the terminal size the client has', async () => {
    const r = await client(['exec', 'default', 'wstream', 'app', '--tty', '111x33', '--', 'sh', '-c', 'tty; echo size:$(stty size)']);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout.replace(/\r/g, '')).to.match(/\/dev\/pts\/\d+\nsize:33 111\n/);
  });

  it("attaches to a running container's output", async () => {
    const session = spawnClient(['attach', 'default', 'wstream', 'ticker']);
    let out = '';
    session.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('ticks through attach', () => ((out.match(/tick-\d+\n/g) ?? []).length >= 3 ? true : undefined), 20_000, 50);
    session.kill('SIGKILL');
    await exited(session);
  });

  it('forwards a port to the pod (channel pairs, the port first on each)', async () => {
    const session = spawnClient(['portforward', 'default', 'wstream', 'web', '--', '8080']);
    let out = '';
    session.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    session.stdin?.write('GET /index.html HTTP/1.0\r\n\r\n');
    await waitFor('the page through the forwarded port', () => (out.includes('hello-over-websocket') ? true : undefined), 20_000, 50);
    expect(out).to.match(/^HTTP\/1\.[01] 200/);
    session.stdin?.end();
    await exited(session);
  });

  it('forwards a port for kubectl >= 1.31, which tunnels SPDY inside the WebSocket', async function () {
    // The machine's own kubectl where it has one this new; Debian's is 1.20, SPDY only.
    const version = await node.exec(MODERN_KUBECTL, ['version', '--client', '-o', 'json']).catch(() => undefined);
    const minor = Number((JSON.parse(version?.stdout || '{}') as { clientVersion?: { minor?: string } }).clientVersion?.minor ?? 0);
    if (minor < 31) this.skip();
    const local = 18080;
    const session = node.spawn(MODERN_KUBECTL, ['--server', `http://127.0.0.1:${kubectl.port}`, 'port-forward', '-v=7', 'wstream', `${local}:8080`], {
      ...process.env,
      KUBECTL_PORT_FORWARD_WEBSOCKETS: 'true',
      KUBECONFIG: '/dev/null',
    });
    let out = '';
    session.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    session.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('kubectl to listen', () => (out.includes(`Forwarding from 127.0.0.1:${local}`) ? true : undefined), 30_000, 50);
    const fetchPage = `fetch('http://127.0.0.1:${local}/index.html').then(async (r) => process.stdout.write(await r.text()))`;
    const page = await node.exec(process.execPath, ['-e', fetchPage], { timeoutMs: 30_000 });
    expect(page.stdout, `${page.stderr} ${out}`).to.equal('hello-over-websocket\n');
    // Through the WebSocket, not kubectl's fallback to a SPDY upgrade.
    const opened = node.daemon
      .log()
      .split('\n')
      .filter((l) => (l.includes('stream opened') || l.includes('stream refused')) && l.includes('portforward'));
    expect(opened.join('\n'), out.slice(0, 6000)).to.contain('"protocol":"SPDY/3.1+portforward.k8s.io"');
    session.kill('SIGTERM');
    await exited(session);
  });
});
