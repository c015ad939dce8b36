import { join } from 'node:path';
import { expect } from 'chai';
import { type Metric, MetricType, type PodSandboxMetrics } from '../../cri/generated/api.js';
import { BUSYBOX_IMAGE as IMAGE, busyboxSuite } from '../support/busybox-node.js';
import { podConfig } from '../support/pods.js';
import { waitFor } from '../support/wait.js';

const MiB = 1024n * 1024n;

describe('pod and container metrics (cAdvisor names, for kubelet)', function () {
  this.timeout(180_000);
  const suite = busyboxSuite();
  const rt = () => suite.rt();

  it("reports each running pod's network and each container's CPU, memory, OOM kills, processes and disk, labelled as described", async () => {
    const descriptors = (await rt().call('ListMetricDescriptors', {})).descriptors;
    const keys = new Map(descriptors.map((d) => [d.name, d.label_keys]));
    for (const name of [
      'container_cpu_usage_seconds_total',
      'container_memory_working_set_bytes',
      'container_network_receive_bytes_total',
      'container_oom_events_total',
    ])
      expect(keys.get(name), name).to.include.members(['container', 'pod', 'namespace', 'id', 'image', 'name']);

    const config = podConfig('metered', { log_directory: join(suite.node.dir, 'logs') });
    const pod = (await rt().call('RunPodSandbox', { config })).pod_sandbox_id;
    const stopped = (await rt().call('RunPodSandbox', { config: podConfig('stopped') })).pod_sandbox_id;
    await rt().call('StopPodSandbox', { pod_sandbox_id: stopped });
    // dd's 200 MiB buffer does not fit the 64 MiB limit: the kernel kills dd, and the shell goes on.
    const id = (
      await rt().call('CreateContainer', {
        pod_sandbox_id: pod,
        config: {
          metadata: { name: 'hungry' },
          image: { image: IMAGE },
          command: ['sh', '-c', 'dd if=/dev/zero of=/dev/null bs=200M count=1; exec sleep 600'],
          log_path: 'hungry.log',
          linux: { resources: { memory_limit_in_bytes: 64n * MiB } },
        },
      })
    ).container_id;
    await rt().call('StartContainer', { container_id: id });

    const value = (ms: Metric[], name: string) => ms.find((m) => m.name === name)?.value?.value;
    const ours = async () => (await rt().call('ListPodSandboxMetrics', {})).pod_metrics;
    const metered = await waitFor(
      'the OOM kill to be counted',
      async () => {
        const m = (await ours()).find((p) => p.pod_sandbox_id === pod);
        const c = m?.container_metrics.find((x) => x.container_id === id);
        return c && (value(c.metrics, 'container_oom_events_total') ?? 0n) >= 1n ? m : undefined;
      },
      60_000,
      200,
    );
    expect((await ours()).map((p) => p.pod_sandbox_id)).to.not.include(stopped);

    const all = [...metered.metrics, ...metered.container_metrics.flatMap((c) => c.metrics)];
    for (const m of all) {
      expect(keys.has(m.name), m.name).to.equal(true);
      expect(m.label_values, m.name).to.have.length(keys.get(m.name)?.length ?? -1);
    }
    const c = metered.container_metrics.find((x) => x.container_id === id)?.metrics ?? [];
    const label = (m: Metric | undefined, key: string) => m?.label_values[(keys.get(m.name) ?? []).indexOf(key)];
    const cpu = c.find((m) => m.name === 'container_cpu_usage_seconds_total');
    expect([label(cpu, 'container'), label(cpu, 'pod'), label(cpu, 'namespace'), label(cpu, 'id'), label(cpu, 'cpu')]).to.deep.equal([
      'hungry',
      config.metadata?.name,
      'default',
      id,
      'total',
    ]);
    expect(cpu?.metric_type).to.equal(MetricType.COUNTER);
    expect(value(c, 'container_spec_memory_limit_bytes')).to.equal(64n * MiB);
    expect(Number(value(c, 'container_memory_working_set_bytes'))).to.be.greaterThan(0);
    expect(Number(value(c, 'container_processes'))).to.be.greaterThanOrEqual(1);
    const start = value(c, 'container_start_time_seconds') ?? 0n;
    expect(Number(start)).to.be.within(Date.now() / 1000 - 300, Date.now() / 1000 + 1);
    expect(
      label(
        c.find((m) => m.name === 'container_fs_usage_bytes'),
        'device',
      ),
    ).to.equal(join(suite.node.dir, 'root', 'containers'));
    // The pod's own interface, as cAdvisor's POD container.
    const rx = metered.metrics.find((m) => m.name === 'container_network_receive_bytes_total');
    expect([label(rx, 'container'), label(rx, 'interface')]).to.deep.equal(['POD', 'eth0']);

    const streamed = (await rt().collect('StreamPodSandboxMetrics', {})).flatMap((r) => r.pod_sandbox_metrics);
    expect(streamed.map((p: PodSandboxMetrics) => p.pod_sandbox_id)).to.deep.equal([pod]);
    await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
    await rt().call('RemovePodSandbox', { pod_sandbox_id: stopped });
  });
});
