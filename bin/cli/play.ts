import { randomUUID } from 'node:crypto';
import { chmod, mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { CriClient } from '../../cri/client.js';
import { ContainerState } from '../../cri/generated/api.js';
import { type ContainerPlan, ManifestError, type PodPlan, planPod } from './pod-manifest.js';

/** Marks the pods `cradle play` made, so `--down` removes only those. */
const PLAY_LABEL = 'io.cradle.play';
/** How often a container's state and log are read while waiting or following. */
const POLL_MS = 250;
const MAX_BACKOFF_MS = 30_000;
const INIT_ATTEMPTS = 5;

export interface PlayOptions {
  follow: boolean;
  down: boolean;
  out: { write(s: string): unknown };
  signal: AbortSignal;
}

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    });
  });

/** The one v1 Pod in `file`, read with @kubernetes/client-node's models; anything else is refused by name. */
async function readPod(file: string) {
  const k8s = await import('@kubernetes/client-node');
  let objects: Array<{ apiVersion?: string; kind?: string }>;
  try {
    objects = k8s.loadAllYaml(await readFile(file, 'utf8')).filter(Boolean) as typeof objects;
  } catch (err) {
    throw new ManifestError(`${file}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
  }
  const [first] = objects;
  if (objects.length !== 1 || !first) throw new ManifestError(`${file} holds ${objects.length} objects; cradle play takes exactly one v1 Pod`);
  if (first.apiVersion !== 'v1' || first.kind !== 'Pod')
    throw new ManifestError(
      `${file} holds ${first.apiVersion ?? '?'} ${first.kind ?? '?'}; cradle play takes a v1 Pod (for a Deployment or Job, run its pod template as a Pod)`,
    );
  return first as import('@kubernetes/client-node').V1Pod;
}

async function daemonRoot(client: CriClient): Promise<string> {
  const status = await client.runtime.call('Status', { verbose: true }, { timeoutMs: 30_000 });
  const root = (JSON.parse(status.info.config ?? '{}') as { root?: string }).root;
  if (!root) throw new Error('the daemon did not say where its state is (Status verbose info has no config)');
  return root;
}

async function playedPods(client: CriClient, plan: Pick<PodPlan, 'name' | 'namespace'>) {
  const { items } = await client.runtime.call('ListPodSandbox', {
    filter: { label_selector: { [PLAY_LABEL]: 'true', 'io.kubernetes.pod.name': plan.name, 'io.kubernetes.pod.namespace': plan.namespace } },
  });
  return items;
}

async function ensureImage(client: CriClient, c: ContainerPlan): Promise<void> {
  const present = async () => (await client.image.call('ImageStatus', { image: { image: c.image } })).image !== undefined;
  if (c.pullPolicy === 'Never') {
    if (!(await present())) throw new ManifestError(`container ${c.name}: image ${c.image} is not on this node and imagePullPolicy is Never`);
    return;
  }
  if (c.pullPolicy === 'IfNotPresent' && (await present())) return;
  await client.image.call('PullImage', { image: { image: c.image } }, { timeoutMs: 60 * 60_000 });
}

/** A container created and started for attempt `attempt`; its id. */
async function startContainer(client: CriClient, podId: string, plan: PodPlan, c: ContainerPlan, attempt: number): Promise<string> {
  const id = (await client.runtime.call('CreateContainer', { pod_sandbox_id: podId, config: c.config(attempt), sandbox_config: plan.sandbox })).container_id;
  await client.runtime.call('StartContainer', { container_id: id });
  return id;
}

async function exitCodeOf(client: CriClient, id: string): Promise<number | undefined> {
  const s = (await client.runtime.call('ContainerStatus', { container_id: id })).status;
  return s?.state === ContainerState.CONTAINER_EXITED ? s.exit_code : undefined;
}

/** CRI log lines (`time stream P|F text`) as the container printed them, prefixed with its name. */
class LogFollower {
  private offset = 0;
  private partial = '';
  constructor(
    private readonly path: string,
    private readonly name: string,
    private readonly out: PlayOptions['out'],
  ) {}

  async drain(): Promise<void> {
    const fh = await open(this.path, 'r').catch(() => undefined);
    if (!fh) return;
    try {
      const { size } = await fh.stat();
      if (size <= this.offset) return;
      const buf = Buffer.alloc(size - this.offset);
      const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
      const text = buf.subarray(0, bytesRead).toString();
      const complete = text.lastIndexOf('\n') + 1;
      this.offset += Buffer.byteLength(text.slice(0, complete));
      for (const line of text.slice(0, complete).split('\n').filter(Boolean)) {
        const m = /^\S+ \S+ ([PF]) (.*)$/.exec(line);
        if (!m) continue;
        this.partial += m[2];
        if (m[1] === 'F') {
          this.out.write(`[${this.name}] ${this.partial}\n`);
          this.partial = '';
        }
      }
    } finally {
      await fh.close();
    }
  }
}

/** Removes the pods `cradle play` made from this manifest, and their emptyDir volumes. */
async function down(client: CriClient, plan: PodPlan, root: string, out: PlayOptions['out']): Promise<number> {
  const pods = await playedPods(client, plan);
  if (pods.length === 0) out.write(`no pod ${plan.namespace}/${plan.name} from cradle play here\n`);
  for (const p of pods) {
    await client.runtime.call('StopPodSandbox', { pod_sandbox_id: p.id }, { timeoutMs: 120_000 });
    await client.runtime.call('RemovePodSandbox', { pod_sandbox_id: p.id }, { timeoutMs: 120_000 });
    await rm(join(root, 'play', p.metadata?.uid ?? ''), { recursive: true, force: true });
    out.write(`removed pod ${plan.namespace}/${plan.name} (${p.id})\n`);
  }
  return 0;
}

/**
 * `cradle play POD.yaml`: runs a v1 Pod over CRI as kubelet would (images
 * pulled per imagePullPolicy, init containers to completion in order, then
 * the app containers). With `follow`, streams the containers' logs and
 * applies restartPolicy while it runs, until every container is done or
 * Ctrl-C; `down` removes what an earlier play made. Returns the exit code.
 */
export async function play(client: CriClient, file: string, opts: PlayOptions): Promise<number> {
  const pod = await readPod(file);
  const root = await daemonRoot(client);
  const uid = pod.metadata?.uid || randomUUID();
  const plan = planPod(pod, uid, join(root, 'play', uid, 'volumes'));
  if (opts.down) return down(client, plan, root, opts.out);
  if ((await playedPods(client, plan)).length > 0)
    throw new ManifestError(`pod ${plan.namespace}/${plan.name} is already here (cradle play ${file} --down first)`);
  for (const c of [...plan.initContainers, ...plan.containers]) await ensureImage(client, c);
  const sandbox = { ...plan.sandbox, labels: { ...plan.sandbox.labels, [PLAY_LABEL]: 'true' } };
  const podId = (await client.runtime.call('RunPodSandbox', { config: sandbox }, { timeoutMs: 240_000 })).pod_sandbox_id;
  try {
    // Made once the pod exists, so `--down` (or the clean-up below) finds them whatever happens next.
    // World-writable as kubelet makes emptyDir, whatever user the containers run as (chmod: mkdir's mode goes through the umask).
    for (const dir of plan.emptyDirs) {
      await mkdir(dir, { recursive: true });
      await chmod(dir, 0o777);
    }
    for (const c of plan.initContainers) await runInit(client, podId, plan, c, opts.signal);
    const running = new Map<string, { id: string; attempt: number }>();
    for (const c of plan.containers) running.set(c.name, { id: await startContainer(client, podId, plan, c, 0), attempt: 0 });
    opts.out.write(`pod ${plan.namespace}/${plan.name} ${podId}: ${[...running].map(([n, r]) => `${n} ${r.id.slice(0, 13)}`).join(', ')}\n`);
    if (!opts.follow) return 0;
    return await follow(client, podId, plan, running, opts);
  } catch (err) {
    await client.runtime.call('RemovePodSandbox', { pod_sandbox_id: podId }, { timeoutMs: 120_000 }).catch(() => undefined);
    await rm(join(root, 'play', plan.uid), { recursive: true, force: true });
    throw err;
  }
}

/** An init container, run to completion; retried (as kubelet would) unless restartPolicy is Never. */
async function runInit(client: CriClient, podId: string, plan: PodPlan, c: ContainerPlan, signal: AbortSignal): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const id = await startContainer(client, podId, plan, c, attempt);
    let code = await exitCodeOf(client, id);
    while (code === undefined) {
      if (signal.aborted) throw new Error(`interrupted while init container ${c.name} ran`);
      await pause(POLL_MS, signal);
      code = await exitCodeOf(client, id);
    }
    if (code === 0) return;
    const log = await readFile(join(plan.sandbox.log_directory as string, c.config(attempt).log_path as string), 'utf8').catch(() => '');
    const last =
      log
        .trim()
        .split('\n')
        .at(-1)
        ?.replace(/^\S+ \S+ [PF] /, '') ?? '';
    if (plan.restartPolicy === 'Never' || attempt + 1 >= INIT_ATTEMPTS)
      throw new ManifestError(`init container ${c.name} exited with code ${code}${last ? `: ${last}` : ''}`);
    await pause(Math.min(MAX_BACKOFF_MS, 1000 * 2 ** attempt), signal);
  }
}

/** Streams logs and applies restartPolicy until every container is done or the user interrupts. */
async function follow(
  client: CriClient,
  podId: string,
  plan: PodPlan,
  running: Map<string, { id: string; attempt: number }>,
  opts: PlayOptions,
): Promise<number> {
  const logs = new Map<string, LogFollower>();
  const followerOf = (c: ContainerPlan, attempt: number) =>
    new LogFollower(join(plan.sandbox.log_directory as string, c.config(attempt).log_path as string), c.name, opts.out);
  for (const c of plan.containers) logs.set(c.name, followerOf(c, 0));
  const finished = new Map<string, number>();
  while (!opts.signal.aborted && finished.size < plan.containers.length) {
    for (const c of plan.containers) {
      const r = running.get(c.name);
      if (!r || finished.has(c.name)) continue;
      await logs.get(c.name)?.drain();
      const code = await exitCodeOf(client, r.id);
      if (code === undefined) continue;
      await logs.get(c.name)?.drain();
      const restart = plan.restartPolicy === 'Always' || (plan.restartPolicy === 'OnFailure' && code !== 0);
      if (!restart) {
        finished.set(c.name, code);
        opts.out.write(`[${c.name}] exited with code ${code}\n`);
        continue;
      }
      opts.out.write(`[${c.name}] exited with code ${code}; restarting (restartPolicy ${plan.restartPolicy})\n`);
      await pause(Math.min(MAX_BACKOFF_MS, 1000 * 2 ** r.attempt), opts.signal);
      if (opts.signal.aborted) break;
      await client.runtime.call('RemoveContainer', { container_id: r.id });
      const attempt = r.attempt + 1;
      running.set(c.name, { id: await startContainer(client, podId, plan, c, attempt), attempt });
      logs.set(c.name, followerOf(c, attempt));
    }
    await pause(POLL_MS, opts.signal);
  }
  return [...finished.values()].every((code) => code === 0) ? 0 : 1;
}
