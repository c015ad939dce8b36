import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { installMetricsSink } from '../core/metrics.js';
import type { Logger } from '../core/logger.js';

/** Counts the endpoint reads from state at each scrape, not from events. */
export interface MetricsGauges {
  containers(): Record<string, number>;
  pods(): Record<string, number>;
  conmonProcesses(): number;
  eventSubscribers(): number;
}

/** Seconds: from a fast RPC (a status read) to a slow one (an image pull, a checkpoint). */
const RPC_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const PULL_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const CNI_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The Prometheus endpoint: GET /metrics in the text format, from
 * prom-client (loaded only when the endpoint is configured). Installs the
 * sink the domains report to; `close` removes it.
 */
export async function startMetricsEndpoint(
  address: string,
  port: number,
  gauges: MetricsGauges,
  logger: Logger,
): Promise<{ port: number; close(): Promise<void> }> {
  const prom = await import('prom-client');
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const rpcs = new prom.Counter({
    name: 'cradle_rpc_requests_total',
    help: 'CRI calls answered, by method and gRPC code',
    labelNames: ['method', 'code'],
    registers,
  });
  const rpcSeconds = new prom.Histogram({
    name: 'cradle_rpc_duration_seconds',
    help: 'CRI call latency, by method',
    labelNames: ['method'],
    buckets: RPC_BUCKETS,
    registers,
  });
  const pulls = new prom.Counter({ name: 'cradle_image_pulls_total', help: 'Image pulls, by outcome', labelNames: ['outcome'], registers });
  const pullSeconds = new prom.Histogram({ name: 'cradle_image_pull_duration_seconds', help: 'Image pull duration', buckets: PULL_BUCKETS, registers });
  const pullBytes = new prom.Counter({ name: 'cradle_image_pull_bytes_total', help: 'Compressed layer bytes fetched from registries', registers });
  const pullLayers = new prom.Counter({
    name: 'cradle_image_pull_layers_total',
    help: 'Layers of pulled images, fetched or already here',
    labelNames: ['source'],
    registers,
  });
  const cniSeconds = new prom.Histogram({
    name: 'cradle_cni_operation_duration_seconds',
    help: 'CNI plugin calls, by operation and plugin',
    labelNames: ['operation', 'plugin'],
    buckets: CNI_BUCKETS,
    registers,
  });
  const cniFailures = new prom.Counter({
    name: 'cradle_cni_operation_failures_total',
    help: 'CNI plugin calls that failed',
    labelNames: ['operation', 'plugin'],
    registers,
  });
  const exits = new prom.Counter({ name: 'cradle_container_exits_total', help: 'Container exits, by reason', labelNames: ['reason'], registers });
  const ooms = new prom.Counter({ name: 'cradle_container_oom_kills_total', help: 'Containers whose init the kernel killed for memory', registers });
  const byState = (name: string, help: string, read: () => Record<string, number>) =>
    new prom.Gauge({
      name,
      help,
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const [state, n] of Object.entries(read())) this.set({ state }, n);
      },
    });
  byState('cradle_containers', 'Containers, by state', gauges.containers);
  byState('cradle_pod_sandboxes', 'Pod sandboxes, by state', gauges.pods);
  const single = (name: string, help: string, read: () => number) =>
    new prom.Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  single('cradle_conmon_processes', 'Container monitors (conmon) that run: one per created or running container', gauges.conmonProcesses);
  single('cradle_container_event_subscribers', 'Open GetContainerEvents streams', gauges.eventSubscribers);

  installMetricsSink({
    rpc(method, code, seconds) {
      rpcs.inc({ method, code });
      rpcSeconds.observe({ method }, seconds);
    },
    imagePull(outcome, seconds, bytes, fetched, reused) {
      pulls.inc({ outcome });
      if (outcome === 'success') pullSeconds.observe(seconds);
      pullBytes.inc(bytes);
      pullLayers.inc({ source: 'fetched' }, fetched);
      pullLayers.inc({ source: 'reused' }, reused);
    },
    cni(operation, plugin, seconds, failed) {
      cniSeconds.observe({ operation, plugin }, seconds);
      if (failed) cniFailures.inc({ operation, plugin });
    },
    containerExit(reason) {
      exits.inc({ reason });
      if (reason === 'OOMKilled') ooms.inc();
    },
  });

  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics is served here\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  logger.info('serving metrics', { address, port: bound });
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        installMetricsSink(undefined);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
