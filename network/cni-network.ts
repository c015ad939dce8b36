import type { CniNetworkConfig, CniPluginConf } from './cni-config.js';
import { invokePlugin, type CniCommand } from './cni-plugin.js';

export interface CniAttachment {
  containerId: string;
  netns: string;
  ifName: string;
  /** `IgnoreUnknown=1;K8S_POD_NAMESPACE=...` */
  args: string;
  /** runtimeConfig values by capability name; each plugin sees only those it declares. */
  capabilityArgs: Record<string, unknown>;
}

export interface CniExecOptions {
  binDirs: readonly string[];
  timeoutMs: number;
}

export function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map((x) => Number.parseInt(x, 10));
  return a > major || (a === major && b >= minor);
}

/** The stdin of one plugin in a list: its own conf plus name, version, runtimeConfig and prevResult. */
function pluginConfig(network: CniNetworkConfig, plugin: CniPluginConf, att: CniAttachment, prevResult: unknown): object {
  const conf: Record<string, unknown> = { ...plugin, name: network.name, cniVersion: network.cniVersion };
  const declared = (plugin.capabilities ?? {}) as Record<string, unknown>;
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, value] of Object.entries(att.capabilityArgs)) {
    if (declared[cap] === true) runtimeConfig[cap] = value;
  }
  if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
  if (prevResult !== undefined) conf.prevResult = prevResult;
  return conf;
}

function invocation(command: CniCommand, att: CniAttachment, opts: CniExecOptions) {
  return { command, containerId: att.containerId, netns: att.netns, ifName: att.ifName, args: att.args, binDirs: opts.binDirs, timeoutMs: opts.timeoutMs };
}

/** ADD through the list in order, each plugin receiving the previous one's result. */
export async function addNetworkList(network: CniNetworkConfig, att: CniAttachment, opts: CniExecOptions): Promise<Record<string, unknown>> {
  let prev: Record<string, unknown> | undefined;
  for (const plugin of network.plugins) {
    const out = await invokePlugin(plugin.type, pluginConfig(network, plugin, att, prev), invocation('ADD', att, opts));
    if (out !== undefined) prev = out;
  }
  return prev ?? { cniVersion: network.cniVersion };
}

/**
 * DEL through the list in reverse; from 0.4.0 on each plugin gets the cached
 * ADD result. Every plugin is asked even when one fails, so that one broken
 * plugin does not leak what the others hold (an IP lease, iptables rules);
 * the first failure is reported.
 */
export async function delNetworkList(
  network: CniNetworkConfig,
  att: CniAttachment,
  cached: Record<string, unknown> | undefined,
  opts: CniExecOptions,
): Promise<void> {
  const prev = versionAtLeast(network.cniVersion, 0, 4) ? cached : undefined;
  let first: unknown;
  for (const plugin of [...network.plugins].reverse()) {
    try {
      await invokePlugin(plugin.type, pluginConfig(network, plugin, att, prev), invocation('DEL', att, opts));
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}

/** CHECK (0.4.0+) through the list with the cached result; skipped where the config disables it. */
export async function checkNetworkList(network: CniNetworkConfig, att: CniAttachment, cached: Record<string, unknown>, opts: CniExecOptions): Promise<void> {
  if (network.disableCheck || !versionAtLeast(network.cniVersion, 0, 4)) return;
  for (const plugin of network.plugins) {
    await invokePlugin(plugin.type, pluginConfig(network, plugin, att, cached), invocation('CHECK', att, opts));
  }
}

/** The addresses (without prefix length) a result assigned, IPv4 first. */
export function resultIps(result: Record<string, unknown>): string[] {
  const ips = Array.isArray(result.ips) ? (result.ips as Array<{ address?: unknown }>) : [];
  const addrs = ips.map((i) => (typeof i.address === 'string' ? (i.address.split('/')[0] ?? '') : '')).filter((a) => a !== '');
  return [...addrs.filter((a) => !a.includes(':')), ...addrs.filter((a) => a.includes(':'))];
}

const NO_CONTAINER: CniAttachment = { containerId: '', netns: '', ifName: '', args: '', capabilityArgs: {} };

/** STATUS (CNI 1.1.0+): can the plugins add pods now? Throws the first plugin's error. */
export async function statusNetworkList(network: CniNetworkConfig, opts: CniExecOptions): Promise<void> {
  if (!versionAtLeast(network.cniVersion, 1, 1)) return;
  for (const plugin of network.plugins) {
    await invokePlugin(plugin.type, pluginConfig(network, plugin, NO_CONTAINER, undefined), invocation('STATUS', NO_CONTAINER, opts));
  }
}

export interface ValidAttachment {
  containerID: string;
  ifname: string;
}

/**
 * GC (CNI 1.1.0+): plugins release whatever they hold for attachments not
 * in `valid` (leases and rules of pods lost in a crash).
 */
export async function gcNetworkList(network: CniNetworkConfig, valid: readonly ValidAttachment[], opts: CniExecOptions): Promise<void> {
  if (!versionAtLeast(network.cniVersion, 1, 1)) return;
  for (const plugin of network.plugins) {
    const conf = { ...pluginConfig(network, plugin, NO_CONTAINER, undefined), 'cni.dev/valid-attachments': valid };
    await invokePlugin(plugin.type, conf, invocation('GC', NO_CONTAINER, opts));
  }
}

/**
 * VERSION: the spec versions each plugin of the list speaks. Throws when
 * one cannot handle the list's cniVersion, naming the plugin and what it
 * supports; plugins that answer nothing are taken at their word later.
 */
export async function checkPluginVersions(network: CniNetworkConfig, opts: CniExecOptions): Promise<void> {
  for (const plugin of network.plugins) {
    const out = await invokePlugin(plugin.type, { cniVersion: network.cniVersion }, invocation('VERSION', NO_CONTAINER, opts));
    const supported = Array.isArray(out?.supportedVersions)
      ? (out.supportedVersions as unknown[]).filter((v): v is string => typeof v === 'string')
      : undefined;
    if (supported && !supported.includes(network.cniVersion)) {
      throw new Error(`CNI plugin ${plugin.type} does not support cniVersion ${network.cniVersion} (it supports ${supported.join(', ')})`);
    }
  }
}
