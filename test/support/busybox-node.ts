import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerConfig } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import { bridgeConflist, writeConflist } from './cni.js';
import { busyboxEntries, OciLayout } from './oci-image.js';
import { TestRegistry } from './registry.js';
import { TestNode, testConfigToml } from './test-node.js';

export const BUSYBOX_IMAGE = '127.0.0.1:5000/test/busybox:v1';

/**
 * A node ready for containers: a bridge network, a registry in the node
 * holding a busybox image, and a daemon (config: the test config with
 * `topLevel` before it and `tables` after it) that has pulled the image.
 */
export async function busyboxNode(
  options: {
    topLevel?: string;
    tables?: string;
    startTimeoutMs?: number;
    /** Registries besides the test registry reached over plain http (host:port). */
    insecure?: readonly string[];
    beforeStart?: (node: TestNode, registry: TestRegistry) => Promise<void>;
  } = {},
): Promise<{ node: TestNode; registry: TestRegistry }> {
  const node = await TestNode.create();
  writeFileSync(
    node.configPath,
    `${options.topLevel ?? ''}${testConfigToml(node.dir)}\n[image]\ninsecure_registries = ${JSON.stringify(['127.0.0.1:5000', ...(options.insecure ?? [])])}\n${options.tables ?? ''}`,
  );
  writeConflist(node, bridgeConflist(node));
  const registry = new TestRegistry(node);
  await registry.start();
  const layout = new OciLayout(join(node.dir, 'layout'));
  layout.tag('v1', layout.image([{ entries: busyboxEntries() }], { Cmd: ['sh'], Env: ['PATH=/bin'] }));
  await registry.push(layout.dir, 'v1', 'test/busybox');
  await options.beforeStart?.(node, registry);
  await node.startDaemon([], options.startTimeoutMs);
  await node.client().image.call('PullImage', { image: { image: BUSYBOX_IMAGE } });
  return { node, registry };
}

/** Creates and starts a busybox container in `pod` (log `<name>.log`); returns its id. */
export async function startBusybox(node: TestNode, pod: string, name: string, extra: Init<ContainerConfig> = {}): Promise<string> {
  const rt = node.client().runtime;
  const id = (
    await rt.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: { metadata: { name }, image: { image: BUSYBOX_IMAGE }, log_path: `${name}.log`, ...extra },
    })
  ).container_id;
  await rt.call('StartContainer', { container_id: id });
  return id;
}

/**
 * A busybox node for one mocha suite: made in `before`, destroyed in
 * `after`; read `node` and `rt()` inside the tests.
 */
export function busyboxSuite(options: Parameters<typeof busyboxNode>[0] = {}) {
  const suite = {
    node: undefined as unknown as TestNode,
    registry: undefined as TestRegistry | undefined,
    rt: () => suite.node.client().runtime,
  };
  before(async () => {
    const made = await busyboxNode(options);
    suite.node = made.node;
    suite.registry = made.registry;
  });
  after(async () => {
    await suite.registry?.stop();
    await suite.node?.destroy();
  });
  return suite;
}
