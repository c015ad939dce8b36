import { nowNs } from '../../core/clock.js';
import { InvalidArgumentError } from '../../core/errors.js';
import type { PortMapping } from '../../network/pod-network.js';
import type { PodNetworks } from '../../network/pod-network.js';
import type { SandboxManager, SandboxFilter } from '../../sandbox/sandbox-manager.js';
import { isReady, type NamespaceMode as DomainNamespaceMode, type SandboxRecord, type SandboxSpec } from '../../sandbox/sandbox-spec.js';
import {
  NamespaceMode,
  PodSandboxState,
  Protocol,
  type PodSandbox,
  type PodSandboxConfig,
  type PodSandboxFilter,
  type ListPodSandboxResponse,
  type RuntimeServiceMethods,
} from '../generated/api.js';
import type { Init, ServiceHandlers } from '../service-types.js';
import { chunked } from '../stream-chunks.js';
import { codecFor } from '../codec.js';
import { cidr as validCidr, dnsLabel, dnsSubdomain, hostname, ipAddress, optionalAbsolutePath, plain, podUid, port, resolverOption, searchDomain, stringMap } from '../validate.js';
import { EncodingCache, encodedRepeated } from '../encoded.js';

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

function toCriMode(mode: DomainNamespaceMode): NamespaceMode {
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
  if (ns?.userns_options && ns.userns_options.mode !== NamespaceMode.NODE) {
    throw new InvalidArgumentError('user namespaces are not supported by this runtime (Status reports user_namespaces: false)');
  }
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
    sysctls: stringMap('config.linux.sysctls', config.linux?.sysctls ?? {}),
  };
}

function criState(rec: SandboxRecord): PodSandboxState {
  return isReady(rec) ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY;
}

function metadata(rec: SandboxRecord) {
  return { name: rec.spec.name, uid: rec.spec.uid, namespace: rec.spec.namespace, attempt: rec.spec.attempt };
}

function listItem(rec: SandboxRecord): Init<PodSandbox> {
  return {
    id: rec.id,
    metadata: metadata(rec),
    state: criState(rec),
    created_at: rec.createdAt,
    labels: rec.spec.labels,
    annotations: rec.spec.annotations,
    runtime_handler: rec.spec.runtimeHandler,
  };
}

function domainFilter(filter: PodSandboxFilter | undefined): SandboxFilter {
  if (!filter) return {};
  return {
    id: filter.id || undefined,
    state: filter.state ? (filter.state.state === PodSandboxState.SANDBOX_READY ? 'ready' : 'notready') : undefined,
    labels: Object.keys(filter.label_selector).length > 0 ? filter.label_selector : undefined,
  };
}

function requireId(id: string): string {
  if (id === '') throw new InvalidArgumentError('pod_sandbox_id is empty');
  return id;
}


export function podHandlers(sandboxes: SandboxManager, networks: PodNetworks): ServiceHandlers<RuntimeServiceMethods> {
  const encoded = new EncodingCache<SandboxRecord>((rec) => codecFor('PodSandbox').encode(listItem(rec)));
  return {
    RunPodSandbox: async (req, ctx) => {
      const rec = await sandboxes.run(sandboxSpecFrom(req.config, req.runtime_handler), ctx.signal);
      return { pod_sandbox_id: rec.id };
    },

    StopPodSandbox: async (req) => {
      await sandboxes.stop(requireId(req.pod_sandbox_id));
      return {};
    },

    RemovePodSandbox: async (req) => {
      await sandboxes.remove(requireId(req.pod_sandbox_id));
      return {};
    },

    PodSandboxStatus: async (req) => {
      const rec = sandboxes.get(requireId(req.pod_sandbox_id));
      const [ip = '', ...more] = rec.ips;
      return {
        status: {
          id: rec.id,
          metadata: metadata(rec),
          state: criState(rec),
          created_at: rec.createdAt,
          network: { ip, additional_ips: more.map((a) => ({ ip: a })) },
          linux: {
            namespaces: {
              options: {
                network: toCriMode(rec.spec.namespaces.network),
                pid: toCriMode(rec.spec.namespaces.pid),
                ipc: toCriMode(rec.spec.namespaces.ipc),
                target_id: rec.spec.namespaces.targetId,
              },
            },
          },
          labels: rec.spec.labels,
          annotations: rec.spec.annotations,
          runtime_handler: rec.spec.runtimeHandler,
        },
        info: req.verbose ? { info: verboseInfo(rec, sandboxes) } : {},
        timestamp: nowNs(),
      };
    },

    // ListPodSandboxResponse.items is field 1.
    ListPodSandbox: async (req) => encodedRepeated(1, sandboxes.list(domainFilter(req.filter)).map((r) => encoded.get(r))) as Init<ListPodSandboxResponse>,

    StreamPodSandboxes: async function* (req) {
      const items = sandboxes.list(domainFilter(req.filter)).map(listItem);
      for (const chunk of chunked(items)) yield { pod_sandboxes: chunk };
    },

    UpdateRuntimeConfig: async (req) => {
      const cidr = req.runtime_config?.network_config?.pod_cidr;
      // Dual-stack nodes get both networks, comma-separated, as kubelet joins them.
      if (cidr) networks.setPodCidr(cidr.split(',').map((c, i) => validCidr(`runtime_config.network_config.pod_cidr[${i}]`, c.trim())).join(','));
      return {};
    },
  };
}

function verboseInfo(rec: SandboxRecord, sandboxes: SandboxManager): string {
  return JSON.stringify(
    {
      id: rec.id,
      createdAt: rec.createdAt.toString(),
      state: rec.state,
      namespaces: rec.pins,
      initPid: rec.initPid,
      ips: rec.ips,
      networkAttached: rec.networkAttached,
      shm: rec.shmMounted ? sandboxes.shmPath(rec.id) : '',
      files: { hostname: sandboxes.podFile(rec.id, 'hostname'), hosts: sandboxes.podFile(rec.id, 'hosts'), resolvConf: sandboxes.podFile(rec.id, 'resolv.conf') },
      config: rec.spec,
    },
    null,
    0,
  );
}
