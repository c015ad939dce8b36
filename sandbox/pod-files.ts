import { readFile, writeFile } from 'node:fs/promises';
import type { DnsConfig } from '../network/pod-network.js';

export type PodFileName = 'hostname' | 'hosts' | 'resolv.conf';

/** The files a pod's containers bind-mount, written where `path` says. */
export async function writePodFiles(path: (name: PodFileName) => string, hostname: string, ips: readonly string[], dns: DnsConfig | undefined): Promise<void> {
  const host = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  await writeFile(path('hostname'), `${hostname}\n`);
  await writeFile(path('hosts'), hostsFile(hostname, ips));
  await writeFile(path('resolv.conf'), resolvConf(dns, host));
}

/** /etc/hosts for a pod: loopback names, then the pod's own addresses under its hostname. */
export function hostsFile(hostname: string, ips: readonly string[]): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'fe00::0\tip6-mcastprefix',
    'fe00::1\tip6-allnodes',
    'fe00::2\tip6-allrouters',
  ];
  for (const ip of ips) lines.push(`${ip}\t${hostname}`);
  return `${lines.join('\n')}\n`;
}

/** resolv.conf from the pod's DNSConfig, or the host's own when the pod sets none. */
export function resolvConf(dns: DnsConfig | undefined, hostResolvConf: string): string {
  if (!dns || (dns.servers.length === 0 && dns.searches.length === 0 && dns.options.length === 0)) return hostResolvConf;
  const lines: string[] = [];
  if (dns.searches.length > 0) lines.push(`search ${dns.searches.join(' ')}`);
  for (const server of dns.servers) lines.push(`nameserver ${server}`);
  if (dns.options.length > 0) lines.push(`options ${dns.options.join(' ')}`);
  return `${lines.join('\n')}\n`;
}
