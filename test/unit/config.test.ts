import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse as parseToml } from 'smol-toml';
import { ConfigError } from '../../core/config/config.js';
import { DEFAULT_CONFIG_TOML } from '../../core/config/default-config.js';
import { defaultConfig, dropInDir, loadConfig, type ConfigOverrides } from '../../core/config/load.js';
import { planReload } from '../../bin/config-reload.js';

describe('config', () => {
  let dir: string;
  let main: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cradle-config-'));
    main = join(dir, 'cradle.toml');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const load = (overrides: ConfigOverrides = {}, explicit = true) => loadConfig({ path: main, explicit, overrides });
  const dropIn = (name: string, text: string) => {
    mkdirSync(join(dir, 'cradle.d'), { recursive: true });
    writeFileSync(join(dir, 'cradle.d', name), text);
  };
  const problemsOf = (fn: () => unknown): string[] => {
    try {
      fn();
    } catch (err) {
      expect(err).to.be.instanceOf(ConfigError);
      return (err as ConfigError).problems;
    }
    expect.fail('expected a ConfigError');
  };

  it('runs with no file at all from the embedded default', () => {
    const { config, files } = load({}, false);
    expect(files).to.deep.equal([]);
    expect(config.root).to.equal('/var/lib/cradle');
    expect(config.listen).to.equal('/run/cradle/cradle.sock');
    expect(config.default_runtime).to.equal('runc');
    expect(config.runtimes.runc).to.deep.equal({ path: '/usr/bin/runc', root: '/run/cradle/runc', type: 'oci' });
    expect(config.streaming.port).to.equal(0);
  });

  it('refuses an explicitly named config file that does not exist', () => {
    const problems = problemsOf(() => load({}, true));
    expect(problems[0]).to.contain(main).and.contain('cannot read');
  });

  it('derives the drop-in directory from the config file name', () => {
    expect(dropInDir('/etc/cradle/cradle.toml')).to.equal('/etc/cradle/cradle.d');
    expect(dropInDir('/srv/node.toml')).to.equal('/srv/node.d');
  });

  it('merges drop-ins in lexical order over the main file', () => {
    writeFileSync(main, '[log]\nlevel = "warn"\nformat = "json"\n');
    dropIn('20-debug.toml', '[log]\nlevel = "debug"\n');
    dropIn('10-error.toml', '[log]\nlevel = "error"\n');
    dropIn('README', 'not toml, and not a .toml file');
    const { config, files } = load();
    expect(files).to.deep.equal([main, join(dir, 'cradle.d', '10-error.toml'), join(dir, 'cradle.d', '20-debug.toml')]);
    expect(config.log).to.deep.equal({ level: 'debug', format: 'json' });
  });

  it('merges runtime tables key by key and derives each runtime root from runroot', () => {
    writeFileSync(main, 'runroot = "/run/other"\n[runtimes.kata]\npath = "/usr/bin/kata-runtime"\n');
    dropIn('50-runc.toml', '[runtimes.runc]\nroot = "/run/runc"\n');
    const { config } = load();
    expect(Object.keys(config.runtimes).sort()).to.deep.equal(['crun', 'kata', 'runc']);
    expect(config.runtimes.kata).to.deep.equal({ path: '/usr/bin/kata-runtime', root: '/run/other/kata', type: 'oci' });
    expect(config.runtimes.runc).to.deep.equal({ path: '/usr/bin/runc', root: '/run/runc', type: 'oci' });
  });

  it('lets flags override every file', () => {
    writeFileSync(main, 'listen = "/run/a.sock"\n[log]\nlevel = "warn"\n');
    const { config } = load({ listen: 'unix:///run/b.sock', root: '/srv/root', runroot: '/srv/run', logLevel: 'debug', logFormat: 'text' });
    expect(config.listen).to.equal('/run/b.sock');
    expect(config.root).to.equal('/srv/root');
    expect(config.runtimes.runc?.root).to.equal('/srv/run/runc');
    expect(config.log).to.deep.equal({ level: 'debug', format: 'text' });
  });

  it('names the file and the key of an unknown key', () => {
    dropIn('30-typo.toml', '[log]\nlevle = "debug"\n');
    const problems = problemsOf(() => load({}, false));
    expect(problems).to.have.length(1);
    expect(problems[0]).to.equal(`${join(dir, 'cradle.d', '30-typo.toml')}: log.levle: unknown key (known keys in [log]: level, format)`);
  });

  it('says what was expected and what was found for a wrong type', () => {
    writeFileSync(main, 'cgroup_manager = "systemd-ish"\n[streaming]\nport = "10010"\n[cni]\nbin_dirs = "/opt/cni/bin"\n');
    const problems = problemsOf(() => load());
    expect(problems).to.have.members([
      `${main}: cgroup_manager: expected one of "cgroupfs", "systemd", found the string "systemd-ish"`,
      `${main}: cni.bin_dirs: expected an array of non-empty strings, found the string "/opt/cni/bin"`,
      `${main}: streaming.port: expected a whole number from 0 to 65535, found the string "10010"`,
    ]);
  });

  it('reports relative paths, bad durations and a default runtime that is not configured', () => {
    writeFileSync(main, 'root = "var/lib/cradle"\nshutdown_timeout = "ten seconds"\n');
    expect(problemsOf(() => load())).to.deep.equal([
      `${main}: root: expected an absolute path, found the string "var/lib/cradle"`,
      `${main}: shutdown_timeout: expected a duration such as "90s", "1m30s" or "4h", found the string "ten seconds"`,
    ]);
    writeFileSync(main, 'default_runtime = "kata"\n');
    expect(problemsOf(() => load())[0]).to.equal('effective config: default_runtime: expected one of the configured runtimes (runc, crun), found "kata"');
  });

  it('takes a tracing endpoint only as an http(s) URL, and a sampling rate per million', () => {
    writeFileSync(main, '[tracing]\nendpoint = "127.0.0.1:4318"\nsampling_rate_per_million = 2000000\n');
    expect(problemsOf(() => load())).to.have.members([
      `${main}: tracing.endpoint: expected an http:// or https:// URL, found the string "127.0.0.1:4318"`,
      `${main}: tracing.sampling_rate_per_million: expected a whole number from 0 to 1000000, found the number 2000000`,
    ]);
    writeFileSync(main, '[tracing]\nendpoint = "http://127.0.0.1:4318/v1/traces"\n');
    expect(load().config.tracing).to.deep.equal({ endpoint: 'http://127.0.0.1:4318/v1/traces', sampling_rate_per_million: 1_000_000 });
  });

  it('checks default ulimits when the config loads', () => {
    writeFileSync(main, '[containers]\ndefault_ulimits = ["nofile=10:5"]\n');
    expect(problemsOf(() => load())[0]).to.equal('effective config: containers.default_ulimits: ulimit "nofile=10:5": the soft limit is above the hard one');
  });

  it('names the file of a TOML syntax error', () => {
    writeFileSync(main, '[log\nlevel = 1\n');
    const problems = problemsOf(() => load());
    expect(problems[0]).to.match(new RegExp(`^${main.replace(/[.]/g, '\\.')}: not valid TOML: `));
  });

  it('ships an embedded default that is itself complete and valid', () => {
    const parsed = parseToml(DEFAULT_CONFIG_TOML) as Record<string, unknown>;
    expect(Object.keys(parsed)).to.include.members(['root', 'runroot', 'listen', 'log', 'runtimes', 'cni', 'image', 'streaming']);
    expect(defaultConfig().cgroup_manager).to.equal('cgroupfs');
  });

  describe('reload plan', () => {
    it('applies live keys, keeps restart-only keys and says which is which', () => {
      const current = defaultConfig();
      const next = structuredClone(current);
      next.log.level = 'debug';
      next.listen = '/run/elsewhere.sock';
      next.cni.conf_dir = '/etc/other-cni';
      const plan = planReload(current, next);
      expect(plan.applied).to.deep.equal([{ key: 'log.level', before: 'info', after: 'debug' }]);
      expect(plan.needsRestart.map((c) => c.key)).to.deep.equal(['cni.conf_dir', 'listen']);
      expect(plan.effective.log.level).to.equal('debug');
      expect(plan.effective.listen).to.equal(current.listen);
      expect(plan.effective.cni.conf_dir).to.equal(current.cni.conf_dir);
    });

    it('finds nothing to do when nothing changed', () => {
      const plan = planReload(defaultConfig(), defaultConfig());
      expect(plan.applied).to.deep.equal([]);
      expect(plan.needsRestart).to.deep.equal([]);
    });
  });
});
