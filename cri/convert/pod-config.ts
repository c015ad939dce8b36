import { InvalidArgumentError } from '../../core/errors.js';
import type { PortMapping } from '../../network/pod-network.js';
import type { NamespaceMode as DomainNamespaceMode } from '../../oci/namespaces.js';
import type { SandboxSpec } from '../../sandbox/sandbox-spec.js';
import { NamespaceMode, Protocol, type PodSandboxConfig } from '../generated/api.js';
import { userNamespaceFrom } from './user-namespace.js';
import {
  dnsLabel,
  dnsSubdomain,
  hostname,
  ipAddress,
  optionalAbsolutePath,
  plain,
  podUid,
  port,
  resolverOption,
  searchDomain,
  stringMap,
} from '../validate.js';

const NAMESPACE_MODES: Record<NamespaceMode, DomainNamespaceMode> = {
  [NamespaceMode.POD]: 'pod',
  [NamespaceMode.CONTAINER]: 'container',
  [NamespaceMode.NODE]: 'node',
  [NamespaceMode.TARGET]: 'target',
};

const PROTOCOLS: Record<Protocol, PortMapping['protocol']> = {
  [Protocol.TCP]: 'tcp',
  [Protocol.UDP]: 'udp',
  [Protocol.SCTP]: 'sctp',
};

function namespaceMode(mode: NamespaceMode, field: string): DomainNamespaceMode {
  const m = NAMESPACE_MODES[mode];
  if (m === undefined) throw new InvalidArgumentError(`${field}: unknown namespace mode ${mode}`);
  return m;
}

export function toCriMode(mode: DomainNamespaceMode): NamespaceMode {
  return Number(Object.entries(NAMESPACE_MODES).find(([, m]) => m === mode)?.[0] ?? NamespaceMode.POD) as NamespaceMode;
}

/** PodSandboxConfig → the domain's SandboxSpec, refusing what Cradle cannot honour or a file or plugin would misread. */
export function sandboxSpecFrom(config: PodSandboxConfig | undefined, runtimeHandler: string): SandboxSpec {
  if (!config) throw new InvalidArgumentError('config is required');
  const meta = config.metadata;
  if (!meta) throw new InvalidArgumentError('config.metadata is required');
  for (const field of ['name', 'namespace', 'uid'] as const) {
    if (meta[field] === '') throw new InvalidArgumentError(`config.metadata.${field} is empty`);
  }
  dnsSubdomain('config.metadata.name', meta.name);
  dnsLabel('config.metadata.namespace', meta.namespace);
  podUid('config.metadata.uid', meta.uid);
  const ns = config.linux?.security_context?.namespace_options;
  const userns = userNamespaceFrom(ns);
  const dns = config.dns_config;
  return {
    name: meta.name,
    namespace: meta.namespace,
    uid: meta.uid,
    attempt: meta.attempt,
    hostname: hostname('config.hostname', config.hostname),
    logDirectory: optionalAbsolutePath('config.log_directory', config.log_directory),
    dns: dns
      ? {
          servers: dns.servers.map((v, i) => ipAddress(`config.dns_config.servers[${i}]`, v)),
          searches: dns.searches.map((v, i) => searchDomain(`config.dns_config.searches[${i}]`, v)),
          options: dns.options.map((v, i) => resolverOption(`config.dns_config.options[${i}]`, v)),
        }
      : undefined,
    portMappings: config.port_mappings.map((p, i) => {
      const field = `config.port_mappings[${i}]`;
      const protocol = PROTOCOLS[p.protocol];
      if (protocol === undefined) throw new InvalidArgumentError(`${field}: unknown protocol ${p.protocol}`);
      port(`${field}.container_port`, p.container_port, false);
      port(`${field}.host_port`, p.host_port, true);
      if (p.host_ip !== '') ipAddress(`${field}.host_ip`, p.host_ip);
      return { protocol, containerPort: p.container_port, hostPort: p.host_port, hostIp: p.host_ip };
    }),
    labels: stringMap('config.labels', config.labels),
    annotations: stringMap('config.annotations', config.annotations),
    runtimeHandler: plain('runtime_handler', runtimeHandler, 253),
    cgroupParent: plain('config.linux.cgroup_parent', config.linux?.cgroup_parent ?? ''),
    namespaces: {
      network: namespaceMode(ns?.network ?? NamespaceMode.POD, 'namespace_options.network'),
      pid: namespaceMode(ns?.pid ?? NamespaceMode.POD, 'namespace_options.pid'),
      ipc: namespaceMode(ns?.ipc ?? NamespaceMode.POD, 'namespace_options.ipc'),
      targetId: ns?.target_id ?? '',
    },
    ...(userns ? { userns } : {}),
    sysctls: stringMap('config.linux.sysctls', config.linux?.sysctls ?? {}),
  };
}
