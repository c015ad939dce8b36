import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { CgroupDriver, ContainerState } from '../../cri/generated/api.js';
import type { ContainerConfig } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import { BUSYBOX_IMAGE as IMAGE, busyboxNode } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { podConfig } from '../support/pods.js';
import { PROPAGATION_CASES, propagationSeen, sharedSource } from '../support/propagation.js';
import { OciRuntime } from '../../runtime/oci-runtime.js';
import { run } from '../support/processes.js';
import type { TestRegistry } from '../support/registry.js';
import type { TestNode } from '../support/test-node.js';
import { sleep, waitFor } from '../support/wait.js';

/**
 * Runs in the VM lane's guest: systemd 252 as PID 1, a pure cgroup v2
 * hierarchy. Each cgroup driver gets a daemon; each runs containers with
 * both OCI runtimes. Limits, stats, OOM kills and clean-up are checked in
 * the cgroup files themselves.
 */

const CGROUP_ROOT = '/sys/fs/cgroup';
const MiB = 1024n * 1024n;

/** The cgroup (below the v2 root) a process is in. */
function cgroupOf(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'));
  if (!line) throw new Error(`process ${pid} is not in a cgroup v2 hierarchy`);
  return line.slice(3);
}

/**
 * A limit set for the container: runc writes it on the container's own
 * cgroup, crun (systemd driver) on the `container` cgroup it makes inside
 * the scope and leaves the scope unlimited. Either level counts.
 */
function limitsAround(cgroup: string, file: string): string[] {
  const levels = [cgroup, join(cgroup, '..')];
  return levels.map((dir) => {
    try {
      return readFileSync(join(CGROUP_ROOT, dir, file), 'utf8').trim();
    } catch {
      return '';
    }
  });
}

/** Empty cgroups a cgroupfs-driver test left in the v2 hierarchy, deepest first. */
function removeEmptyTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) removeEmptyTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // in use
  }
}

expect(existsSync(join(CGROUP_ROOT, 'cgroup.controllers')), 'the VM lane needs a pure cgroup v2 host').to.equal(true);

