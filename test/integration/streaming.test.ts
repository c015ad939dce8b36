import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { ContainerState } from '../../cri/generated/api.js';
import type { ContainerConfig } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import { busyboxNode, startBusybox } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { Kubectl, KUBECTL } from '../support/kubectl.js';
import { podConfig } from '../support/pods.js';
import { exited, spawnTracked } from '../support/processes.js';
import type { TestRegistry } from '../support/registry.js';
import type { TestNode } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';

/**
 * Exec, attach and port-forward end to end: Debian's kubectl (a real SPDY
 * client) through a stand-in for the API server and kubelet's proxy, to the
 * daemon's streaming server and into containers.
 */
describe('streaming: exec, attach and port-forward through kubectl', function () {
  this.timeout(120_000);
  let node: TestNode;
  let registry: TestRegistry;
  let kubectl: Kubectl;
  let pod: string;
  let app: string;
  const rt = () => node.client().runtime;

  const start = (name: string, extra: Init<ContainerConfig>) => startBusybox(node, pod, name, extra);

  before(async () => {
    ({ node, registry } = await busyboxNode());
    pod = (await rt().call('RunPodSandbox', { config: podConfig('stream', { log_directory: join(node.dir, 'logs') }) })).pod_sandbox_id;
    app = await start('app', { command: ['sleep', '1000'] });
    const web = await start('web', { command: ['sh', '-c', 'mkdir -p /www && echo hello-from-the-pod > /www/index.html && exec httpd -f -p 8080 -h /www'] });
    kubectl = new Kubectl(node);
    await kubectl.start();
    kubectl.addPod('default', 'stream', pod, { app, web });
  });

  after(async () => {
    await kubectl?.stop();
    await registry?.stop();
    await node?.destroy();
  });

  it('runs a command with its stdout, stderr and exit code', async () => {
    const r = await kubectl.run(['exec', 'stream', '-c', 'app', '--', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 3']);
    expect(r.stdout).to.equal('to-stdout\n');
    expect(r.stderr).to.contain('to-stderr\n');
    expect(r.code, r.stderr).to.equal(3);
    const ok = await kubectl.run(['exec', 'stream', '-c', 'app', '--', 'id', '-u']);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.equal('0\n');
  });

  it('feeds stdin to the command until the client closes it', async () => {
    const r = await kubectl.run(['exec', '-i', 'stream', '-c', 'app', '--', 'tr', 'a-z', 'A-Z'], { input: 'shout this\nand this\n' });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout, r.stderr).to.equal('SHOUT THIS\nAND THIS\n');
    // Far more than one flow-control window comes through intact.
    const big = await kubectl.run(['exec', '-i', 'stream', '-c', 'app', '--', 'wc', '-c'], { input: 'x'.repeat(8 * 1024 * 1024), timeoutMs: 60_000 });
    expect(big.code, big.stderr).to.equal(0);
    expect(big.stdout.trim()).to.equal(String(8 * 1024 * 1024));
  });

  it('gives a tty exec a terminal of the size the client has, and relays what is typed', async () => {
    // kubectl wants a terminal of its own for -t: script gives it one, sized 33x111.
    const inner = `stty rows 33 cols 111; ${KUBECTL} --server http://127.0.0.1:${kubectl.port} --cache-dir ${join(node.dir, 'kube-cache')} exec -it stream -c app -- sh -c 'tty; stty size; read line; echo got:$line; exit 4'`;
    const session = spawnTracked('nsenter', ['-t', String(node.holderPid), '--net', '--mount', '--', 'script', '-qec', inner, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    session.stdout?.on('data', (d: Buffer) => (out += d.toString().replace(/\r/g, '')));
    session.stderr?.on('data', (d: Buffer) => (out += d.toString().replace(/\r/g, '')));
    const done = exited(session);
    // Typing starts once the shell has shown it is there, as a person would.
    await waitFor('the terminal size', () => (/\d+ \d+\n/.test(out) ? true : undefined), 30_000, 50).catch((err: Error) => {
      throw new Error(`${err.message}: ${out}`);
    });
    expect(out).to.match(/\/dev\/pts\/\d+\n/);
    expect(out).to.contain('33 111\n');
    session.stdin?.write('typed-text\n');
    const status = await done;
    expect(out).to.contain('got:typed-text');
    expect(status.code, out).to.equal(4);
  });

  it('kills the command when the client goes away', async () => {
    const session = kubectl.spawn(['exec', 'stream', '-c', 'app', '--', 'sleep', '777']);
    const sleeping = async () =>
      (await rt().call('ExecSync', { container_id: app, cmd: ['ps', '-o', 'args'], timeout: 10n })).stdout.toString().includes('sleep 777');
    await waitFor('the exec to start', async () => ((await sleeping()) ? true : undefined), 15_000, 100);
    session.kill('SIGKILL');
    await exited(session);
    await waitFor('the command to be killed', async () => ((await sleeping()) ? undefined : true), 15_000, 100);
  });

  it("attaches to a running container's output, leaving it running when the client goes", async () => {
    const ticker = await start('ticker', { command: ['sh', '-c', 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.2; done'] });
    kubectl.addPod('default', 'ticking', pod, { ticker });
    const session = kubectl.spawn(['attach', 'ticking', '-c', 'ticker']);
    let out = '';
    let errOut = '';
    session.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    session.stderr?.on('data', (d: Buffer) => (errOut += d.toString()));
    await waitFor('ticks on stdout through attach', () => ((out.match(/tick-\d+\n/g) ?? []).length >= 3 ? true : undefined), 20_000, 50).catch((err: Error) => {
      throw new Error(`${err.message}: stdout ${out} stderr ${errOut}`);
    });
    expect(errOut).to.not.contain('tick-');
    session.kill('SIGKILL');
    await exited(session);
    expect((await rt().call('ContainerStatus', { container_id: ticker })).status?.state).to.equal(ContainerState.CONTAINER_RUNNING);
    await rt().call('StopContainer', { container_id: ticker, timeout: 0n });
  });

  it('attaches stdin to a container created with it, closing it after the session (stdin_once)', async () => {
    const reader = await start('reader', { command: ['sh', '-c', 'read line; echo got:$line; read more || echo stdin-closed'], stdin: true, stdin_once: true });
    kubectl.addPod('default', 'reading', pod, { reader });
    const r = await kubectl.run(['attach', '-i', 'reading', '-c', 'reader'], { input: 'hello-attach\n' });
    expect(r.stdout, r.stderr).to.contain('got:hello-attach\n');
    expect(r.stderr).to.not.contain('got:');
    await waitFor(
      'the container to exit',
      async () => ((await rt().call('ContainerStatus', { container_id: reader })).status?.state === ContainerState.CONTAINER_EXITED ? true : undefined),
      20_000,
      100,
    );
    const log = (await node.exec('cat', [join(node.dir, 'logs', 'reader.log')])).stdout;
    expect(log).to.match(/stdout F stdin-closed/);
    // A container without stdin takes no input.
    expect((await grpcFailure(rt().call('Attach', { container_id: app, stdin: true, stdout: true }))).code).to.equal(Code.INVALID_ARGUMENT);
  });

  it("attaches to a container's terminal and passes the client's window size to it", async () => {
    const term = await start('term', { command: ['sh', '-c', 'while true; do stty size; sleep 0.2; done'], tty: true, stdin: true });
    kubectl.addPod('default', 'terminal', pod, { term }, ['term']);
    const inner = `stty rows 41 cols 97; ${KUBECTL} --server http://127.0.0.1:${kubectl.port} --cache-dir ${join(node.dir, 'kube-cache')} attach -it terminal -c term`;
    const session = spawnTracked('nsenter', ['-t', String(node.holderPid), '--net', '--mount', '--', 'script', '-qec', inner, '/dev/null'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    session.stdout?.on('data', (d: Buffer) => (out += d.toString().replace(/\r/g, '')));
    try {
      await waitFor('the new size inside the container', () => (out.includes('41 97\n') ? true : undefined), 20_000, 50).catch((err: Error) => {
        throw new Error(`${err.message}: ${out}`);
      });
    } finally {
      session.kill('SIGKILL');
      await exited(session);
    }
    await rt().call('StopContainer', { container_id: term, timeout: 0n });
  });

  it('forwards a local port to a port on the pod loopback', async () => {
    const pf = kubectl.spawn(['port-forward', 'stream', '18080:8080']);
    let out = '';
    pf.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    pf.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor('kubectl to listen', () => (out.includes('Forwarding from') ? true : undefined), 15_000, 50);
      // More connections than an emitter's default listener limit, over one session.
      for (let i = 0; i < 12; i++) {
        const r = await node.exec('busybox', ['wget', '-q', '-O', '-', 'http://127.0.0.1:18080/index.html']);
        expect(
          r.stdout,
          `${r.stderr}${out}\n${node.daemon
            .log()
            .split('\n')
            .filter((l) => /stream|forward/.test(l))
            .join('\n')}`,
        ).to.equal('hello-from-the-pod\n');
      }
      expect(node.daemon.log()).to.not.contain('MaxListenersExceeded');
      // Nothing listens on 9999 in the pod: the client is told, the session survives.
      const pf2 = kubectl.spawn(['port-forward', 'stream', '19999:9999']);
      let out2 = '';
      pf2.stderr?.on('data', (d: Buffer) => (out2 += d.toString()));
      pf2.stdout?.on('data', (d: Buffer) => (out2 += d.toString()));
      await waitFor('kubectl to listen', () => (out2.includes('Forwarding from') ? true : undefined), 15_000, 50);
      await node.exec('busybox', ['wget', '-q', '-O', '-', 'http://127.0.0.1:19999/'], { timeoutMs: 10_000 });
      await waitFor('the error to reach kubectl', () => (/connection refused|error forwarding/i.test(out2) ? true : undefined), 10_000, 50).catch(
        (err: Error) => {
          throw new Error(
            `${err.message}\nkubectl: ${out2}\ndaemon: ${node.daemon
              .log()
              .split('\n')
              .filter((l) => /stream|forward/.test(l))
              .join('\n')}`,
          );
        },
      );
      pf2.kill('SIGTERM');
      await exited(pf2);
    } finally {
      pf.kill('SIGTERM');
      await exited(pf);
    }
  });

  it('refuses bad requests with the right codes, and URLs that were used or never issued', async () => {
    expect((await grpcFailure(rt().call('Exec', { container_id: app, cmd: [], stdout: true }))).code).to.equal(Code.INVALID_ARGUMENT);
    expect((await grpcFailure(rt().call('Exec', { container_id: app, cmd: ['true'] }))).code).to.equal(Code.INVALID_ARGUMENT);
    expect((await grpcFailure(rt().call('Exec', { container_id: app, cmd: ['true'], tty: true, stdout: true, stderr: true }))).code).to.equal(
      Code.INVALID_ARGUMENT,
    );
    expect((await grpcFailure(rt().call('Exec', { container_id: 'nope', cmd: ['true'], stdout: true }))).code).to.equal(Code.NOT_FOUND);
    expect((await grpcFailure(rt().call('PortForward', { pod_sandbox_id: 'nope', port: [80] }))).code).to.equal(Code.NOT_FOUND);
    const stopped = await start('stopped', { command: ['true'] });
    await waitFor(
      'it to exit',
      async () => ((await rt().call('ContainerStatus', { container_id: stopped })).status?.state === ContainerState.CONTAINER_EXITED ? true : undefined),
      10_000,
    );
    expect((await grpcFailure(rt().call('Exec', { container_id: stopped, cmd: ['true'], stdout: true }))).code).to.equal(Code.FAILED_PRECONDITION);

    const { url } = await rt().call('Exec', { container_id: app, cmd: ['true'], stdout: true });
    expect(url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{32}$/);
    const upgrade = (target: string) => node.exec(process.execPath, ['-e', upgradeScript, target]).then((r) => r.stdout.trim());
    // A plain request is refused; the token survives it only if it was not consumed.
    expect(await upgrade(url)).to.equal('101');
    expect(await upgrade(url)).to.equal('404');
    expect(await upgrade(url.replace(/\/exec\/.*/, '/exec/never-issued'))).to.equal('404');
  });
});

/** Prints the status code of a SPDY upgrade request to argv[1]. */
const upgradeScript = `
const http = require('node:http');
const req = http.request(process.argv[1], { method: 'POST', headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' } });
req.on('upgrade', (res, socket) => { console.log(res.statusCode); socket.destroy(); });
req.on('response', (res) => { console.log(res.statusCode); res.resume(); });
req.on('error', (e) => console.log('error ' + e.message));
req.end();
`;
