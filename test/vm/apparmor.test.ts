import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { ContainerState, SecurityProfile_ProfileType } from '../../cri/generated/api.js';
import type { LinuxContainerSecurityContext } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import { BUSYBOX_IMAGE as IMAGE, busyboxNode } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { podConfig } from '../support/pods.js';
import { run } from '../support/processes.js';
import type { TestRegistry } from '../support/registry.js';
import type { TestNode } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';

/**
 * AppArmor is the guest kernel's default LSM (this host has none): profiles
 * the test loads with apparmor_parser confine containers that ask for them.
 */

/** Everything allowed except reading one file, so the profile's effect is visible and nothing else breaks. */
const profile = (name: string) => `profile ${name} flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  signal,
  ptrace,
  unix,
  mount,
  umount,
  pivot_root,
  deny /etc/hostname r,
}
`;

describe('AppArmor profiles for containers', function () {
  this.timeout(300_000);
  let node: TestNode;
  let registry: TestRegistry;
  let pod: string;
  const rt = () => node.client().runtime;
  const loaded: string[] = [];

  const load = async (name: string) => {
    const file = join(node.dir, `${name}.apparmor`);
    writeFileSync(file, profile(name));
    const r = await run('apparmor_parser', ['-r', file]);
    expect(r.code, r.stderr).to.equal(0);
    loaded.push(name);
  };

  /** What the container's process is confined by, and whether the denied file was readable. */
  const confinement = async (name: string, security: Init<LinuxContainerSecurityContext>) => {
    const id = (
      await rt().call('CreateContainer', {
        pod_sandbox_id: pod,
        config: {
          metadata: { name },
          image: { image: IMAGE },
          log_path: `${name}.log`,
          command: ['sh', '-c', 'cat /proc/self/attr/current; cat /etc/hostname >/dev/null 2>&1 && echo read-ok || echo read-denied'],
          linux: { security_context: security },
        },
      })
    ).container_id;
    await rt().call('StartContainer', { container_id: id });
    await waitFor(
      'the container to exit',
      async () => ((await rt().call('ContainerStatus', { container_id: id })).status?.state === ContainerState.CONTAINER_EXITED ? true : undefined),
      60_000,
      200,
    );
    const lines = readFileSync(join(node.dir, 'logs', `${name}.log`), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ').slice(3).join(' '));
    await rt().call('RemoveContainer', { container_id: id });
    return lines;
  };

  before(async () => {
    expect(readFileSync('/sys/module/apparmor/parameters/enabled', 'utf8').trim()).to.equal('Y');
    ({ node, registry } = await busyboxNode({
      tables: '[containers]\napparmor_default_profile = "cradle-test-default"\n',
      startTimeoutMs: 60_000,
      beforeStart: async (n) => {
        node = n;
        await load('cradle-test-default');
        await load('cradle-test-custom');
      },
    }));
    pod = (await rt().call('RunPodSandbox', { config: podConfig('apparmor', { log_directory: join(node.dir, 'logs') }) })).pod_sandbox_id;
  });

  after(async () => {
    await registry?.stop();
    await node?.destroy();
    for (const name of loaded) await run('apparmor_parser', ['-R', join(node.dir, `${name}.apparmor`)]).catch(() => undefined);
  });

  it('confines a container with the Localhost profile it names', async () => {
    expect(
      await confinement('custom', { apparmor: { profile_type: SecurityProfile_ProfileType.Localhost, localhost_ref: 'cradle-test-custom' } }),
    ).to.deep.equal(['cradle-test-custom (enforce)', 'read-denied']);
    expect(await confinement('legacy', { apparmor_profile: 'localhost/cradle-test-custom' })).to.deep.equal(['cradle-test-custom (enforce)', 'read-denied']);
  });

  it('gives RuntimeDefault and unset the configured default profile, and privileged or Unconfined containers none', async () => {
    expect(await confinement('default', { apparmor: { profile_type: SecurityProfile_ProfileType.RuntimeDefault, localhost_ref: '' } })).to.deep.equal([
      'cradle-test-default (enforce)',
      'read-denied',
    ]);
    expect(await confinement('unset', {})).to.deep.equal(['cradle-test-default (enforce)', 'read-denied']);
    expect(await confinement('unconfined', { apparmor: { profile_type: SecurityProfile_ProfileType.Unconfined, localhost_ref: '' } })).to.deep.equal([
      'unconfined',
      'read-ok',
    ]);
    expect(await confinement('privileged', { privileged: true })).to.deep.equal(['unconfined', 'read-ok']);
  });

  it('refuses a profile that is not loaded, leaving no container behind', async () => {
    const before = (await rt().call('ListContainers', {})).containers.length;
    const err = await grpcFailure(
      rt().call('CreateContainer', {
        pod_sandbox_id: pod,
        config: {
          metadata: { name: 'missing' },
          image: { image: IMAGE },
          log_path: 'missing.log',
          linux: { security_context: { apparmor: { profile_type: SecurityProfile_ProfileType.Localhost, localhost_ref: 'no-such-profile' } } },
        },
      }),
    );
    expect(err.code).to.equal(Code.INVALID_ARGUMENT);
    expect(err.details).to.contain('no-such-profile');
    expect((await rt().call('ListContainers', {})).containers.length).to.equal(before);
  });
});
