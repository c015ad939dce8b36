import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { silentLogger } from '../../core/logger.js';
import { parseNetworkConfig } from '../../network/cni-config.js';
import { NetworkReadiness } from '../../network/network-readiness.js';
import { waitFor } from '../support/wait.js';

const BRIDGE_CONFLIST = JSON.stringify({
  cniVersion: '1.0.0',
  name: 'cradle-test',
  plugins: [
    { type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', ranges: [[{ subnet: '10.88.0.0/16' }]] } },
    { type: 'portmap', capabilities: { portMappings: true } },
  ],
});

describe('CNI network config', () => {
  it('reads a conflist', () => {
    const c = parseNetworkConfig('/x/10-net.conflist', BRIDGE_CONFLIST);
    expect(c.name).to.equal('cradle-test');
    expect(c.plugins.map((p) => p.type)).to.deep.equal(['bridge', 'portmap']);
  });

  it('treats a single-plugin .conf as a list of one', () => {
    const c = parseNetworkConfig('/x/10-net.conf', JSON.stringify({ cniVersion: '0.4.0', name: 'n', type: 'bridge' }));
    expect(c.plugins.map((p) => p.type)).to.deep.equal(['bridge']);
  });

  it('names the file and the problem', () => {
    expect(() => parseNetworkConfig('/x/a.conflist', '{')).to.throw(/^\/x\/a\.conflist: not valid JSON/);
    expect(() => parseNetworkConfig('/x/a.conflist', '{"cniVersion":"1.0.0","name":"n","plugins":[]}')).to.throw(
      '/x/a.conflist: "plugins" must be a non-empty array',
    );
    expect(() => parseNetworkConfig('/x/a.conflist', '{"cniVersion":"1.0.0","plugins":[{"type":"bridge"}]}')).to.throw('"name" must be a non-empty string');
    expect(() => parseNetworkConfig('/x/a.conflist', '{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"../../bin/sh"}]}')).to.throw(
      /must be a plain binary name/,
    );
  });
});

const hostPlugins = () => ({ binDirs: ['/usr/lib/cni'], timeoutMs: 5000 });

describe('network readiness', () => {
  let dir: string;
  let confDir: string;
  let readiness: NetworkReadiness;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cradle-netready-'));
    confDir = join(dir, 'net.d');
  });
  afterEach(() => {
    readiness.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is not ready while the conf dir does not exist, and ready once a config appears in it', async () => {
    readiness = new NetworkReadiness(confDir, silentLogger, hostPlugins);
    await readiness.start();
    expect(readiness.readiness()).to.deep.equal({ ready: false, reason: 'NetworkPluginNotReady', message: `no CNI network config: ${confDir} does not exist` });
    mkdirSync(confDir);
    writeFileSync(join(confDir, '10-test.conflist'), BRIDGE_CONFLIST);
    await waitFor('network ready', () => (readiness.readiness().ready ? true : undefined), 3000);
    expect(readiness.defaultNetwork()?.name).to.equal('cradle-test');
  });

  it('follows configs being added, fixed and removed', async () => {
    mkdirSync(confDir);
    writeFileSync(join(confDir, '05-broken.conflist'), '{"name": "x"');
    readiness = new NetworkReadiness(confDir, silentLogger, hostPlugins);
    await readiness.start();
    expect(readiness.readiness().ready).to.equal(false);
    expect(readiness.readiness().message).to.contain('05-broken.conflist: not valid JSON');

    writeFileSync(join(confDir, '10-good.conflist'), BRIDGE_CONFLIST);
    await waitFor('network ready', () => (readiness.readiness().ready ? true : undefined), 2000);
    expect(readiness.defaultNetwork()?.file).to.equal(join(confDir, '10-good.conflist'));

    unlinkSync(join(confDir, '10-good.conflist'));
    await waitFor('network not ready', () => (readiness.readiness().ready ? undefined : true), 2000);
    expect(readiness.readiness().reason).to.equal('NetworkPluginNotReady');
  });

  it('skips a config whose plugin binary is missing, naming it', async () => {
    mkdirSync(confDir);
    writeFileSync(join(confDir, '10-missing.conflist'), BRIDGE_CONFLIST.replace('"portmap"', '"no-such-plugin"'));
    readiness = new NetworkReadiness(confDir, silentLogger, hostPlugins);
    await readiness.start();
    expect(readiness.readiness().ready).to.equal(false);
    expect(readiness.readiness().message).to.contain('10-missing.conflist: CNI plugin "no-such-plugin" not found in /usr/lib/cni');
  });

  it('skips a config whose cniVersion a plugin does not speak, saying which versions it does', async () => {
    mkdirSync(confDir);
    writeFileSync(join(confDir, '10-future.conflist'), BRIDGE_CONFLIST.replace('"1.0.0"', '"9.9.9"'));
    readiness = new NetworkReadiness(confDir, silentLogger, hostPlugins);
    await readiness.start();
    expect(readiness.readiness().ready).to.equal(false);
    expect(readiness.readiness().message).to.match(/10-future\.conflist: CNI plugin bridge does not support cniVersion 9\.9\.9 \(it supports .*1\.0\.0.*\)/);
  });

  it('picks the first valid config in lexical order', async () => {
    mkdirSync(confDir);
    writeFileSync(join(confDir, '20-second.conflist'), BRIDGE_CONFLIST.replace('cradle-test', 'second'));
    writeFileSync(join(confDir, '10-first.conflist'), BRIDGE_CONFLIST.replace('cradle-test', 'first'));
    writeFileSync(join(confDir, '99-ignored.txt'), 'not a config');
    readiness = new NetworkReadiness(confDir, silentLogger, hostPlugins);
    await readiness.start();
    expect(readiness.defaultNetwork()?.name).to.equal('first');
  });
});