for (const driver of ['systemd', 'cgroupfs'] as const) {
  describe(`cgroup v2 with the ${driver} driver`, function () {
    this.timeout(300_000);
    let node: TestNode;
    let registry: TestRegistry;
    let pods = 0;
    const rt = () => node.client().runtime;
    /** A pod uid as kubelet has them: a UUID, whose dashes become underscores in systemd unit names. */
    const uidOf = (n: number) => `0c7d9f6e-1a2b-4c3d-8e9f-${String(n).padStart(12, '0')}`;
    const qosOf = (n: number) => (['besteffort', 'burstable', 'guaranteed'] as const)[n % 3] as 'besteffort' | 'burstable' | 'guaranteed';
    /** The cgroup_parent kubelet sends for pod n, and where that is in the hierarchy. */
    const parentFor = (n: number): { parent: string; dir: string } => {
      const qos = qosOf(n);
      if (driver === 'systemd') {
        const pod = `pod${uidOf(n).replace(/-/g, '_')}`;
        const path = qos === 'guaranteed' ? `/kubepods.slice/kubepods-${pod}.slice` : `/kubepods.slice/kubepods-${qos}.slice/kubepods-${qos}-${pod}.slice`;
        return { parent: path, dir: path };
      }
      const path = qos === 'guaranteed' ? `/kubepods/pod${uidOf(n)}` : `/kubepods/${qos}/pod${uidOf(n)}`;
      return { parent: path, dir: path };
    };
    /** Where a container's cgroup must be, given its pod's parent. */
    const expectedCgroup = (n: number, id: string) => `${parentFor(n).dir}/${driver === 'systemd' ? `cradle-${id}.scope` : `cradle-${id}`}`;

    const newPod = async (handler: string) => {
      const n = ++pods;
      const config = podConfig(`${handler}-${n}`, { log_directory: join(node.dir, 'logs'), linux: { cgroup_parent: parentFor(n).parent } });
      const id = (await rt().call('RunPodSandbox', { config: { ...config, metadata: { ...config.metadata, uid: uidOf(n) } }, runtime_handler: handler }))
        .pod_sandbox_id;
      return { n, id };
    };
    const create = async (podId: string, name: string, extra: Init<ContainerConfig>) =>
      (
        await rt().call('CreateContainer', {
          pod_sandbox_id: podId,
          config: { metadata: { name }, image: { image: IMAGE }, log_path: `${name}.log`, ...extra },
        })
      ).container_id;
    const pidOf = async (id: string) =>
      (JSON.parse((await rt().call('ContainerStatus', { container_id: id, verbose: true })).info.info ?? '{}') as { pid?: number }).pid as number;
    const state = async (id: string) => (await rt().call('ContainerStatus', { container_id: id })).status;
    const exited = (id: string) =>
      waitFor(
        `container ${id.slice(0, 12)} to exit`,
        async () => ((await state(id))?.state === ContainerState.CONTAINER_EXITED ? true : undefined),
        60_000,
        200,
      );

    before(async () => {
      ({ node, registry } = await busyboxNode({ topLevel: `cgroup_manager = "${driver}"\n`, startTimeoutMs: 60_000 }));
    });

    after(async () => {
      await registry?.stop();
      await node?.destroy();
      if (driver === 'systemd') await run('systemctl', ['stop', 'kubepods.slice']);
      else removeEmptyTree(join(CGROUP_ROOT, 'kubepods'));
    });

    it('reports its cgroup driver and runs both OCI runtimes', async () => {
      const status = await rt().call('Status', { verbose: false });
      expect(status.status?.conditions.every((c) => c.status)).to.equal(true);
      const cfg = await rt().call('RuntimeConfig', {});
      expect(cfg.linux?.cgroup_driver).to.equal(driver === 'systemd' ? CgroupDriver.SYSTEMD : CgroupDriver.CGROUPFS);
      expect(status.runtime_handlers.map((h) => h.name)).to.include.members(['runc', 'crun']);
    });

    it("puts the pod init in the pod's cgroup, next to its containers, and removes it with the pod", async () => {
      const pod = await newPod('crun');
      const info = JSON.parse((await rt().call('PodSandboxStatus', { pod_sandbox_id: pod.id, verbose: true })).info.info ?? '{}') as { initPid: number };
      const initCgroup = `${parentFor(pod.n).dir}/${driver === 'systemd' ? `cradle-init-${pod.id}.scope` : `cradle-init-${pod.id}`}`;
      expect(cgroupOf(info.initPid)).to.equal(initCgroup);
      await rt().call('StopPodSandbox', { pod_sandbox_id: pod.id });
      await waitFor("the init's cgroup to go", () => (existsSync(join(CGROUP_ROOT, initCgroup)) ? undefined : true), 20_000, 200);
      await rt().call('RemovePodSandbox', { pod_sandbox_id: pod.id });
    });

    it('refuses a cgroup_parent written for the other driver', async () => {
      const wrong = driver === 'systemd' ? '/kubepods/besteffort/pod1' : 'kubepods-besteffort-pod1.slice';
      const err = await grpcFailure(rt().call('RunPodSandbox', { config: podConfig('wrong-parent', { linux: { cgroup_parent: wrong } }) }));
      expect(err.code).to.equal(Code.INVALID_ARGUMENT);
      expect(err.details).to.contain('cgroup-driver');
      expect((await rt().call('ListPodSandbox', {})).items.map((p) => p.metadata?.name)).to.not.include('wrong-parent');
    });

    for (const handler of ['crun', 'runc']) {
      it(`${handler}: limits, stats and live updates in the container's own cgroup, removed with it`, async () => {
        const pod = await newPod(handler);
        const id = await create(pod.id, 'busy', {
          command: ['sh', '-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 1000'],
          linux: { resources: { memory_limit_in_bytes: 64n * MiB, cpu_quota: 50_000n, cpu_period: 100_000n } },
        });
        await rt().call('StartContainer', { container_id: id });
        const pid = await pidOf(id);
        const cgroup = cgroupOf(pid);
        expect(cgroup.startsWith(expectedCgroup(pod.n, id)), cgroup).to.equal(true);
        expect(limitsAround(cgroup, 'memory.max')).to.include(String(64n * MiB));
        expect(limitsAround(cgroup, 'cpu.max')).to.include('50000 100000');
        if (driver === 'systemd') {
          // conmon has a scope of its own, outside the daemon's unit.
          const conmonPid = Number(readFileSync(join(node.dir, 'run', 'containers', id, 'conmon.pid'), 'utf8'));
          expect(cgroupOf(conmonPid)).to.equal(`/system.slice/cradle-conmon-${id}.scope`);
        }

        await sleep(1000);
        await rt().call('ContainerStats', { container_id: id });
        await sleep(500);
        const stats = (await rt().call('ContainerStats', { container_id: id })).stats;
        expect(Number(stats?.cpu?.usage_core_nano_seconds?.value)).to.be.greaterThan(10_000_000);
        expect(Number(stats?.memory?.working_set_bytes?.value)).to.be.greaterThan(0);
        expect(Number(stats?.memory?.usage_bytes?.value)).to.be.greaterThan(0);
        expect((stats?.memory?.available_bytes?.value ?? 0n) + (stats?.memory?.working_set_bytes?.value ?? 0n)).to.equal(64n * MiB);
        expect(stats?.swap?.swap_usage_bytes?.value).to.be.a('bigint');
        // The guest kernel has PSI: every cgroup has pressure files, and they are reported.
        expect(existsSync(join(CGROUP_ROOT, cgroup, 'cpu.pressure'))).to.equal(true);
        expect(stats?.cpu?.psi?.Some?.Total).to.be.a('bigint');
        expect(stats?.memory?.psi?.Full).to.not.equal(undefined);
        expect(stats?.io?.psi?.Some).to.not.equal(undefined);
        const podStats = (await rt().call('PodSandboxStats', { pod_sandbox_id: pod.id })).stats;
        expect(Number(podStats?.linux?.process?.process_count?.value)).to.be.greaterThan(0);
        expect(Number(podStats?.linux?.memory?.working_set_bytes?.value)).to.be.greaterThan(0);

        await rt().call('UpdateContainerResources', {
          container_id: id,
          linux: { memory_limit_in_bytes: 96n * MiB, cpu_quota: 20_000n, cpu_period: 100_000n },
        });
        expect(limitsAround(cgroup, 'memory.max')).to.include(String(96n * MiB));
        expect(limitsAround(cgroup, 'cpu.max')).to.include('20000 100000');

        await rt().call('StopContainer', { container_id: id, timeout: 0n });
        await rt().call('RemoveContainer', { container_id: id });
        await waitFor('the container cgroup to go', () => (existsSync(join(CGROUP_ROOT, expectedCgroup(pod.n, id))) ? undefined : true), 20_000, 200);
        if (driver === 'systemd')
          await waitFor(
            "conmon's scope to go",
            () => (existsSync(join(CGROUP_ROOT, 'system.slice', `cradle-conmon-${id}.scope`)) ? undefined : true),
            20_000,
            200,
          );
        await rt().call('RemovePodSandbox', { pod_sandbox_id: pod.id });
      });

      if (driver === 'systemd') {
        it(`${handler}: mounts propagate as their mode says, both ways`, async () => {
          const pod = await newPod(handler);
          const source = await sharedSource(node, `propagation-${handler}`);
          for (const [mode, hostToContainer, containerToHost] of PROPAGATION_CASES) {
            expect(await propagationSeen(node, pod.id, source, mode), mode).to.deep.equal({ hostToContainer, containerToHost });
          }
          await rt().call('RemovePodSandbox', { pod_sandbox_id: pod.id });
        });

        it(`${handler}: signalling a container whose process has just died is not an error`, async () => {
          const pod = await newPod(handler);
          const id = await create(pod.id, 'gone', { command: ['sleep', '1000'] });
          await rt().call('StartContainer', { container_id: id });
          process.kill(await pidOf(id), 'SIGKILL');
          // The runtime itself, as the daemon calls it, before or after the exit is recorded.
          const runtime = new OciRuntime(`/usr/bin/${handler}`, join(node.dir, 'run', handler), true);
          await waitFor('the process to be gone', async () => ((await runtime.state(id)) === 'stopped' ? true : undefined), 30_000, 100);
          await runtime.kill(id, 'KILL');
          await rt().call('StopPodSandbox', { pod_sandbox_id: pod.id });
          await rt().call('RemovePodSandbox', { pod_sandbox_id: pod.id });
        });
      }

      it(`${handler}: an OOM kill in the v2 hierarchy is reported as OOMKilled`, async () => {
        const pod = await newPod(handler);
        const id = await create(pod.id, 'oom', {
          command: ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'],
          linux: { resources: { memory_limit_in_bytes: 16n * MiB } },
        });
        await rt().call('StartContainer', { container_id: id });
        await exited(id);
        const s = await state(id);
        expect(s?.reason).to.equal('OOMKilled');
        expect(s?.exit_code).to.equal(137);
        await rt().call('RemovePodSandbox', { pod_sandbox_id: pod.id });
      });
    }

    it("sets the pod's own cgroup limits, overhead included (UpdatePodSandboxResources)", async () => {
      const pod = await newPod('runc');
      const id = await create(pod.id, 'sized', { command: ['sleep', '1000'], linux: { resources: { memory_limit_in_bytes: 64n * MiB } } });
      await rt().call('StartContainer', { container_id: id });
      await rt().call('UpdatePodSandboxResources', {
        pod_sandbox_id: pod.id,
        resources: { cpu_period: 100_000n, cpu_quota: 150_000n, cpu_shares: 1024n, memory_limit_in_bytes: 256n * MiB },
        overhead: { memory_limit_in_bytes: 16n * MiB },
      });
      const file = (name: string) => readFileSync(join(CGROUP_ROOT, parentFor(pod.n).dir, name), 'utf8').trim();
      expect(file('cpu.max')).to.equal('150000 100000');
      expect(file('cpu.weight')).to.equal('39');
      expect(file('memory.max')).to.equal(String(272n * MiB));
      expect((await state(id))?.state).to.equal(ContainerState.CONTAINER_RUNNING);
      await rt().call('RemovePodSandbox', { pod_sandbox_id: pod.id });
    });

    it('keeps a container running across a daemon kill, and records its later exit', async () => {
      const pod = await newPod('crun');
      const id = await create(pod.id, 'survivor', { command: ['sleep', '1000'] });
      await rt().call('StartContainer', { container_id: id });
      const pid = await pidOf(id);
      await node.stopDaemon('SIGKILL');
      await node.startDaemon([], 60_000);
      expect((await state(id))?.state).to.equal(ContainerState.CONTAINER_RUNNING);
      expect(cgroupOf(pid).startsWith(expectedCgroup(pod.n, id))).to.equal(true);
      process.kill(pid, 'SIGKILL');
      await exited(id);
      expect((await state(id))?.exit_code).to.equal(137);
      await rt().call('RemovePodSandbox', { pod_sandbox_id: pod.id });
      await waitFor('the container cgroup to go', () => (existsSync(join(CGROUP_ROOT, expectedCgroup(pod.n, id))) ? undefined : true), 20_000, 200);
    });
  });
}
