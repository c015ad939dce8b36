import { nowNs } from '../core/clock.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { timerMs } from '../core/timers.js';
import { step } from '../core/tracing.js';
import { type InterfaceCounters, interfaceCounters } from '../network/interface-stats.js';
import type { ContainerManager } from '../runtime/container-manager.js';
import type { ContainerStatsSample } from '../runtime/stats-sampler.js';
import { containerState, type ContainerRecord } from '../runtime/container-record.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import type { SandboxRecord } from '../sandbox/sandbox-spec.js';

/** One reading of a pod: each container's cgroup sample and process count, and its namespace's interfaces. */
export interface PodSample {
  pod: SandboxRecord;
  timestamp: bigint;
  containers: Array<{ rec: ContainerRecord; sample: ContainerStatsSample }>;
  ifaces: InterfaceCounters[];
}

/** Reads pods' cgroup files and interface counters, all pods' together; nothing is spawned. */
export async function samplePods(pods: readonly SandboxRecord[], containers: ContainerManager): Promise<PodSample[]> {
  const timestamp = nowNs();
  const bySandbox = containersByPod(containers);
  const recs = pods.map((pod) => bySandbox.get(pod.id) ?? []);
  // Any process in the pod's network namespace tells its interfaces: the pod init, or a running container.
  const inNetns = pods.map((pod, i) =>
    pod.pins.net ? (pod.initPid ?? recs[i]?.find((r) => containerState(r) === 'running' && r.pid !== undefined)?.pid) : undefined,
  );
  const withNetns = inNetns.filter((pid): pid is number => pid !== undefined);
  const [samples, counters] = await Promise.all([containers.stats(recs.flat()), step('interface counters read', () => interfaceCounters(withNetns))]);
  const ifacesOf = new Map(withNetns.map((pid, i) => [pid, counters[i] ?? []]));
  let next = 0;
  return pods.map((pod, i) => {
    const own = recs[i] ?? [];
    const podSamples = own.map((rec) => ({ rec, sample: samples[next++] as ContainerStatsSample }));
    const pid = inNetns[i];
    return { pod, timestamp, containers: podSamples, ifaces: pid === undefined ? [] : (ifacesOf.get(pid) ?? []) };
  });
}

/** Every container, by pod: one pass over them instead of one per pod. */
function containersByPod(containers: ContainerManager): Map<string, ContainerRecord[]> {
  const out = new Map<string, ContainerRecord[]>();
  for (const rec of containers.list()) {
    const list = out.get(rec.sandboxId);
    if (list) list.push(rec);
    else out.set(rec.sandboxId, [rec]);
  }
  return out;
}

/** What a sample was taken of: a container restarted, started or stopped since is read again. */
const containerKey = (rec: ContainerRecord) => `${rec.id}/${containerState(rec)}/${rec.pid ?? ''}`;
const podKey = (pod: SandboxRecord, recs: readonly ContainerRecord[]) => `${pod.id}/${pod.state}/${recs.map(containerKey).join(',')}`;

interface Collection {
  at: number;
  pods: Map<string, PodSample>;
  containers: Map<string, ContainerStatsSample>;
}

/**
 * Where the stats RPCs get their figures. With `stats.collection_period`
 * 0 (the default, as CRI-O's stats_collection_period) each call reads the
 * kernel's figures then. With a period, one pass reads every pod and
 * container that often and the calls answer from the last pass, reading
 * only what it lacks (a container started since): a node of 250 pods
 * polled for container and pod stats at once then answers from memory
 * instead of queueing a few thousand cgroup and /proc reads behind each
 * other, with figures up to one period old.
 */
export class StatsSource {
  private last: Collection | undefined;
  private timer: NodeJS.Timeout | undefined;
  private generation = 0;

  constructor(
    private readonly sandboxes: SandboxManager,
    private readonly containers: ContainerManager,
    private readonly periodMs: () => number,
    private readonly logger: Logger,
  ) {}

  async containerSamples(recs: readonly ContainerRecord[]): Promise<ContainerStatsSample[]> {
    const last = this.current();
    if (!last) return this.containers.stats(recs);
    return this.fill(
      recs,
      (rec) => last.containers.get(containerKey(rec)),
      (missing) => this.containers.stats(missing),
    );
  }

  async podSamples(pods: readonly SandboxRecord[]): Promise<PodSample[]> {
    const last = this.current();
    if (!last) return samplePods(pods, this.containers);
    const bySandbox = containersByPod(this.containers);
    return this.fill(
      pods,
      (pod) => last.pods.get(podKey(pod, bySandbox.get(pod.id) ?? [])),
      (missing) => samplePods(missing, this.containers),
    );
  }

  /** Collects now and every period after, until stop(); called again when the period changes. */
  start(): void {
    clearTimeout(this.timer);
    // A pass still running when the period changed schedules nothing more.
    const generation = ++this.generation;
    const next = () => {
      const period = this.periodMs();
      if (generation !== this.generation || period <= 0) return;
      this.timer = setTimeout(() => void this.collect().finally(next), timerMs(period));
      this.timer.unref();
    };
    void this.collect().finally(next);
  }

  stop(): void {
    this.generation++;
    clearTimeout(this.timer);
  }

  private async collect(): Promise<void> {
    if (this.periodMs() <= 0) {
      this.last = undefined;
      return;
    }
    const at = Date.now();
    try {
      const pods = this.sandboxes.list();
      const samples = await samplePods(pods, this.containers);
      const collection: Collection = { at, pods: new Map(), containers: new Map() };
      for (const s of samples) {
        collection.pods.set(
          podKey(
            s.pod,
            s.containers.map((c) => c.rec),
          ),
          s,
        );
        for (const c of s.containers) collection.containers.set(containerKey(c.rec), c.sample);
      }
      this.last = collection;
    } catch (err) {
      this.logger.warn('stats collection failed; stats are read on each call until the next one works', { error: errorMessage(err) });
      this.last = undefined;
    }
  }

  /** The last pass, unless collection is off or the pass is more than two periods old (a stalled pass is not served). */
  private current(): Collection | undefined {
    const period = this.periodMs();
    if (period <= 0 || !this.last || Date.now() - this.last.at > 2 * period) return undefined;
    return this.last;
  }

  private async fill<K, V>(keys: readonly K[], cached: (k: K) => V | undefined, read: (missing: K[]) => Promise<V[]>): Promise<V[]> {
    const found = keys.map(cached);
    const missing = keys.filter((_, i) => found[i] === undefined);
    if (missing.length === 0) return found as V[];
    const fresh = await read(missing);
    let next = 0;
    return found.map((v) => v ?? (fresh[next++] as V));
  }
}
