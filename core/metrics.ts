/**
 * What the daemon counts, as events the domains report. The sink does
 * nothing until the Prometheus endpoint is configured (bin/metrics-endpoint.ts
 * installs one that records): a daemon without `[metrics]` neither loads
 * the metrics library nor spends anything per event.
 */
export interface MetricsSink {
  /** A CRI call answered with `code` (a gRPC code name) after `seconds`; method names are unique across both services. */
  rpc(method: string, code: string, seconds: number): void;
  /** A PullImage download: its outcome, the compressed bytes fetched, and its layers fetched or already here. */
  imagePull(outcome: 'success' | 'failure', seconds: number, bytes: number, layersFetched: number, layersReused: number): void;
  /** A CNI plugin call, and whether it failed. */
  cni(operation: string, plugin: string, seconds: number, failed: boolean): void;
  /** A container's exit, by the reason kubelet sees (Completed, Error, OOMKilled). */
  containerExit(reason: string): void;
}

const NONE: MetricsSink = {
  rpc: () => undefined,
  imagePull: () => undefined,
  cni: () => undefined,
  containerExit: () => undefined,
};

let sink: MetricsSink = NONE;

export const metrics: MetricsSink = {
  rpc: (...a) => sink.rpc(...a),
  imagePull: (...a) => sink.imagePull(...a),
  cni: (...a) => sink.cni(...a),
  containerExit: (...a) => sink.containerExit(...a),
};

export function installMetricsSink(next: MetricsSink | undefined): void {
  sink = next ?? NONE;
}
