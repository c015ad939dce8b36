import { errorMessage, FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { failpoint } from '../core/failpoints.js';
import type { Logger } from '../core/logger.js';
import { bandwidthCapability } from './bandwidth.js';
import { CniCache } from './cni-cache.js';
import { addNetworkList, delNetworkList, gcNetworkList, resultIps, type CniAttachment, type CniExecOptions } from './cni-network.js';
import type { NetworkReadiness } from './network-readiness.js';

export interface PortMapping {
  protocol: 'tcp' | 'udp' | 'sctp';
  containerPort: number;
  hostPort: number;
  hostIp: string;
}

export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

export interface PodNetworkRequest {
  podId: string;
  name: string;
  namespace: string;
  uid: string;
  netns: string;
  portMappings: readonly PortMapping[];
  dns: DnsConfig | undefined;
  annotations: Readonly<Record<string, string>>;
}

export const POD_IFNAME = 'eth0';

/**
 * CNI_ARGS: `K=V` pairs joined by ";". A value holding ";" or "=" would
 * add pairs of its own (an IP=... a plugin obeys), so it is refused here
 * whatever the caller checked before.
 */
export function cniArgs(pairs: ReadonlyArray<readonly [string, string]>): string {
  for (const [k, v] of pairs) {
    if (/[;=\p{Cc}]/u.test(v))
      throw new InvalidArgumentError(`${k} ${JSON.stringify(v)} cannot be passed to CNI plugins: it holds ";", "=" or a control character`);
  }
  return pairs.map(([k, v]) => `${k}=${v}`).join(';');
}

/** Attaches pods to the default CNI network and detaches them again. */
export class PodNetworks {
  private podCidr = '';

  constructor(
    private readonly readiness: NetworkReadiness,
    private readonly cache: CniCache,
    private readonly exec: () => CniExecOptions,
    private readonly logger: Logger,
  ) {}

  /** From UpdateRuntimeConfig: the node's pod CIDR, offered to IPAM as `ipRanges`. */
  setPodCidr(cidr: string): void {
    if (cidr !== this.podCidr) this.logger.info('pod CIDR updated', { from: this.podCidr, to: cidr });
    this.podCidr = cidr;
  }

  /** Validates what attach would send, before anything is created (bad annotations are the caller's error). */
  capabilityArgs(req: PodNetworkRequest): Record<string, unknown> {
    const caps: Record<string, unknown> = {
      portMappings: req.portMappings
        .filter((p) => p.hostPort > 0)
        .map((p) => ({ hostPort: p.hostPort, containerPort: p.containerPort, protocol: p.protocol, hostIP: p.hostIp })),
      'io.kubernetes.cri.pod-annotations': { ...req.annotations },
    };
    const bandwidth = bandwidthCapability(req.annotations);
    if (bandwidth) caps.bandwidth = bandwidth;
    if (req.dns) caps.dns = { servers: req.dns.servers, searches: req.dns.searches, options: req.dns.options };
    if (this.podCidr) caps.ipRanges = this.podCidr.split(',').map((subnet) => [{ subnet }]);
    return caps;
  }

  /** CNI ADD on the default network; returns the pod's IPs. A failed ADD is undone with DEL. */
  async attach(req: PodNetworkRequest): Promise<string[]> {
    const network = this.readiness.defaultNetwork();
    if (!network) throw new FailedPreconditionError(`pod network is not ready: ${this.readiness.readiness().message}`);
    const att: CniAttachment = {
      containerId: req.podId,
      netns: req.netns,
      ifName: POD_IFNAME,
      args: cniArgs([
        ['IgnoreUnknown', '1'],
        ['K8S_POD_NAMESPACE', req.namespace],
        ['K8S_POD_NAME', req.name],
        ['K8S_POD_INFRA_CONTAINER_ID', req.podId],
        ['K8S_POD_UID', req.uid],
      ]),
      capabilityArgs: this.capabilityArgs(req),
    };
    const opts = this.exec();
    const entry = {
      schema: 1 as const,
      id: CniCache.key(req.podId, POD_IFNAME),
      containerId: req.podId,
      ifName: POD_IFNAME,
      network,
      args: att.args,
      capabilityArgs: att.capabilityArgs,
    };
    // Written before ADD: plugins may take an IP and a veth before a crash, and DEL needs to know what to release.
    this.cache.save({ ...entry, result: undefined });
    failpoint('RunPodSandbox/cni-add-intent');
    let result: Record<string, unknown>;
    try {
      result = await addNetworkList(network, att, opts);
    } catch (err) {
      await delNetworkList(network, att, undefined, opts).then(
        () => this.cache.remove(req.podId, POD_IFNAME),
        (delErr: unknown) => this.logger.warn('CNI DEL after a failed ADD failed too', { pod: req.podId, error: errorMessage(delErr) }),
      );
      throw err;
    }
    failpoint('RunPodSandbox/cni-added');
    this.cache.save({ ...entry, result });
    return resultIps(result);
  }

  /**
   * CNI DEL with what ADD used (from the cache). `netns` may be empty when
   * the namespace is gone (after a reboot): plugins still release IPs.
   */
  async detach(podId: string, netns: string): Promise<void> {
    const entry = this.cache.load(podId, POD_IFNAME);
    if (!entry) return;
    const att: CniAttachment = { containerId: podId, netns, ifName: entry.ifName, args: entry.args, capabilityArgs: entry.capabilityArgs };
    await delNetworkList(entry.network, att, entry.result, this.exec());
    this.cache.remove(podId, POD_IFNAME);
  }

  /** CNI GC at start: plugins may release anything not held by `livePods` (CNI 1.1.0+ networks). */
  async collectGarbage(livePods: readonly string[]): Promise<void> {
    const network = this.readiness.defaultNetwork();
    if (!network) return;
    try {
      await gcNetworkList(
        network,
        livePods.map((id) => ({ containerID: id, ifname: POD_IFNAME })),
        this.exec(),
      );
    } catch (err) {
      this.logger.warn('CNI GC failed', { network: network.name, error: errorMessage(err) });
    }
  }

  /** Attachments whose pod no longer exists (a crash between ADD and the pod record): detach them. */
  async collectOrphans(livePods: ReadonlySet<string>): Promise<void> {
    for (const entry of this.cache.all(this.logger)) {
      if (livePods.has(entry.containerId)) continue;
      this.logger.info('releasing the network of a pod that has no record', { pod: entry.containerId });
      await this.detach(entry.containerId, '').catch((err: unknown) =>
        this.logger.warn('cannot release orphaned pod network', { pod: entry.containerId, error: errorMessage(err) }),
      );
    }
  }
}
