import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { packageRoot } from '../../core/package-info.js';
import { CgroupDriver } from '../../cri/generated/api.js';
import { CriClient } from '../../cri/client.js';
import { methodsOf } from '../../cri/service-definitions.js';
import { TestNode, testConfigToml } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';
import { grpcFailure } from '../support/grpc.js';

const packageVersion = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;

const CONFLIST = JSON.stringify({
  cniVersion: '1.0.0',
  name: 'cradle-test',
  plugins: [{ type: 'bridge', bridge: 'cradle0', isGateway: true, ipam: { type: 'host-local', ranges: [[{ subnet: '10.89.0.0/24' }]] } }],
});

describe('cradle daemon over its socket', function () {
  this.timeout(60_000);
  let node: TestNode;

  before(async () => {
    node = await TestNode.create();
    await node.startDaemon();
  });
  after(async () => node.destroy());

  it('answers Version with the runtime name, package version and API version', async () => {
    const v = await node.client().runtime.call('Version', { version: '0.1.0' });
    expect(v).to.deep.equal({ version: '0.1.0', runtime_name: 'cradle', runtime_version: packageVersion, runtime_api_version: 'v1' });
  });

  it('reports RuntimeReady and, with no CNI config, NetworkReady false with the reason', async () => {
    const s = await node.client().runtime.call('Status', {});
    const [runtime, network] = s.status?.conditions ?? [];
    expect(runtime).to.deep.equal({ type: 'RuntimeReady', status: true, reason: '', message: '' });
    expect(network?.type).to.equal('NetworkReady');
    expect(network?.status).to.equal(false);
    expect(network?.reason).to.equal('NetworkPluginNotReady');
    expect(network?.message).to.contain(node.cniConfDir);
    expect(s.info).to.deep.equal({});
  });

  it('lists the runtime handlers, the default one also as ""', async () => {
    const s = await node.client().runtime.call('Status', {});
    expect(s.runtime_handlers.map((h) => h.name)).to.deep.equal(['', 'runc', 'crun']);
    // runc 1.1 announces the rro mount option; crun 1.8 here does not. This kernel idmaps overlay layers.
    expect(s.runtime_handlers[0]?.features).to.deep.equal({ recursive_read_only_mounts: true, user_namespaces: true });
  });

  it('turns NetworkReady true when a CNI config appears', async () => {
    writeFileSync(join(node.cniConfDir, '10-cradle.conflist'), CONFLIST);
    // The conf dir is watched: the wait is for that event, bounded generously for a busy machine.
    await waitFor(
      'NetworkReady',
      async () => {
        const s = await node.client().runtime.call('Status', {});
        return s.status?.conditions.find((c) => c.type === 'NetworkReady')?.status ? true : undefined;
      },
      30_000,
    );
  });

  it('adds the effective config to Status when verbose', async () => {
    const s = await node.client().runtime.call('Status', { verbose: true });
    const config = JSON.parse(s.info.config ?? '{}') as { root: string; listen: string; cni: { conf_dir: string } };
    expect(config.root).to.equal(join(node.dir, 'root'));
    expect(config.listen).to.equal(node.socket);
    expect(config.cni.conf_dir).to.equal(node.cniConfDir);
  });

  it('reports the configured cgroup driver', async () => {
    const c = await node.client().runtime.call('RuntimeConfig', {});
    expect(c.linux?.cgroup_driver).to.equal(CgroupDriver.CGROUPFS);
  });

  it('serves every unary RPC of both services: none answers UNIMPLEMENTED', async () => {
    const client = node.client();
    const services = [
      ['runtime.v1.RuntimeService', client.runtime],
      ['runtime.v1.ImageService', client.image],
    ] as const;
    let asked = 0;
    for (const [service, stub] of services)
      for (const m of methodsOf(service).filter((x) => !x.serverStreaming)) {
        // An empty request is refused or answered, never unknown; nothing is created by one.
        const code = await (stub.call as (k: string, r: object, o: object) => Promise<unknown>)(m.name, {}, { timeoutMs: 60_000 }).then(
          () => Code.OK,
          (err: { code: number }) => err.code,
        );
        expect(code, m.name).to.not.equal(Code.UNIMPLEMENTED);
        asked++;
      }
    expect(asked).to.be.greaterThan(30);
  });

  it('accepts a request larger than 64 MiB', async () => {
    const big = 'x'.repeat(65 * 1024 * 1024);
    const err = await grpcFailure(node.client().runtime.call('CreateContainer', { config: { annotations: { big } } }, { timeoutMs: 30_000 }));
    // Reaching the handler's validation (not RESOURCE_EXHAUSTED) shows the message was received whole.
    expect(err.code).to.equal(Code.INVALID_ARGUMENT);
    expect(err.details).to.equal('pod_sandbox_id is empty');
  });

  it('serves on a socket with mode 0660 and holds its state-directory locks', () => {
    expect(statSync(node.socket).isSocket()).to.equal(true);
    expect(statSync(node.socket).mode & 0o777).to.equal(0o660);
    expect(readFileSync(join(node.dir, 'run', 'cradle.lock'), 'utf8').trim()).to.equal(String(node.daemon.pid));
  });

  it('logs each RPC at debug with its duration and outcome', () => {
    const lines = node.daemon
      .log()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const version = lines.find((l) => l.message === 'rpc' && l.rpc === 'Version');
    expect(version).to.include({ level: 'debug', code: 'OK' });
    expect(version?.durationMs).to.be.a('number');
    const refused = lines.find((l) => l.rpc === 'RestorePod');
    expect(refused).to.include({ code: 'INVALID_ARGUMENT' });
  });

  it("gives start-up's garbage back once quiet, with a compacting GC", async () => {
    // The first look comes 5 s after start; what it does is unit-tested (quiet-reclaim.test.ts).
    const line = await waitFor(
      'the daemon to reclaim memory',
      () =>
        node.daemon
          .log()
          .split('\n')
          .find((l) => l.includes('memory reclaimed after a quiet spell')),
      45_000,
      200,
    );
    expect(JSON.parse(line)).to.include({ level: 'debug', gc: 'compacting' });
  });
});

