import type { V1Pod } from '@kubernetes/client-node';
import { expect } from 'chai';
import { ManifestError, planPod } from '../../bin/cli/pod-manifest.js';
import { NamespaceMode, Protocol } from '../../cri/generated/api.js';

const pod = (spec: Partial<NonNullable<V1Pod['spec']>>, metadata: V1Pod['metadata'] = { name: 'web' }): V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata,
  spec: { containers: [{ name: 'app', image: 'busybox:1.36' }], ...spec },
});

describe('cradle play: a v1 Pod as kubelet turns it into CRI calls', () => {
  it('gives the sandbox its hostname, DNS, hostPorts, labels and host namespaces', () => {
    const plan = planPod(
      pod(
        {
          hostname: 'h1',
          hostNetwork: true,
          shareProcessNamespace: true,
          dnsConfig: { nameservers: ['10.0.0.10'], searches: ['svc.local'], options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }] },
          containers: [
            {
              name: 'app',
              image: 'busybox:1.36',
              ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 53, protocol: 'UDP', hostPort: 5353 }, { containerPort: 9 }],
            },
          ],
        },
        { name: 'web', namespace: 'shop', labels: { app: 'web' } },
      ),
      'uid-1',
      '/v',
    );
    expect(plan.sandbox.metadata).to.deep.equal({ name: 'web', namespace: 'shop', uid: 'uid-1', attempt: 0 });
    expect(plan.sandbox.hostname).to.equal('h1');
    expect(plan.sandbox.dns_config).to.deep.equal({ servers: ['10.0.0.10'], searches: ['svc.local'], options: ['ndots:2', 'edns0'] });
    expect(plan.sandbox.port_mappings).to.deep.equal([
      { protocol: Protocol.TCP, container_port: 80, host_port: 8080, host_ip: '' },
      { protocol: Protocol.UDP, container_port: 53, host_port: 5353, host_ip: '' },
    ]);
    expect(plan.sandbox.labels).to.include({
      app: 'web',
      'io.kubernetes.pod.name': 'web',
      'io.kubernetes.pod.namespace': 'shop',
      'io.kubernetes.pod.uid': 'uid-1',
    });
    expect(plan.sandbox.linux?.security_context?.namespace_options).to.deep.equal({
      network: NamespaceMode.NODE,
      pid: NamespaceMode.POD,
      ipc: NamespaceMode.POD,
    });
    expect(plan.restartPolicy).to.equal('Always');
  });

  it('maps containers: command, args, literal env, volumes, resources as cgroup values, security context, per-attempt logs', () => {
    const plan = planPod(
      pod({
        restartPolicy: 'OnFailure',
        securityContext: { runAsUser: 1000 },
        volumes: [
          { name: 'data', hostPath: { path: '/srv/data' } },
          { name: 'scratch', emptyDir: {} },
        ],
        initContainers: [{ name: 'init', image: 'busybox:1.36', command: ['true'] }],
        containers: [
          {
            name: 'app',
            image: 'busybox:1.36',
            command: ['sh'],
            args: ['-c', 'env'],
            env: [{ name: 'A', value: 'b' }],
            volumeMounts: [
              { name: 'data', mountPath: '/data', readOnly: true },
              { name: 'scratch', mountPath: '/tmp' },
            ],
            resources: { limits: { cpu: '500m', memory: '64Mi' }, requests: { cpu: '250m' } },
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      }),
      'u',
      '/var/lib/cradle/play/u/volumes',
    );
    expect(plan.initContainers.map((c) => c.name)).to.deep.equal(['init']);
    expect(plan.emptyDirs).to.deep.equal(['/var/lib/cradle/play/u/volumes/scratch']);
    const c = plan.containers[0]?.config(2);
    expect(c?.metadata).to.deep.equal({ name: 'app', attempt: 2 });
    expect([c?.command, c?.args]).to.deep.equal([['sh'], ['-c', 'env']]);
    expect(c?.envs?.map((e) => [e.key, Buffer.from(e.value ?? []).toString()])).to.deep.equal([['A', 'b']]);
    expect(c?.mounts).to.deep.equal([
      { container_path: '/data', host_path: '/srv/data', readonly: true },
      { container_path: '/tmp', host_path: '/var/lib/cradle/play/u/volumes/scratch', readonly: false },
    ]);
    expect(c?.linux?.resources).to.deep.equal({ cpu_shares: 256n, cpu_period: 100000n, cpu_quota: 50000n, memory_limit_in_bytes: 67108864n });
    expect(c?.linux?.security_context?.no_new_privs).to.equal(true);
    expect(c?.linux?.security_context?.run_as_user).to.deep.equal({ value: 1000n });
    expect(c?.log_path).to.equal('app/2.log');
    expect(plan.containers[0]?.pullPolicy).to.equal('IfNotPresent');
  });

  it('refuses what there is no API server for, and other volume kinds, naming the field', () => {
    const refused = (p: V1Pod) => {
      try {
        planPod(p, 'u', '/v');
      } catch (err) {
        expect(err).to.be.instanceOf(ManifestError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(
      refused(pod({ containers: [{ name: 'a', image: 'x:1', env: [{ name: 'K', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k' } } }] }] })),
    ).to.contain('spec.containers[0].env[K]: valueFrom');
    expect(refused(pod({ containers: [{ name: 'a', image: 'x:1', envFrom: [{ secretRef: { name: 's' } }] }] }))).to.contain('envFrom');
    expect(refused(pod({ volumes: [{ name: 'cfg', configMap: { name: 'cm' } }] }))).to.equal(
      'spec.volumes[cfg]: configMap volumes are not supported by cradle play; hostPath and emptyDir are',
    );
    expect(refused(pod({ containers: [{ name: 'a', image: 'x:1', volumeMounts: [{ name: 'nope', mountPath: '/n' }] }] }))).to.contain('no volume of that name');
    expect(refused(pod({}, {}))).to.equal('metadata.name is required');
    expect(refused(pod({ restartPolicy: 'Sometimes' }))).to.contain('restartPolicy');
  });
});
