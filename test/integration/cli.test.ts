import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { BUSYBOX_IMAGE, busyboxSuite, startBusybox } from '../support/busybox-node.js';
import { TEST_GATEWAY } from '../support/cni.js';
import { OciLayout } from '../support/oci-image.js';
import { podConfig } from '../support/pods.js';
import { run, spawnTracked } from '../support/processes.js';
import { CRADLE_BIN } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';

const PROXY = '127.0.0.1:5001';

/** The operator's commands against a real daemon: plain output, and in a pseudo-terminal (util-linux `script`) as a person sees it. */
describe('the cradle CLI', function () {
  this.timeout(180_000);
  const suite = busyboxSuite({ insecure: [PROXY] });
  const rt = () => suite.rt();
  const cradle = (...args: string[]) => run(process.execPath, [CRADLE_BIN, ...args], { timeoutMs: 120_000 });
  /** `cradle ARGS` in a pseudo-terminal; its output as the terminal got it. */
  const inTerminal = (args: string[]) => {
    const command = [process.execPath, CRADLE_BIN, ...args].map((a) => `'${a}'`).join(' ');
    const child = spawnTracked('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    return { child, output: () => out };
  };

  it('status: version, config, handlers, cgroups, readiness and counts', async () => {
    const r = await cradle('status', '--endpoint', suite.node.socket);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^cradle \S+ \(CRI v1\) on .*cradle\.sock, pid \d+$/m);
    expect(r.stdout).to.contain(`config:           ${suite.node.configPath}`);
    expect(r.stdout).to.match(/^runtime handlers: runc \(default\) \S*runc; crun \S*crun$/m);
    expect(r.stdout).to.match(/^cgroups: {10}cgroupfs driver, cgroup v[12]$/m);
    expect(r.stdout).to.match(/^runtime ready: {4}yes$/m);
    expect(r.stdout).to.match(/^images: {11}1$/m);
  });

  it('ps and top: each pod and container with state, age, restarts, CPU and memory', async () => {
    const pod = (await rt().call('RunPodSandbox', { config: podConfig('cli') })).pod_sandbox_id;
    await startBusybox(suite.node, pod, 'sleeper', { command: ['sleep', '600'] });
    const empty = (await rt().call('RunPodSandbox', { config: podConfig('cli-empty') })).pod_sandbox_id;
    const ps = await cradle('ps', '--endpoint', suite.node.socket);
    expect(ps.code, ps.stderr).to.equal(0);
    const lines = ps.stdout.trim().split('\n');
    expect(lines[0]).to.match(/^POD ID\s+POD\s+POD STATE\s+CONTAINER\s+STATE\s+AGE\s+RESTARTS\s+CPU\s+MEMORY$/);
    expect(lines.find((l) => l.includes('sleeper'))).to.match(
      /^\w{13}\s+default\/cli\s+ready\s+sleeper\s+running\s+\d+[smhd]\s+0\s+[\d.]+%\s+[\d.]+ (B|kB|MB)$/,
    );
    expect(lines.find((l) => l.includes('cli-empty'))).to.match(/ready\s+-\s+-\s+\d+[smhd]\s+-\s+-\s+-$/);

    const plainTop = await cradle('top', '--endpoint', suite.node.socket);
    // Not on a terminal, top is one frame of ps.
    expect(plainTop.code).to.equal(0);
    expect(plainTop.stdout.split('\n')[0]).to.equal(lines[0]);
    expect(plainTop.stdout).to.contain('sleeper').and.not.contain('\x1b[');
    const live = inTerminal(['top', '--endpoint', suite.node.socket, '--interval', '1']);
    const frames = () => live.output().split('\x1b[H\x1b[2J').length - 1;
    await waitFor('two frames of top', () => (frames() >= 2 ? true : undefined), 60_000);
    expect(live.output()).to.contain('sleeper').and.contain('Ctrl-C to quit');
    live.child.kill('SIGKILL');
    await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
    await rt().call('RemovePodSandbox', { pod_sandbox_id: empty });
  });

  it("pull: the daemon's own download per layer, redrawn on a terminal, in plain lines otherwise", async () => {
    const layout = new OciLayout(join(suite.node.dir, 'big-layout'));
    layout.tag('v1', layout.image([{ entries: [{ name: 'data/blob.bin', content: randomBytes(6_000_000) }] }], { Cmd: ['true'] }));
    await suite.registry?.push(layout.dir, 'v1', 'test/big');
    // 2 MB/s through the proxy: the pull lasts long enough for the progress to be seen more than once.
    const proxy = suite.node.spawn(process.execPath, [join(CRADLE_BIN, '..', '..', 'test', 'support', 'slow-proxy.js'), '5001', '5000', '2000000']);
    let proxyOut = '';
    proxy.stdout?.on('data', (d: Buffer) => (proxyOut += d.toString()));
    await waitFor('the proxy', () => (proxyOut.includes('listening') ? true : undefined), 30_000);
    try {
      const term = inTerminal(['pull', `${PROXY}/test/big:v1`, '--endpoint', suite.node.socket]);
      const code = await new Promise((r) => term.child.on('exit', r));
      const out = term.output();
      expect(code, out).to.equal(0);
      expect(out).to.match(/\[#*-+\] [\d.]+ (kB|MB) \/ 6\.0 MB {2}[\d.]+ (B|kB|MB)\/s {2}ETA \d+s/);
      // The frame is redrawn in place: the cursor goes back up over it (ESC [ n A).
      expect(out).to.match(new RegExp(`${String.fromCharCode(27)}\\[\\d+A`));
      expect(out).to.match(/pulled 127\.0\.0\.1:5001\/test\/big:v1 \(sha256:[0-9a-f]{64}\) in [\d.]+s/);

      await suite.node.client().image.call('RemoveImage', { image: { image: `${PROXY}/test/big:v1` } });
      const plain = await cradle('pull', `${PROXY}/test/big:v1`, '--endpoint', suite.node.socket);
      expect(plain.code, plain.stderr).to.equal(0);
      expect(plain.stdout, plain.stdout).to.not.contain('\x1b[');
      // A line per change of a layer's state (already here, if the removed image's layer was not collected yet).
      expect(plain.stdout, plain.stdout).to.match(/^[0-9a-f]{12} {2}(done|already here)$/m);
    } finally {
      proxy.kill('SIGKILL');
    }
  });

  it('play: an init container, env, hostPath and emptyDir volumes and a hostPort, answered through the hostPort; --down removes it', async () => {
    const dir = join(suite.node.dir, 'play');
    mkdirSync(join(dir, 'hostdata'), { recursive: true });
    writeFileSync(join(dir, 'hostdata', 'who'), 'cradle\n');
    const manifest = join(dir, 'web.yaml');
    writeFileSync(
      manifest,
      `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  volumes:
  - name: site
    emptyDir: {}
  - name: host
    hostPath: {path: ${join(dir, 'hostdata')}}
  initContainers:
  - name: init
    image: ${BUSYBOX_IMAGE}
    command: [sh, -c, 'echo "hello $GREETING from $(cat /host/who)" > /site/index.html']
    env: [{name: GREETING, value: play}]
    volumeMounts: [{name: site, mountPath: /site}, {name: host, mountPath: /host, readOnly: true}]
  containers:
  - name: httpd
    image: ${BUSYBOX_IMAGE}
    command: [httpd, -f, -p, '8080', -h, /site]
    ports: [{containerPort: 8080, hostPort: 18082}]
    volumeMounts: [{name: site, mountPath: /site}]
    resources: {limits: {memory: 64Mi, cpu: 500m}}
`,
    );
    const r = await cradle('play', manifest, '--endpoint', suite.node.socket);
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^pod default\/web [0-9a-f]{64}: httpd [0-9a-f]{13}$/m);
    const answer = await waitFor(
      'the pod to answer through its hostPort',
      async () => {
        const got = await suite.node.exec('busybox', ['wget', '-q', '-O-', `http://${TEST_GATEWAY}:18082/index.html`]);
        return got.code === 0 ? got.stdout : undefined;
      },
      60_000,
      250,
    );
    expect(answer.trim()).to.equal('hello play from cradle');
    const again = await cradle('play', manifest, '--endpoint', suite.node.socket);
    expect([again.code, again.stderr.trim()]).to.deep.equal([1, `cradle: pod default/web is already here (cradle play ${manifest} --down first)`]);

    const downed = await cradle('play', manifest, '--down', '--endpoint', suite.node.socket);
    expect(downed.code, downed.stderr).to.equal(0);
    expect(downed.stdout).to.match(/^removed pod default\/web /m);
    expect((await rt().call('ListPodSandbox', { filter: { label_selector: { 'io.kubernetes.pod.name': 'web' } } })).items).to.deep.equal([]);
    expect(existsSync(join(suite.node.dir, 'root', 'play'))).to.equal(true);
    expect(readdirSync(join(suite.node.dir, 'root', 'play'))).to.deep.equal([]);

    writeFileSync(join(dir, 'deploy.yaml'), 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n');
    const deploy = await cradle('play', join(dir, 'deploy.yaml'), '--endpoint', suite.node.socket);
    expect([deploy.code, deploy.stderr.trim().split('\n').length]).to.deep.equal([1, 1]);
    expect(deploy.stderr).to.contain('holds apps/v1 Deployment; cradle play takes a v1 Pod');
  });

  it('play --follow: streams the logs and ends with the containers, as restartPolicy says', async () => {
    const manifest = join(suite.node.dir, 'say.yaml');
    writeFileSync(
      manifest,
      `apiVersion: v1\nkind: Pod\nmetadata: {name: say}\nspec:\n  restartPolicy: Never\n  containers:\n  - name: say\n    image: ${BUSYBOX_IMAGE}\n    command: [sh, -c, 'echo one; echo two; exit 3']\n`,
    );
    const r = await cradle('play', manifest, '--follow', '--endpoint', suite.node.socket);
    expect(r.code).to.equal(1);
    expect(r.stdout).to.contain('[say] one\n[say] two\n[say] exited with code 3\n');
    expect((await cradle('play', manifest, '--down', '--endpoint', suite.node.socket)).code).to.equal(0);
  });

  it('fails with one line and a non-zero code', async () => {
    const r = await cradle('pull', 'UPPER/case', '--endpoint', suite.node.socket);
    expect(r.code).to.equal(1);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    const down = await cradle('ps', '--endpoint', join(suite.node.dir, 'no.sock'));
    expect(down.code).to.equal(1);
    expect(down.stderr).to.match(/^cradle: /);
    expect((await cradle('pull')).code).to.equal(2);
  });
});
