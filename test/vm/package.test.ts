import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { packageRoot } from '../../core/package-info.js';
import { CriClient } from '../../cri/client.js';
import { ContainerState, NamespaceMode } from '../../cri/generated/api.js';
import { busyboxEntries, OciLayout } from '../support/oci-image.js';
import { podConfig } from '../support/pods.js';
import { run, spawnTracked } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

const SOCKET = '/run/cradle/cradle.sock';
const IMAGE = '127.0.0.1:5055/test/busybox:v1';

/**
 * The .deb as an operator installs it, under the guest's systemd (PID 1):
 * Type=notify readiness, restarts that keep containers, reload, the
 * watchdog, removal that keeps containers and their data, purge. The
 * package is built from this checkout before the guest boots (lane.ts).
 */
describe('the Debian package under systemd', function () {
  this.timeout(900_000);
  const work = '/var/tmp/cradle-package-test';
  let registry: ChildProcess | undefined;
  const sh = async (command: string, ...args: string[]) => {
    const r = await run(command, args, { timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${String(r.code)}: ${r.stderr}${r.stdout}`);
    return r.stdout.trim();
  };
  const withCri = async <T>(fn: (c: CriClient) => Promise<T>) => {
    const c = new CriClient(SOCKET);
    try {
      return await fn(c);
    } finally {
      c.close();
    }
  };
  const mainPid = async () => Number(await sh('systemctl', 'show', '-p', 'MainPID', '--value', 'cradle.service'));
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };

  before(async () => {
    // A registry on the guest's own loopback, where the packaged daemon (in the guest's network namespace) pulls
    // from; not on 5000, where Debian's docker-registry package runs its own.
    mkdirSync(work, { recursive: true });
    writeFileSync(
      join(work, 'registry.yml'),
      `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${work}/registry\nhttp:\n  addr: 127.0.0.1:5055\n`,
    );
    registry = spawnTracked('docker-registry', ['serve', join(work, 'registry.yml')], { stdio: 'ignore' });
    const layout = new OciLayout(join(work, 'layout'));
    layout.tag('v1', layout.image([{ entries: busyboxEntries() }], { Cmd: ['sh'], Env: ['PATH=/bin'] }));
    let last = '';
    await waitFor(
      'the registry to take the image',
      async () => {
        const r = await run('skopeo', [
          'copy',
          '--insecure-policy',
          '--dest-tls-verify=false',
          '--preserve-digests',
          `oci:${layout.dir}:v1`,
          `docker://${IMAGE}`,
        ]);
        last = r.stderr;
        return r.code === 0 ? true : undefined;
      },
      120_000,
      500,
    ).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${last}`);
    });
  });

  after(async () => {
    await run('dpkg', ['--purge', 'cradle'], { timeoutMs: 300_000 });
    rmSync('/etc/systemd/system/cradle.service.d', { recursive: true, force: true });
    registry?.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('installs, is ready when systemctl start returns, keeps containers across restart and removal, reloads, and is restarted by its watchdog when wedged', async () => {
    const deb = readdirSync(join(packageRoot, 'build')).find((f) => f.endsWith('.deb'));
    expect(deb, 'the lane builds the package first').to.be.a('string');
    // As the README says: apt installs a local package offline when its dependencies are here.
    // Type=notify: the install's `systemctl start` returns once every RPC is answered. dpkg runs the
    // maintainer scripts as apt-get would (apt adds minutes of index reading under emulation).
    await sh('dpkg', '-i', join(packageRoot, 'build', deb as string));
    expect(await sh('systemctl', 'is-active', 'cradle.service')).to.equal('active');
    await withCri((c) => c.runtime.call('ListPodSandbox', {}, { timeoutMs: 5_000 }));
    expect(await sh('cradle', 'status')).to.match(/^runtime ready: {4}yes$/m);

    // systemctl reload: a drop-in read again, without a restart.
    const before = await mainPid();
    writeFileSync('/etc/cradle/cradle.d/50-test.toml', '[image]\ninsecure_registries = ["127.0.0.1:5055"]\n');
    await sh('systemctl', 'reload', 'cradle.service');
    await waitFor('the reloaded config', async () => {
      const s = await withCri((c) => c.runtime.call('Status', { verbose: true }, { timeoutMs: 30_000 }));
      return (JSON.parse(s.info.config ?? '{}') as { image?: { insecure_registries?: string[] } }).image?.insecure_registries?.includes('127.0.0.1:5055')
        ? true
        : undefined;
    });
    expect(await mainPid()).to.equal(before);

    const { pod, container, pid } = await withCri(async (c) => {
      await c.image.call('PullImage', { image: { image: IMAGE } }, { timeoutMs: 120_000 });
      const config = podConfig('packaged', { linux: { security_context: { namespace_options: { network: NamespaceMode.NODE } } } });
      const podId = (await c.runtime.call('RunPodSandbox', { config })).pod_sandbox_id;
      const id = (
        await c.runtime.call('CreateContainer', {
          pod_sandbox_id: podId,
          config: { metadata: { name: 'sleeper' }, image: { image: IMAGE }, command: ['sleep', '3600'], log_path: 'sleeper.log' },
          sandbox_config: config,
        })
      ).container_id;
      await c.runtime.call('StartContainer', { container_id: id });
      const status = await c.runtime.call('ContainerStatus', { container_id: id, verbose: true });
      return { pod: podId, container: id, pid: (JSON.parse(status.info.info ?? '{}') as { pid: number }).pid };
    });
    expect(alive(pid)).to.equal(true);
    const running = () => withCri(async (c) => (await c.runtime.call('ContainerStatus', { container_id: container }, { timeoutMs: 30_000 })).status?.state);

    // A restart keeps the container (KillMode=process), and the new daemon finds it. The restarted
    // daemon has the test-only switch, for the watchdog below.
    mkdirSync('/etc/systemd/system/cradle.service.d', { recursive: true });
    writeFileSync('/etc/systemd/system/cradle.service.d/90-test.conf', '[Service]\nEnvironment=CRADLE_TEST_BLOCK_EVENT_LOOP_ON=SIGUSR2\nWatchdogSec=20s\n');
    await sh('systemctl', 'daemon-reload');
    await sh('systemctl', 'restart', 'cradle.service');
    expect(await running()).to.equal(ContainerState.CONTAINER_RUNNING);
    expect(alive(pid)).to.equal(true);

    // The watchdog: a daemon whose event loop is blocked stops pinging, and systemd restarts it.
    const wedged = await mainPid();
    process.kill(wedged, 'SIGUSR2');
    await waitFor(
      'systemd to restart the wedged daemon',
      async () => {
        const now = await mainPid();
        return now !== wedged && now > 0 && (await sh('systemctl', 'is-active', 'cradle.service').catch(() => '')) === 'active' ? true : undefined;
      },
      300_000,
      1_000,
    );
    expect(await sh('journalctl', '-u', 'cradle.service', '--no-pager', '-q')).to.match(/[Ww]atchdog timeout/);
    expect(await running()).to.equal(ContainerState.CONTAINER_RUNNING);
    rmSync('/etc/systemd/system/cradle.service.d', { recursive: true, force: true });
    await sh('systemctl', 'daemon-reload');

    // Removal stops the daemon and keeps containers and state.
    await sh('dpkg', '--remove', 'cradle');
    expect(await run('systemctl', ['is-active', 'cradle.service']).then((r) => r.stdout.trim())).to.not.equal('active');
    expect(existsSync('/usr/bin/cradle')).to.equal(false);
    expect(existsSync('/var/lib/cradle/containers-records')).to.equal(true);
    expect(alive(pid)).to.equal(true);

    // Installed again, it takes the container back; then the pod goes, and purge takes the state.
    await sh('dpkg', '-i', join(packageRoot, 'build', deb as string));
    expect(await running()).to.equal(ContainerState.CONTAINER_RUNNING);
    await withCri((c) => c.runtime.call('RemovePodSandbox', { pod_sandbox_id: pod }, { timeoutMs: 120_000 }));
    expect(alive(pid)).to.equal(false);
    await sh('dpkg', '--purge', 'cradle');
    expect(existsSync('/var/lib/cradle')).to.equal(false);
    expect(existsSync('/etc/cradle')).to.equal(false);
  });
});
