import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { NamespaceMode } from '../../cri/generated/api.js';
import { BUSYBOX_IMAGE as IMAGE, busyboxSuite } from '../support/busybox-node.js';
import { podConfig } from '../support/pods.js';
import { run } from '../support/processes.js';

/**
 * User namespaces where kubelet runs them in production: systemd as PID 1,
 * the systemd cgroup driver on a pure cgroup v2 hierarchy, the guest's
 * 6.1 kernel (idmapped overlay layers), each OCI runtime.
 */

const BLOCK = 65536;
const MiB = 1024n * 1024n;

describe('user namespaces on a cgroup v2 + systemd node', function () {
  this.timeout(300_000);
  const suite = busyboxSuite({ topLevel: 'cgroup_manager = "systemd"\n', startTimeoutMs: 60_000 });
  const rt = () => suite.rt();
  const exec = async (id: string, cmd: string[]) => {
    const r = await rt().call('ExecSync', { container_id: id, cmd, timeout: 60n });
    expect(r.exit_code, `${cmd.join(' ')}: ${r.stderr.toString()}`).to.equal(0);
    return r.stdout.toString().trim();
  };

  after(async () => {
    await run('systemctl', ['stop', 'userns.slice']);
  });

  it('says both runtimes support them', async () => {
    const handlers = (await rt().call('Status', {})).runtime_handlers;
    for (const name of ['runc', 'crun']) expect(handlers.find((h) => h.name === name)?.features?.user_namespaces, name).to.equal(true);
  });

  ['crun', 'runc'].forEach((handler, i) => {
    it(`${handler}: root of its own namespace, its writes the mapped ids on the host, its limits in its cgroup`, async () => {
      const host = (30 + i) * BLOCK;
      const map = [{ container_id: 0, host_id: host, length: BLOCK }];
      const config = podConfig(`userns-${handler}`, {
        log_directory: join(suite.node.dir, 'logs'),
        linux: {
          cgroup_parent: 'userns.slice',
          security_context: { namespace_options: { userns_options: { mode: NamespaceMode.POD, uids: map, gids: map } } },
        },
      });
      const pod = (await rt().call('RunPodSandbox', { config, runtime_handler: handler })).pod_sandbox_id;
      const id = (
        await rt().call('CreateContainer', {
          pod_sandbox_id: pod,
          config: {
            metadata: { name: 'main' },
            image: { image: IMAGE },
            command: ['sleep', '3600'],
            log_path: 'main.log',
            linux: { resources: { memory_limit_in_bytes: 64n * MiB } },
          },
        })
      ).container_id;
      await rt().call('StartContainer', { container_id: id });

      expect((await exec(id, ['cat', '/proc/self/uid_map'])).split(/\s+/)).to.deep.equal(['0', String(host), String(BLOCK)]);
      expect(await exec(id, ['id', '-u'])).to.equal('0');
      expect((await exec(id, ['ls', '-ln', '/bin/busybox'])).split(/\s+/).slice(2, 4)).to.deep.equal(['0', '0']);
      await exec(id, ['sh', '-c', 'echo written > /written']);
      expect(statSync(join(suite.node.dir, 'root', 'containers', id, 'upper', 'written')).uid).to.equal(host);
      // The limit is where the runtime put the container, seen from inside its cgroup namespace as its root.
      const limit = await exec(id, ['cat', '/sys/fs/cgroup/memory.max']);
      expect(BigInt(limit)).to.equal(64n * MiB);
      const info = JSON.parse((await rt().call('ContainerStatus', { container_id: id, verbose: true })).info.info ?? '{}') as { pid?: number };
      expect(readFileSync(`/proc/${info.pid}/uid_map`, 'utf8').trim().split(/\s+/)).to.deep.equal(['0', String(host), String(BLOCK)]);

      await rt().call('StopPodSandbox', { pod_sandbox_id: pod });
      await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
      expect((await rt().call('ListContainers', {})).containers).to.deep.equal([]);
    });
  });
});