describe('cradle daemon lifecycle', function () {
  this.timeout(60_000);
  let node: TestNode;

  beforeEach(async () => (node = await TestNode.create()));
  afterEach(async () => node.destroy());

  it('on SIGTERM stops accepting, removes its socket and exits 0', async () => {
    const daemon = await node.startDaemon();
    await node.client().runtime.call('Version', {});
    const status = await node.stopDaemon('SIGTERM');
    expect(status).to.deep.equal({ code: 0, signal: null });
    expect(existsSync(node.socket)).to.equal(false);
    expect(daemon.log()).to.contain('"message":"stopped"');
  });

  it('on SIGINT exits 0 as well', async () => {
    await node.startDaemon();
    expect(await node.stopDaemon('SIGINT')).to.deep.equal({ code: 0, signal: null });
  });

  it('replaces a stale socket left by a killed daemon', async () => {
    await node.startDaemon();
    expect(await node.stopDaemon('SIGKILL')).to.deep.equal({ code: null, signal: 'SIGKILL' });
    expect(statSync(node.socket).isSocket()).to.equal(true);
    await node.startDaemon();
    expect((await node.client().runtime.call('Version', {})).runtime_name).to.equal('cradle');
  });

  it('refuses to start when another daemon serves on the same socket', async () => {
    await node.startDaemon();
    // Its own state dirs, so only the socket is shared.
    const other = join(node.dir, 'other');
    const second = node.spawnDaemon(['--root', `${other}/root`, '--runroot', `${other}/run`]);
    const status = await second.exited;
    expect(status.code).to.equal(1);
    expect(second.log()).to.contain(`cradle: another daemon is already serving on ${node.socket}`);
    // The first daemon is unharmed and its socket still there.
    expect((await node.client().runtime.call('Version', {})).runtime_name).to.equal('cradle');
  });

  it('refuses to start on state directories another daemon holds', async () => {
    const first = await node.startDaemon();
    const second = node.spawnDaemon(['--listen', join(node.dir, 'second.sock')]);
    expect((await second.exited).code).to.equal(1);
    expect(second.log()).to.contain(`cradle: another cradle daemon (pid ${first.pid}) holds ${join(node.dir, 'root', 'cradle.lock')}`);
    expect(existsSync(join(node.dir, 'second.sock'))).to.equal(false);
  });

  it('refuses a listen path that is not a socket, and leaves the file alone', async () => {
    const path = join(node.dir, 'precious.txt');
    writeFileSync(path, 'keep me');
    const daemon = node.spawnDaemon(['--listen', path]);
    expect((await daemon.exited).code).to.equal(1);
    expect(daemon.log()).to.contain(`${path} exists and is not a socket`);
    expect(readFileSync(path, 'utf8')).to.equal('keep me');
  });

  it('exits non-zero with a readable message on a bad config', async () => {
    writeFileSync(node.configPath, `${testConfigToml(node.dir)}\n[image]\ninsecure_registries = "127.0.0.1:5000"\n`);
    const daemon = node.spawnDaemon();
    expect((await daemon.exited).code).to.equal(2);
    expect(daemon.log().trim()).to.equal(
      `cradle: invalid configuration: ${node.configPath}: image.insecure_registries: expected an array of non-empty strings, found the string "127.0.0.1:5000"`,
    );
  });

  it('reports SYSTEMD as the cgroup driver when configured', async () => {
    writeFileSync(node.configPath, testConfigToml(node.dir).replace('shutdown_timeout', 'cgroup_manager = "systemd"\nshutdown_timeout'));
    await node.startDaemon();
    expect((await node.client().runtime.call('RuntimeConfig', {})).linux?.cgroup_driver).to.equal(CgroupDriver.SYSTEMD);
  });

  it('reports RuntimeReady false, naming the binary, when the default runtime is missing', async () => {
    writeFileSync(node.configPath, `${testConfigToml(node.dir)}\n[runtimes.runc]\npath = "/nonexistent/runc"\n`);
    await node.startDaemon();
    const s = await node.client().runtime.call('Status', {});
    const runtime = s.status?.conditions.find((c) => c.type === 'RuntimeReady');
    expect(runtime).to.deep.include({ status: false, reason: 'RuntimeBinaryMissing' });
    expect(runtime?.message).to.contain('/nonexistent/runc does not exist');
  });

  it('on SIGHUP reloads the log level and says what changed', async () => {
    writeFileSync(node.configPath, testConfigToml(node.dir).replace('level = "debug"', 'level = "info"'));
    const daemon = await node.startDaemon();
    await node.client().runtime.call('Version', {});
    expect(daemon.log()).not.to.contain('"rpc":"Version"');
    writeFileSync(node.configPath, testConfigToml(node.dir).replace('listen = ', 'listen = "/elsewhere.sock"\n#'));
    daemon.process.kill('SIGHUP');
    // Both lines, which may reach the pipe in separate writes.
    await waitFor('reload', () => (daemon.log().includes('"key":"log.level"') && daemon.log().includes('after a restart') ? true : undefined));
    expect(daemon.log()).to.match(/"from":"info".*"key":"log\.level".*"to":"debug"|"key":"log\.level".*"from":"info".*"to":"debug"/);
    expect(daemon.log()).to.contain('takes effect after a restart');
    await node.client().runtime.call('Version', {});
    await waitFor('a debug RPC log line', () => (daemon.log().includes('"rpc":"Version"') ? true : undefined));
    // The socket did not move: listen needs a restart.
    expect(existsSync(node.socket)).to.equal(true);
  });

  it('keeps running on its old config when a reload finds a bad file', async () => {
    const daemon = await node.startDaemon();
    writeFileSync(node.configPath, 'root = 42\n');
    daemon.process.kill('SIGHUP');
    await waitFor('reload failure', () => (daemon.log().includes('config reload failed') ? true : undefined));
    expect(daemon.log()).to.contain('root: expected an absolute path string, found the number 42');
    expect((await node.client().runtime.call('Version', {})).runtime_name).to.equal('cradle');
  });

  it('answers Version once started (how fast is measured by the start-up benchmark, not here)', async () => {
    node.spawnDaemon();
    // A fresh channel per attempt: a failed connect would otherwise put the
    // client into grpc's reconnect backoff and measure that instead.
    const answer = async (): Promise<true | undefined> => {
      const client = new CriClient(node.socket);
      try {
        return (await client.runtime.call('Version', {}, { timeoutMs: 5000 })).runtime_name ? true : undefined;
      } finally {
        client.close();
      }
    };
    expect(await waitFor('Version', answer, 60_000, 10)).to.equal(true);
  });
});
