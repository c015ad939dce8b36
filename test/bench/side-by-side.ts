import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeTestCgroupParents } from '../support/cgroups.js';
import { bridgeConflist, writeConflist } from '../support/cni.js';
import { ContainerdPeer } from '../support/containerd.js';
import { OciLayout } from '../support/oci-image.js';
import { killAllTracked } from '../support/processes.js';
import { TestRegistry } from '../support/registry.js';
import { type DaemonHandle, TestNode, testConfigToml } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';

export interface SideBySide {
  /** Cradle's node; its daemon is started by the benchmark. */
  cradle: TestNode;
  /** The peer's node, for containerd. */
  peer: TestNode;
  /** Each node's registry on 127.0.0.1:5000. */
  registries: { cradle: TestRegistry; peer: TestRegistry };
}

/** Cradle's config for benchmarks: the test config at `level`, the node's registry trusted over http. */
/** TOML added to a benchmark's config: keys before the first table, and tables after the others. */
export interface ConfigExtra {
  top?: string;
  tables?: string;
}

export function benchConfig(node: TestNode, level = 'info', extra: ConfigExtra = {}): string {
  const base = testConfigToml(node.dir).replace('level = "debug"', `level = "${level}"`);
  return `${extra.top ?? ''}${base}\n[image]\ninsecure_registries = ["127.0.0.1:5000"]\n${extra.tables ?? ''}`;
}

/**
 * The set-up every side-by-side benchmark shares: two nodes, each with the
 * same CNI chain and a registry holding the same image (built by `image`
 * into an OCI layout, pushed as `repository:tag`); everything is torn down
 * after `body`, whatever happens.
 */
export async function sideBySide(image: (layout: OciLayout) => { repository: string; tag: string }, body: (nodes: SideBySide) => Promise<void>): Promise<void> {
  const cradle = await TestNode.create();
  const peer = await TestNode.create();
  const registry = { cradle: new TestRegistry(cradle), peer: new TestRegistry(peer) };
  const registries = [registry.cradle, registry.peer];
  try {
    writeFileSync(cradle.configPath, benchConfig(cradle));
    for (const n of [cradle, peer]) writeConflist(n, bridgeConflist(n));
    const layout = new OciLayout(join(cradle.dir, 'layout'));
    const { repository, tag } = image(layout);
    await Promise.all(registries.map((r) => r.start()));
    for (const r of registries) await r.push(layout.dir, tag, repository);
    await body({ cradle, peer, registries: registry });
  } finally {
    for (const r of registries) await r.stop().catch(() => undefined);
    await cradle.destroy();
    await peer.destroy();
    killAllTracked();
    removeTestCgroupParents();
  }
}

/**
 * Server-side timing: Cradle logs each RPC's duration at debug level
 * (taken before the line is written). start() raises the level by SIGHUP,
 * so only the phase that follows is logged that way.
 */
export interface ServerTimer {
  start(): Promise<void>;
  durations(rpc: string): number[];
  /** Each step's durations within `rpc`'s calls, by step name (the debug log's `steps`). */
  steps(rpc: string): Map<string, number[]>;
}

/** `extra`: TOML the daemon was started with, kept through the reload. */
export function serverTimer(node: TestNode, daemon: DaemonHandle, extra: ConfigExtra = {}): ServerTimer {
  const lines = (rpc: string) =>
    daemon
      .log()
      .split('\n')
      .filter((l) => l.includes(`"rpc":"${rpc}"`))
      .map((l) => JSON.parse(l) as { durationMs: number; steps?: string[] });
  return {
    start: async () => {
      writeFileSync(node.configPath, benchConfig(node, 'debug', extra));
      const before = daemon.log().length;
      // nsenter execs the daemon, so its pid is the daemon's.
      process.kill(daemon.pid, 'SIGHUP');
      await waitFor('the daemon to reload its config', () => (/config (changed|reloaded)/.test(daemon.log().slice(before)) ? true : undefined), 10_000);
    },
    durations: (rpc) => lines(rpc).map((l) => l.durationMs),
    steps: (rpc) => {
      const out = new Map<string, number[]>();
      for (const l of lines(rpc))
        for (const s of l.steps ?? []) {
          const m = /^(.*) ([\d.]+)ms$/.exec(s);
          if (m) out.set(m[1] as string, [...(out.get(m[1] as string) ?? []), Number(m[2])]);
        }
      return out;
    },
  };
}

/** Runs `measure` against containerd in `node` when the Debian package is installed. */
export async function withContainerd<T>(node: TestNode, measure: (peer: ContainerdPeer) => Promise<T>): Promise<T | undefined> {
  if (!ContainerdPeer.available()) return undefined;
  const containerd = new ContainerdPeer(node, ['127.0.0.1:5000']);
  await containerd.start();
  try {
    return await measure(containerd);
  } finally {
    await containerd.stop();
  }
}
