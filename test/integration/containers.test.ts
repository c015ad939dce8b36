import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { ContainerState, NamespaceMode, SecurityProfile_ProfileType, Signal } from '../../cri/generated/api.js';
import type { ContainerConfig } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import { bridgeConflist, writeConflist } from '../support/cni.js';
import { grpcFailure } from '../support/grpc.js';
import { busyboxEntries, OciLayout } from '../support/oci-image.js';
import { podConfig } from '../support/pods.js';
import { TestRegistry } from '../support/registry.js';
import { TestNode, testConfigToml } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';

const IMAGE = '127.0.0.1:5000/test/busybox:v1';

describe('containers', function () {
  this.timeout(120_000);
  let node: TestNode;
  let registry: TestRegistry;
  let pod: string;
  let logDir: string;

  const rt = () => node.client().runtime;
  const create = async (name: string, extra: Init<ContainerConfig> = {}) =>
    (await rt().call('CreateContainer', { pod_sandbox_id: pod, config: { metadata: { name }, image: { image: IMAGE }, log_path: `${name}/0.log`, ...extra } }))
      .container_id;
  const status = (id: string) => rt().call('ContainerStatus', { container_id: id });
  const exited = (id: string) =>
    waitFor(
      `container ${id.slice(0, 12)} to exit`,
      async () => ((await status(id)).status?.state === ContainerState.CONTAINER_EXITED ? true : undefined),
      20_000,
    );
  const logLines = (name: string) =>
    existsSync(join(logDir, name, '0.log'))
      ? readFileSync(join(logDir, name, '0.log'), 'utf8')
          .split('\n')
          .filter(Boolean)
      : [];

  before(async () => {
    node = await TestNode.create();
    writeFileSync(
      node.configPath,
      testConfigToml(node.dir) +
        '\n[image]\ninsecure_registries = ["127.0.0.1:5000"]\n[containers]\nlog_size_max = "1Mi"\ndefault_ulimits = ["nofile=4321:4321"]\n',
    );
    writeConflist(node, bridgeConflist(node));
    registry = new TestRegistry(node);
    await registry.start();
    const layout = new OciLayout(join(node.dir, 'layout'));
    layout.tag('v1', layout.image([{ entries: busyboxEntries() }], { Cmd: ['sh'], Env: ['PATH=/bin', 'FROM_IMAGE=yes'], Volumes: { '/data/cache': {} } }));
    await registry.push(layout.dir, 'v1', 'test/busybox');
    await node.startDaemon();
    await node.client().image.call('PullImage', { image: { image: IMAGE } });
    logDir = join(node.dir, 'logs');
    pod = (await rt().call('RunPodSandbox', { config: podConfig('ctr-pod', { log_directory: logDir }) })).pod_sandbox_id;
  });

  after(async () => {
    await registry?.stop();
    await node?.destroy();
  });

  it('runs a container through its whole lifecycle, with CRI logs and the exit code', async () => {
    const id = await create('hello', { command: ['sh', '-c', 'echo out-line; echo err-line >&2; exit 3'] });
    const created = await status(id);
    expect(created.status?.state).to.equal(ContainerState.CONTAINER_CREATED);
    expect((created.status?.created_at ?? 0n) > 1_700_000_000_000_000_000n).to.equal(true);
    expect(created.status?.started_at).to.equal(0n);
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    const s = (await status(id)).status;
    expect(s?.exit_code).to.equal(3);
    expect(s?.reason).to.equal('Error');
    expect((s?.finished_at ?? 0n) > (s?.started_at ?? 0n)).to.equal(true);
    expect((s?.started_at ?? 0n) > (s?.created_at ?? 0n)).to.equal(true);
    expect(s?.image_ref).to.match(/^sha256:/);
    expect(s?.log_path).to.equal(join(logDir, 'hello', '0.log'));
    const lines = logLines('hello');
    expect(lines.some((l) => /^\S+ stdout F out-line$/.test(l))).to.equal(true);
    expect(lines.some((l) => /^\S+ stderr F err-line$/.test(l))).to.equal(true);
    const again = await grpcFailure(rt().call('StartContainer', { container_id: id }));
    expect(again.code).to.equal(Code.FAILED_PRECONDITION);
    await rt().call('RemoveContainer', { container_id: id });
    expect((await grpcFailure(status(id))).code).to.equal(Code.NOT_FOUND);
  });

  it('splits long lines into partial (P) entries ending with a full (F) one', async () => {
    const id = await create('long', { command: ['sh', '-c', 'head -c 40000 /dev/zero | tr "\\0" x; echo; echo short'] });
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    const lines = logLines('long');
    const partial = lines.filter((l) => / stdout P x+$/.test(l));
    const full = lines.filter((l) => / stdout F x*$/.test(l));
    expect(partial.length).to.be.greaterThan(0);
    const text = [...partial, full[0] ?? ''].map((l) => l.split(' ').slice(3).join(' ')).join('');
    expect(text).to.equal('x'.repeat(40000));
    expect(lines[lines.length - 1]).to.match(/ stdout F short$/);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('keeps a log file within log_size_max', async () => {
    const id = await create('chatty', {
      command: ['sh', '-c', 'i=0; while [ $i -lt 30000 ]; do echo "line $i of a chatty container, padded to make it longer"; i=$((i+1)); done'],
    });
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    const { statSync } = await import('node:fs');
    expect(statSync(join(logDir, 'chatty', '0.log')).size).to.be.at.most(1024 * 1024);
    expect(logLines('chatty').pop()).to.match(/line 29999 of a chatty container/);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('stops a container with the stop signal it asks for', async () => {
    const id = await create('usr1', {
      command: ['sh', '-c', 'trap "echo got-usr1; exit 0" USR1; trap "" TERM; while true; do sleep 0.1; done'],
      stop_signal: Signal.SIGNAL_SIGUSR1,
    });
    await rt().call('StartContainer', { container_id: id });
    await new Promise((r) => setTimeout(r, 300));
    await rt().call('StopContainer', { container_id: id, timeout: 10n });
    expect((await status(id)).status?.exit_code).to.equal(0);
    expect(logLines('usr1').some((l) => l.endsWith('got-usr1'))).to.equal(true);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('merges image and container env, and reports Completed for exit 0', async () => {
    const id = await create('env', { command: ['sh', '-c', 'echo "$FROM_IMAGE $FROM_POD"'], envs: [{ key: 'FROM_POD', value: Buffer.from('also') }] });
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    expect((await status(id)).status?.reason).to.equal('Completed');
    expect(logLines('env').some((l) => l.endsWith('stdout F yes also'))).to.equal(true);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('stops a running container with its stop signal, then SIGKILL after the grace period', async () => {
    const graceful = await create('graceful', { command: ['sh', '-c', 'trap "echo got-term; exit 0" TERM; while true; do sleep 0.1; done'] });
    const stubborn = await create('stubborn', { command: ['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done'] });
    for (const id of [graceful, stubborn]) await rt().call('StartContainer', { container_id: id });
    await waitFor('running', async () => ((await status(stubborn)).status?.state === ContainerState.CONTAINER_RUNNING ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    await rt().call('StopContainer', { container_id: graceful, timeout: 10n });
    expect((await status(graceful)).status?.exit_code).to.equal(0);
    expect(logLines('graceful').some((l) => l.endsWith('got-term'))).to.equal(true);
    const t0 = Date.now();
    await rt().call('StopContainer', { container_id: stubborn, timeout: 1n });
    expect(Date.now() - t0).to.be.within(900, 45_000);
    expect((await status(stubborn)).status?.exit_code).to.equal(137);
    await rt().call('StopContainer', { container_id: stubborn, timeout: 1n }); // idempotent
    for (const id of [graceful, stubborn]) await rt().call('RemoveContainer', { container_id: id });
  });

  it('runs as the requested user, with the capabilities asked for and the configured ulimits', async () => {
    const id = await create('whoami', {
      command: ['sh', '-c', 'id; grep CapBnd /proc/self/status; echo "nofile $(ulimit -n)"'],
      linux: { security_context: { run_as_user: { value: 1000n }, capabilities: { drop_capabilities: ['ALL'] } } },
    });
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    const out = logLines('whoami').join('\n');
    expect(out).to.match(/uid=1000\(user\) gid=1000\(user\)/);
    expect(out).to.match(/CapBnd:\s+0000000000000000/);
    expect(out).to.contain('nofile 4321');
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('blocks with the RuntimeDefault seccomp profile and a Localhost one what Unconfined allows', async () => {
    const run = async (name: string, seccomp: object) => {
      const id = await create(name, { command: ['sh', '-c', 'unshare -U true && echo allowed || echo blocked'], linux: { security_context: { seccomp } } });
      await rt().call('StartContainer', { container_id: id });
      await exited(id);
      await rt().call('RemoveContainer', { container_id: id });
      return logLines(name).map((l) => l.split(' ').pop());
    };
    expect(await run('seccomp-unconfined', { profile_type: SecurityProfile_ProfileType.Unconfined })).to.include('allowed');
    expect(await run('seccomp-default', { profile_type: SecurityProfile_ProfileType.RuntimeDefault })).to.include('blocked');
    // A node's own profile: everything but unshare.
    const profile = join(node.dir, 'no-unshare.json');
    writeFileSync(profile, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['unshare'], action: 'SCMP_ACT_ERRNO' }] }));
    expect(await run('seccomp-localhost', { profile_type: SecurityProfile_ProfileType.Localhost, localhost_ref: profile })).to.include('blocked');
    const missing = await grpcFailure(
      create('seccomp-missing', {
        linux: { security_context: { seccomp: { profile_type: SecurityProfile_ProfileType.Localhost, localhost_ref: '/nonexistent/profile.json' } } },
      }),
    );
    expect(missing.code).to.equal(Code.INVALID_ARGUMENT);
    expect(missing.details).to.contain('/nonexistent/profile.json');
  });

  it('runs containers that ask for AppArmor and SELinux on a host with neither, setting no labels the runtime would refuse', async () => {
    // This host has neither module (checked, so the test cannot pass by accident on one that has them).
    expect(existsSync('/sys/kernel/security/apparmor') && readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').startsWith('Y')).to.equal(false);
    expect(existsSync('/sys/fs/selinux/enforce')).to.equal(false);
    const id = await create('lsm', {
      command: ['sh', '-c', 'echo confined-or-not'],
      linux: {
        security_context: {
          apparmor: { profile_type: SecurityProfile_ProfileType.Localhost, localhost_ref: 'localhost/custom' },
          selinux_options: { user: '', role: '', type: 'container_t', level: 's0:c1,c2' },
        },
      },
    });
    const spec = JSON.parse(readFileSync(join(node.dir, 'run', 'containers', id, 'config.json'), 'utf8')) as { process: object; linux: object };
    expect(spec.process).to.not.have.any.keys('apparmorProfile', 'selinuxLabel');
    expect(spec.linux).to.not.have.any.keys('mountLabel');
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    expect((await status(id)).status?.exit_code).to.equal(0);
    await rt().call('RemoveContainer', { container_id: id });
    const bad = await grpcFailure(create('lsm-bad', { linux: { security_context: { apparmor_profile: 'docker-default' } } }));
    expect(bad.code).to.equal(Code.INVALID_ARGUMENT);
  });

  it('maps devices, and makes the image volumes exist', async () => {
    const id = await create('devices', {
      command: ['sh', '-c', 'echo hi > /dev/mynull && echo wrote-device; ls -ln /dev/mynull; test -d /data/cache && echo volume-dir'],
      devices: [{ container_path: '/dev/mynull', host_path: '/dev/null', permissions: 'rwm' }],
    });
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    const out = logLines('devices').join('\n');
    expect(out).to.contain('wrote-device');
    expect(out).to.match(/c.* 1, +3 .*\/dev\/mynull/);
    expect(out).to.contain('volume-dir');
    await rt().call('RemoveContainer', { container_id: id });
    const bad = await grpcFailure(create('nodevice', { devices: [{ container_path: '/dev/x', host_path: '/etc/passwd', permissions: 'rw' }] }));
    expect(bad.code).to.equal(Code.INVALID_ARGUMENT);
    expect(bad.details).to.contain('is not a device node');
  });

  it('joins the PID namespace of a target container', async () => {
    const isolated = (
      await rt().call('RunPodSandbox', {
        config: podConfig('pid-target', { log_directory: logDir, linux: { security_context: { namespace_options: { pid: NamespaceMode.CONTAINER } } } }),
      })
    ).pod_sandbox_id;
    const run = async (name: string, extra: Init<ContainerConfig>) => {
      const id = (
        await rt().call('CreateContainer', {
          pod_sandbox_id: isolated,
          config: { metadata: { name }, image: { image: IMAGE }, log_path: `${name}/0.log`, ...extra },
        })
      ).container_id;
      await rt().call('StartContainer', { container_id: id });
      return id;
    };
    const target = await run('target', { command: ['sleep', '303'] });
    const own = await run('own', { command: ['sleep', '304'] });
    const joined = await run('joined', {
      command: ['sleep', '305'],
      linux: { security_context: { namespace_options: { pid: NamespaceMode.TARGET, target_id: target } } },
    });
    const ps = (id: string) =>
      rt()
        .call('ExecSync', { container_id: id, cmd: ['ps', '-o', 'args'], timeout: 10n })
        .then((r) => Buffer.from(r.stdout).toString());
    expect(await ps(joined)).to.contain('sleep 303');
    expect(await ps(own)).not.to.contain('sleep 303');
    await rt().call('RemovePodSandbox', { pod_sandbox_id: isolated });
  });

  it('gives a privileged container the host devices, every capability and no seccomp', async () => {
    const id = await create('privileged', {
      command: ['sh', '-c', 'test -b /dev/loop0 && echo has-loop; grep CapEff /proc/self/status; grep Seccomp: /proc/self/status'],
      linux: { security_context: { privileged: true, seccomp: { profile_type: SecurityProfile_ProfileType.RuntimeDefault } } },
    });
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    const out = logLines('privileged').join('\n');
    expect(out).to.contain('has-loop');
    // Everything the daemon itself holds (the test runs with the same bounding set).
    const own = /CapBnd:\s+([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    expect(out).to.match(new RegExp(`CapEff:\\s+${own}`));
    expect(out).to.match(/Seccomp:\s+0/);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('makes a recursive read-only mount read-only in its submounts too', async () => {
    const host = join(node.dir, 'rro-src');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(host, 'sub'), { recursive: true });
    // A tmpfs below the mounted directory, in the node's mount namespace where the daemon runs.
    expect((await node.exec('mount', ['-t', 'tmpfs', 'tmpfs', join(host, 'sub')])).code).to.equal(0);
    try {
      const attempt = async (name: string, rro: boolean) => {
        const id = await create(name, {
          command: ['sh', '-c', 'touch /data/sub/x && echo wrote || echo refused'],
          mounts: [{ container_path: '/data', host_path: host, readonly: true, recursive_read_only: rro }],
        });
        await rt().call('StartContainer', { container_id: id });
        await exited(id);
        await rt().call('RemoveContainer', { container_id: id });
        // stdout and stderr interleave in the log: look for the verdict on stdout.
        return logLines(name)
          .find((l) => / stdout F (wrote|refused)$/.test(l))
          ?.split(' ')
          .pop();
      };
      expect(await attempt('plain-ro', false)).to.equal('wrote');
      expect(await attempt('rro', true)).to.equal('refused');
      const bad = await grpcFailure(create('rro-rw', { mounts: [{ container_path: '/data', host_path: host, readonly: false, recursive_read_only: true }] }));
      expect(bad.code).to.equal(Code.INVALID_ARGUMENT);
    } finally {
      await node.exec('umount', [join(host, 'sub')]);
    }
  });

  it('refuses writes to a read-only root filesystem', async () => {
    const id = await create('ro', {
      command: ['sh', '-c', 'touch /newfile && echo wrote || echo refused'],
      linux: { security_context: { readonly_rootfs: true } },
    });
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    expect(logLines('ro').some((l) => l.endsWith('refused'))).to.equal(true);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('refuses a missing host path and a log path outside the pod log directory, leaving nothing', async () => {
    const rootfsMounts = () =>
      node
        .mountinfo()
        .split('\n')
        .filter((l) => l.includes(join(node.dir, 'root', 'containers')));
    const before = rootfsMounts();
    const missing = await grpcFailure(create('badmount', { mounts: [{ container_path: '/data', host_path: '/nonexistent/cradle' }] }));
    expect(missing.code).to.equal(Code.INVALID_ARGUMENT);
    expect(missing.details).to.contain('/nonexistent/cradle');
    const escaping = await grpcFailure(create('badlog', { log_path: '../../etc/evil.log' }));
    expect(escaping.code).to.equal(Code.INVALID_ARGUMENT);
    expect(
      (await rt().call('ListContainers', { filter: { label_selector: {} } })).containers.filter((c) => ['badmount', 'badlog'].includes(c.metadata?.name ?? '')),
    ).to.deep.equal([]);
    expect(rootfsMounts()).to.deep.equal(before);
  });

  it('replaces a symlink at the log path instead of writing through it', async () => {
    const { mkdirSync, symlinkSync, lstatSync } = await import('node:fs');
    const victim = join(node.dir, 'not-a-log');
    writeFileSync(victim, 'keep\n');
    mkdirSync(join(logDir, 'linked'), { recursive: true });
    symlinkSync(victim, join(logDir, 'linked', '0.log'));
    symlinkSync('/nonexistent/dir/x.log', join(logDir, 'linked', '1.log'));
    for (const attempt of [0, 1]) {
      const id = await create(`linked`, { command: ['echo', `written-${attempt}`], log_path: `linked/${attempt}.log` });
      await rt().call('StartContainer', { container_id: id });
      await exited(id);
      const log = join(logDir, 'linked', `${attempt}.log`);
      expect(lstatSync(log).isFile()).to.equal(true);
      expect(readFileSync(log, 'utf8')).to.match(new RegExp(` stdout F written-${attempt}\n`));
      await rt().call('RemoveContainer', { container_id: id });
    }
    expect(readFileSync(victim, 'utf8')).to.equal('keep\n');
  });

  it('lists containers by pod, state and label, and keeps them across a daemon restart', async () => {
    const sleeper = await create('sleeper', { command: ['sleep', '300'], labels: { role: 'sleeper' } });
    await rt().call('StartContainer', { container_id: sleeper });
    const running = await rt().call('ListContainers', { filter: { pod_sandbox_id: pod, state: { state: ContainerState.CONTAINER_RUNNING } } });
    expect(running.containers.map((c) => c.id)).to.deep.equal([sleeper]);
    expect((await rt().call('ListContainers', { filter: { label_selector: { role: 'sleeper' } } })).containers).to.have.length(1);
    expect((await rt().call('ListContainers', { filter: { state: { state: ContainerState.CONTAINER_UNKNOWN } } })).containers).to.deep.equal([]);
    await node.stopDaemon('SIGKILL');
    await node.startDaemon();
    expect((await status(sleeper)).status?.state).to.equal(ContainerState.CONTAINER_RUNNING);
    await rt().call('StopContainer', { container_id: sleeper, timeout: 0n });
    expect((await status(sleeper)).status?.exit_code).to.equal(137);
    await rt().call('RemoveContainer', { container_id: sleeper });
  });

  it('runs ExecSync commands, with output and exit codes, and kills them on timeout', async () => {
    const id = await create('exec-target', { command: ['sleep', '300'] });
    await rt().call('StartContainer', { container_id: id });
    const ok = await rt().call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'echo to-out; echo to-err >&2; exit 7'], timeout: 10n });
    expect(Buffer.from(ok.stdout).toString()).to.equal('to-out\n');
    expect(Buffer.from(ok.stderr).toString()).to.equal('to-err\n');
    expect(ok.exit_code).to.equal(7);
    const t0 = Date.now();
    const slow = await grpcFailure(rt().call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'echo $$ > /tmp/exec.pid; sleep 60'], timeout: 1n }));
    expect(slow.code).to.equal(Code.DEADLINE_EXCEEDED);
    expect(Date.now() - t0).to.be.below(45_000);
    // Killed, with what it started; a dead one may linger as a zombie until it is reaped.
    const live = await rt().call('ExecSync', { container_id: id, cmd: ['ps', '-o', 'stat,args'], timeout: 10n });
    const sleeps = Buffer.from(live.stdout)
      .toString()
      .split('\n')
      .filter((l) => /sleep 60/.test(l) && !l.trim().startsWith('Z'));
    expect(sleeps).to.deep.equal([]);
    await rt().call('StopContainer', { container_id: id, timeout: 0n });
    expect((await grpcFailure(rt().call('ExecSync', { container_id: id, cmd: ['true'] }))).code).to.equal(Code.FAILED_PRECONDITION);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('reports CPU and memory for a busy container, and changes its memory limit live', async () => {
    const id = await create('busy', { command: ['sh', '-c', 'while true; do :; done'] });
    await rt().call('StartContainer', { container_id: id });
    await new Promise((r) => setTimeout(r, 500));
    await rt().call('ContainerStats', { container_id: id });
    await new Promise((r) => setTimeout(r, 300));
    const stats = (await rt().call('ContainerStats', { container_id: id })).stats;
    expect(Number(stats?.cpu?.usage_core_nano_seconds?.value)).to.be.greaterThan(100_000_000);
    expect(Number(stats?.cpu?.usage_nano_cores?.value)).to.be.greaterThan(100_000_000);
    expect(Number(stats?.memory?.working_set_bytes?.value)).to.be.greaterThan(0);
    expect(stats?.attributes?.id).to.equal(id);
    const list = await rt().call('ListContainerStats', { filter: { pod_sandbox_id: pod } });
    expect(list.stats.map((x) => x.attributes?.id)).to.include(id);
    const podStats = (await rt().call('PodSandboxStats', { pod_sandbox_id: pod })).stats;
    expect(podStats?.attributes?.id).to.equal(pod);
    expect(Number(podStats?.linux?.cpu?.usage_core_nano_seconds?.value)).to.be.greaterThan(100_000_000);
    expect(Number(podStats?.linux?.process?.process_count?.value)).to.be.greaterThan(0);
    expect(podStats?.linux?.network?.default_interface?.name).to.equal('eth0');
    expect(podStats?.linux?.containers.map((x) => x.attributes?.id)).to.include(id);
    const allPods = await rt().call('ListPodSandboxStats', {});
    expect(allPods.stats.map((x) => x.attributes?.id)).to.include(pod);
    // No limit yet: nothing to be available against.
    expect(stats?.memory?.available_bytes).to.equal(undefined);
    // The host accounts swap (memory.memsw.*), so usage is reported, 0 or more.
    expect(stats?.swap?.swap_usage_bytes?.value).to.be.a('bigint');
    await rt().call('UpdateContainerResources', { container_id: id, linux: { memory_limit_in_bytes: 64n * 1024n * 1024n } });
    const limit = readFileSync(`/sys/fs/cgroup/memory/cradle/cradle-${id}/memory.limit_in_bytes`, 'utf8').trim();
    expect(limit).to.equal(String(64 * 1024 * 1024));
    const limited = (await rt().call('ContainerStats', { container_id: id })).stats?.memory;
    expect((limited?.available_bytes?.value ?? 0n) + (limited?.working_set_bytes?.value ?? 0n)).to.equal(64n * 1024n * 1024n);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('answers stats from the last collection while stats.collection_period is set, reading what it lacks', async () => {
    const cpuAt = async (id: string) =>
      (await rt().call('ListContainerStats', { filter: { pod_sandbox_id: pod } })).stats.find((s) => s.attributes?.id === id)?.cpu?.timestamp;
    const reload = async (period: string) => {
      const before = node.daemon.log().length;
      writeFileSync(node.configPath, `${readFileSync(node.configPath, 'utf8').replace(/\n\[stats\][^[]*/, '')}\n[stats]\ncollection_period = "${period}"\n`);
      node.daemon.process.kill('SIGHUP');
      await waitFor('the reload', () => (node.daemon.log().slice(before).includes('"key":"stats.collection_period"') ? true : undefined));
    };
    const first = await create('collected', { command: ['sleep', '600'] });
    await rt().call('StartContainer', { container_id: first });
    // Read on each call: every answer is a new reading.
    const t0 = await cpuAt(first);
    await waitFor('a new reading', async () => ((await cpuAt(first)) !== t0 ? true : undefined));

    // A period far longer than the test: the pass made on reload is the one every answer comes from.
    await reload('1h');
    const collected = await waitFor('answers from one collection', async () => {
      const [a, b] = [await cpuAt(first), await cpuAt(first)];
      return a !== undefined && a === b ? a : undefined;
    });
    const second = await create('uncollected', { command: ['sleep', '600'] });
    await rt().call('StartContainer', { container_id: second });
    const list = (await rt().call('ListContainerStats', { filter: { pod_sandbox_id: pod } })).stats;
    // The container started after the pass is read there and then; the other keeps its collected figures.
    const late = list.find((s) => s.attributes?.id === second);
    expect((late?.cpu?.timestamp ?? 0n) > collected, 'read after the pass').to.equal(true);
    expect(Number(late?.memory?.working_set_bytes?.value)).to.be.greaterThan(0);
    expect(list.find((s) => s.attributes?.id === first)?.cpu?.timestamp).to.equal(collected);
    expect((await rt().call('ContainerStats', { container_id: first })).stats?.cpu?.timestamp).to.equal(collected);
    const podStats = (await rt().call('ListPodSandboxStats', { filter: { id: pod } })).stats[0];
    expect(podStats?.linux?.containers.map((c) => c.attributes?.id)).to.include.members([first, second]);

    // Off again: read on each call from the reload on.
    await reload('0s');
    const t1 = await cpuAt(first);
    expect((t1 ?? 0n) > collected, 'read after the reload').to.equal(true);
    await waitFor('a new reading', async () => ((await cpuAt(first)) !== t1 ? true : undefined));
    for (const id of [first, second]) await rt().call('RemoveContainer', { container_id: id });
  });

  it('reopens the log file after kubelet rotated it, and refuses for a stopped container', async () => {
    const id = await create('rotate', { command: ['sh', '-c', 'i=0; while true; do echo line-$i; i=$((i+1)); sleep 0.1; done'] });
    await rt().call('StartContainer', { container_id: id });
    const log = join(logDir, 'rotate', '0.log');
    await waitFor('a first line', () => (logLines('rotate').length > 0 ? true : undefined));
    const { renameSync } = await import('node:fs');
    renameSync(log, `${log}.1`);
    await rt().call('ReopenContainerLog', { container_id: id });
    // kubelet looks for the new file as soon as the call returns.
    expect(existsSync(log)).to.equal(true);
    await waitFor('lines in the new file', () => (logLines('rotate').length > 0 ? true : undefined), 30_000);
    await rt().call('StopContainer', { container_id: id, timeout: 0n });
    renameSync(log, `${log}.2`);
    expect((await grpcFailure(rt().call('ReopenContainerLog', { container_id: id }))).code).to.equal(Code.FAILED_PRECONDITION);
    expect(existsSync(log)).to.equal(false);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('reports OOMKilled when the memory limit is exceeded', async () => {
    const id = await create('oom', {
      command: ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'],
      linux: { resources: { memory_limit_in_bytes: 16n * 1024n * 1024n } },
    });
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    const s = (await status(id)).status;
    expect(s?.reason).to.equal('OOMKilled');
    expect(s?.exit_code).to.equal(137);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('lets containers of a pod with a shared PID namespace see each other', async () => {
    const a = await create('pid-a', { command: ['sleep', '301'] });
    const b = await create('pid-b', { command: ['sleep', '302'] });
    for (const id of [a, b]) await rt().call('StartContainer', { container_id: id });
    const ps = await rt().call('ExecSync', { container_id: b, cmd: ['ps', '-o', 'args'], timeout: 10n });
    const out = Buffer.from(ps.stdout).toString();
    expect(out).to.contain('sleep 301');
    expect(out).to.contain('sleep 302');
    expect(out).to.contain('catatonit');
    for (const id of [a, b]) await rt().call('RemoveContainer', { container_id: id });
  });

  it('records an exit that happened while the daemon was down', async () => {
    const id = await create('while-down', { command: ['sh', '-c', 'sleep 1; exit 4'] });
    await rt().call('StartContainer', { container_id: id });
    await node.stopDaemon('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    await node.startDaemon();
    await exited(id);
    expect((await status(id)).status?.exit_code).to.equal(4);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it("reports the containers' writable layers in ImageFsInfo", async () => {
    const id = await create('writer', { command: ['sh', '-c', 'head -c 300000 /dev/zero > /big; sleep 300'] });
    await rt().call('StartContainer', { container_id: id });
    await waitFor('the file', async () => {
      const r = await rt().call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'wc -c < /big'], timeout: 5n });
      return Buffer.from(r.stdout).toString().trim() === '300000' ? true : undefined;
    });
    const fs = (await node.client().image.call('ImageFsInfo', {})).container_filesystems[0];
    expect(fs?.fs_id?.mountpoint).to.equal(join(node.dir, 'root', 'containers'));
    expect(Number(fs?.used_bytes?.value)).to.be.greaterThan(300_000);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('shows every container exited after a reboot, and removes them cleanly', async () => {
    const id = await create('rebooted', { command: ['sleep', '300'] });
    await rt().call('StartContainer', { container_id: id });
    await node.reboot();
    await node.startDaemon();
    const s = (await status(id)).status;
    expect(s?.state).to.equal(ContainerState.CONTAINER_EXITED);
    expect(s?.message).to.contain('restarted');
    await rt().call('RemoveContainer', { container_id: id });
    expect((await grpcFailure(status(id))).code).to.equal(Code.NOT_FOUND);
  });

  it("stops and removes a pod's containers with the pod", async () => {
    // A fresh pod: the reboot before left the shared one NOTREADY.
    pod = (await rt().call('RunPodSandbox', { config: podConfig('ctr-pod-2', { log_directory: logDir }) })).pod_sandbox_id;
    const id = await create('with-pod', { command: ['sleep', '300'] });
    await rt().call('StartContainer', { container_id: id });
    await rt().call('StopPodSandbox', { pod_sandbox_id: pod });
    expect((await status(id)).status?.state).to.equal(ContainerState.CONTAINER_EXITED);
    await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
    expect((await grpcFailure(status(id))).code).to.equal(Code.NOT_FOUND);
  });
});
