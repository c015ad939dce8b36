import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { ContainerState } from '../../cri/generated/api.js';
import { BUSYBOX_IMAGE, busyboxSuite, startBusybox } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { podConfig } from '../support/pods.js';
import { TestNode } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';

/** One sample line of the text format: `name{labels} value`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[3] ?? '').matchAll(/([a-zA-Z_]+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[4]);
  }
  return 0;
}

/** The Prometheus endpoint, scraped as Prometheus would, from inside the node (busybox's wget). */
describe('Prometheus metrics', function () {
  this.timeout(180_000);
  const suite = busyboxSuite({ tables: '[metrics]\naddress = "127.0.0.1"\nport = 0\n' });
  const rt = () => suite.rt();
  const port = () => {
    const line = suite.node.daemon
      .log()
      .split('\n')
      .find((l) => l.includes('"serving metrics"'));
    return (JSON.parse(line ?? '{}') as { port?: number }).port;
  };
  const scrape = async (path = '/metrics') => {
    const r = await suite.node.exec('busybox', ['wget', '-q', '-S', '-O-', `http://127.0.0.1:${port()}${path}`]);
    return { ok: r.code === 0, text: r.stdout, headers: r.stderr };
  };

  it('counts a pod lifecycle: calls by method and code, pulls, CNI calls, containers by state, exits, subscribers', async () => {
    expect(port()).to.be.a('number');
    const before = (await scrape()).text;
    expect(sample(before, 'cradle_image_pulls_total', { outcome: 'success' })).to.be.at.least(1);
    expect(sample(before, 'cradle_image_pull_layers_total', { source: 'fetched' })).to.be.at.least(1);
    expect(sample(before, 'process_resident_memory_bytes')).to.be.greaterThan(0);

    await suite.node.client().image.call('PullImage', { image: { image: BUSYBOX_IMAGE } });
    const pod = (await rt().call('RunPodSandbox', { config: podConfig('metrics') })).pod_sandbox_id;
    await startBusybox(suite.node, pod, 'sleeper', { command: ['sleep', '600'] });
    const failing = await startBusybox(suite.node, pod, 'failing', { command: ['sh', '-c', 'exit 3'] });
    await waitFor('the failing container to exit', async () => {
      const s = (await rt().call('ContainerStatus', { container_id: failing })).status;
      return s?.state === ContainerState.CONTAINER_EXITED ? true : undefined;
    });
    expect((await grpcFailure(rt().call('ContainerStatus', { container_id: 'f'.repeat(64) }))).code).to.equal(Code.NOT_FOUND);
    const events = rt().open('GetContainerEvents', {});
    events.on('error', () => undefined);
    events.on('data', () => undefined);

    const during = await waitFor('the subscriber to be counted', async () => {
      const text = (await scrape()).text;
      return sample(text, 'cradle_container_event_subscribers') === 1 ? text : undefined;
    });
    const grew = (name: string, labels: Record<string, string> = {}) => sample(during, name, labels) - sample(before, name, labels);
    expect(grew('cradle_rpc_requests_total', { method: 'RunPodSandbox', code: 'OK' })).to.equal(1);
    expect(grew('cradle_rpc_requests_total', { method: 'ContainerStatus', code: 'NOT_FOUND' })).to.equal(1);
    expect(grew('cradle_rpc_duration_seconds_count', { method: 'CreateContainer' })).to.equal(2);
    expect(grew('cradle_image_pull_layers_total', { source: 'reused' })).to.be.at.least(1);
    expect(grew('cradle_image_pull_layers_total', { source: 'fetched' })).to.equal(0);
    expect(grew('cradle_cni_operation_duration_seconds_count', { operation: 'ADD' })).to.be.at.least(1);
    expect(grew('cradle_container_exits_total', { reason: 'Error' })).to.equal(1);
    expect(sample(during, 'cradle_containers', { state: 'running' })).to.equal(1);
    expect(sample(during, 'cradle_containers', { state: 'exited' })).to.equal(1);
    expect(sample(during, 'cradle_pod_sandboxes', { state: 'ready' })).to.equal(1);
    expect(sample(during, 'cradle_conmon_processes')).to.equal(1);

    events.cancel();
    await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
    const after = (await scrape()).text;
    expect(sample(after, 'cradle_containers', { state: 'running' })).to.equal(0);
    expect(sample(after, 'cradle_conmon_processes')).to.equal(0);
    expect(sample(after, 'cradle_rpc_requests_total', { method: 'RemovePodSandbox', code: 'OK' })).to.equal(1);
  });

  it('serves the text format at /metrics only', async () => {
    const ok = await scrape();
    expect(ok.headers).to.match(/content-type: text\/plain; version=0\.0\.4/i);
    expect(ok.text).to.match(/^# HELP cradle_rpc_requests_total /m);
    expect(ok.text).to.match(/^# TYPE cradle_rpc_duration_seconds histogram$/m);
    expect((await scrape('/other')).headers).to.contain('404');
  });

  it('is off without a [metrics] address: nothing listens', async () => {
    const plain = await TestNode.create();
    try {
      await plain.startDaemon();
      expect(plain.daemon.log()).to.not.contain('serving metrics');
    } finally {
      await plain.destroy();
    }
  });
});
