import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestNode } from './test-node.js';

export const TEST_NETWORK = 'cradle-test';
export const TEST_SUBNET = '10.89.0.0/24';
export const TEST_GATEWAY = '10.89.0.1';

/** host-local keeps its leases here (one file per IP), inside the node's directory. */
export function ipamDir(node: TestNode): string {
  return join(node.dir, 'cni', 'ipam');
}

export interface ConflistOptions {
  /** Extra plugins appended to the chain (e.g. one that fails). */
  extra?: object[];
}

/** bridge + host-local + portmap + loopback, the shape most clusters use. */
export function bridgeConflist(node: TestNode, opts: ConflistOptions = {}): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: TEST_NETWORK,
    plugins: [
      {
        type: 'bridge',
        bridge: 'cradle0',
        isGateway: true,
        hairpinMode: true,
        ipam: { type: 'host-local', dataDir: ipamDir(node), ranges: [[{ subnet: TEST_SUBNET, gateway: TEST_GATEWAY }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
      { type: 'loopback' },
      ...(opts.extra ?? []),
    ],
  });
}

export function writeConflist(node: TestNode, text: string, name = '10-cradle-test.conflist'): void {
  writeFileSync(join(node.cniConfDir, name), text);
}

/** A CNI plugin in the node's own bin dir that fails ADD with an error JSON, as plugins do. */
export function installFailingPlugin(node: TestNode, type = 'cradle-fail'): void {
  const path = join(node.dir, 'cni', 'bin', type);
  writeFileSync(
    path,
    `#!/bin/sh
cat >/dev/null
if [ "$CNI_COMMAND" = "ADD" ]; then
  echo '{"cniVersion":"1.0.0","code":11,"msg":"refusing on purpose","details":"test plugin"}'
  exit 7
fi
exit 0
`,
  );
  chmodSync(path, 0o755);
}

/** IPs host-local has leased in the test network. */
export function leasedIps(leases: string[]): string[] {
  return leases.filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f)).sort();
}
