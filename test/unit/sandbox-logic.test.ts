import { expect } from 'chai';
import { InvalidArgumentError } from '../../core/errors.js';
import { hostsFile, resolvConf } from '../../sandbox/pod-files.js';
import { sandboxName } from '../../sandbox/sandbox-spec.js';
import { sysctlPath, validateSysctls } from '../../sandbox/sysctls.js';

describe('sysctl validation', () => {
  it('accepts namespaced sysctls and returns their /proc/sys paths', () => {
    expect(
      validateSysctls(
        { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000', 'kernel.sem': '250 32000 32 128', 'fs.mqueue.msg_max': '20', 'kernel.msgmax': '9000' },
        'pod',
        'pod',
      ),
    ).to.deep.equal([
      ['net/ipv4/ip_forward', '1'],
      ['kernel/shmmax', '1000'],
      ['kernel/sem', '250 32000 32 128'],
      ['fs/mqueue/msg_max', '20'],
      ['kernel/msgmax', '9000'],
    ]);
  });

  it('keeps dots inside names when the key uses slashes', () => {
    expect(sysctlPath('net/ipv4/conf/eth0.100/forwarding')).to.equal('net/ipv4/conf/eth0.100/forwarding');
    expect(validateSysctls({ 'net/ipv4/conf/eth0.100/forwarding': '1' }, 'pod', 'pod')).to.deep.equal([['net/ipv4/conf/eth0.100/forwarding', '1']]);
  });

  it('refuses host-wide sysctls', () => {
    for (const key of ['vm.swappiness', 'kernel.hostname', 'kernel.pid_max', 'fs.file-max']) {
      expect(() => validateSysctls({ [key]: '1' }, 'pod', 'pod'), key).to.throw(InvalidArgumentError, 'is not namespaced');
    }
  });

  it('refuses sysctls of namespaces the pod shares with the host', () => {
    expect(() => validateSysctls({ 'net.core.somaxconn': '1024' }, 'node', 'pod')).to.throw(InvalidArgumentError, "host's network namespace");
    expect(() => validateSysctls({ 'kernel.shmmni': '10' }, 'pod', 'node')).to.throw(InvalidArgumentError, "host's IPC namespace");
  });

  it('refuses names that could escape /proc/sys and multi-line values', () => {
    for (const key of ['net/../../etc/passwd', '/net.ipv4.ip_forward', 'net..ipv4', 'net.ipv4 x']) {
      expect(() => validateSysctls({ [key]: '1' }, 'pod', 'pod'), key).to.throw(InvalidArgumentError);
    }
    expect(() => validateSysctls({ 'net.ipv4.ip_forward': '1\n0' }, 'pod', 'pod')).to.throw(InvalidArgumentError, 'single line');
  });
});

describe('pod files', () => {
  it('lists loopback names and the pod addresses under the hostname', () => {
    const hosts = hostsFile('web-0', ['10.88.0.5', 'fd00::5']);
    expect(hosts.split('\n')[0]).to.equal('127.0.0.1\tlocalhost');
    expect(hosts).to.contain('10.88.0.5\tweb-0\nfd00::5\tweb-0\n');
  });

  it('writes resolv.conf from DNSConfig and falls back to the host file', () => {
    expect(resolvConf({ servers: ['10.96.0.10', '10.96.0.11'], searches: ['ns.svc.cluster.local'], options: ['ndots:5', 'edns0'] }, 'host')).to.equal(
      'search ns.svc.cluster.local\nnameserver 10.96.0.10\nnameserver 10.96.0.11\noptions ndots:5 edns0\n',
    );
    expect(resolvConf(undefined, 'nameserver 1.1.1.1\n')).to.equal('nameserver 1.1.1.1\n');
    expect(resolvConf({ servers: [], searches: [], options: [] }, 'nameserver 1.1.1.1\n')).to.equal('nameserver 1.1.1.1\n');
  });

  it('names a sandbox the way kubelet does', () => {
    expect(sandboxName({ name: 'nginx', namespace: 'default', uid: 'abc', attempt: 2 })).to.equal('nginx_default_abc_2');
  });
});
