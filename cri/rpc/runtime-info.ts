import type { Condition } from '../../core/condition.js';
import type { CgroupDriver as DriverName, CradleConfig } from '../../core/config/config.js';
import { CGROUP_V2 } from '../../cgroups/cgroup-stats.js';
import { packageVersion } from '../../core/package-info.js';
import type { RuntimeHandlerInfo } from '../../runtime/runtime-handlers.js';
import { CgroupDriver, type RuntimeCondition, type RuntimeHandler, type RuntimeServiceMethods } from '../generated/api.js';
import type { Init, ServiceHandlers } from '../service-types.js';
import type { PodNetworks } from '../../network/pod-network.js';
import { cidr as validCidr } from '../validate.js';
import { recentStepDurations } from '../../core/tracing.js';

/** What the runtime-wide RPCs read; every method is a memory read. */
export interface RuntimeInfoSource {
  config(): CradleConfig;
  runtimeReadiness(): Condition;
  networkReadiness(): Condition;
  runtimeHandlers(): readonly RuntimeHandlerInfo[];
  defaultRuntimeHandler(): string;
  /** Fixed at start: kubelet reads it once and must not see it change. */
  cgroupDriver: DriverName;
  /** The config files the daemon read, in order (none: the embedded default alone). */
  configFiles(): readonly string[];
  /** Image pulls under way, for `cradle pull`'s progress. */
  pulls(): readonly object[];
}

/** The CRI API version kubelet expects in VersionResponse.version. */
const KUBELET_API_VERSION = '0.1.0';

function condition(type: string, c: Condition): Init<RuntimeCondition> {
  return { type, status: c.ready, reason: c.reason, message: c.message };
}

function handlerEntry(name: string, info: RuntimeHandlerInfo): Init<RuntimeHandler> {
  return {
    name,
    features: {
      recursive_read_only_mounts: info.features.recursiveReadOnlyMounts,
      user_namespaces: info.features.userNamespaces,
    },
  };
}

/** Version, Status, RuntimeConfig and UpdateRuntimeConfig: the runtime as a whole. */
export function runtimeInfoHandlers(source: RuntimeInfoSource, networks: PodNetworks): ServiceHandlers<RuntimeServiceMethods> {
  return {
    Version: async () => ({
      version: KUBELET_API_VERSION,
      runtime_name: 'cradle',
      runtime_version: packageVersion,
      runtime_api_version: 'v1',
    }),

    Status: async (req) => {
      const handlers = source.runtimeHandlers();
      const def = handlers.find((h) => h.name === source.defaultRuntimeHandler());
      // kubelet looks up a pod's RuntimeClass handler by name; "" is the default.
      const entries = [...(def ? [handlerEntry('', def)] : []), ...handlers.map((h) => handlerEntry(h.name, h))];
      return {
        status: {
          conditions: [condition('RuntimeReady', source.runtimeReadiness()), condition('NetworkReady', source.networkReadiness())],
        },
        runtime_handlers: entries,
        features: { supplemental_groups_policy: true, user_namespaces_host_network: false, mount_options: false },
        info: req.verbose
          ? {
              config: JSON.stringify(source.config()),
              daemon: JSON.stringify({
                version: packageVersion,
                pid: process.pid,
                configFiles: source.configFiles(),
                cgroupVersion: CGROUP_V2 ? 2 : 1,
                handlers: handlers.map((h) => ({ name: h.name, path: h.config.path, default: h.name === source.defaultRuntimeHandler() })),
              }),
              pulls: JSON.stringify(source.pulls()),
              // The recent duration of each traced step, for `cradle bench --breakdown`.
              steps: JSON.stringify(recentStepDurations()),
            }
          : {},
      };
    },

    RuntimeConfig: async () => ({
      linux: { cgroup_driver: source.cgroupDriver === 'systemd' ? CgroupDriver.SYSTEMD : CgroupDriver.CGROUPFS },
    }),

    UpdateRuntimeConfig: async (req) => {
      const cidr = req.runtime_config?.network_config?.pod_cidr;
      // Dual-stack nodes get both networks, comma-separated, as kubelet joins them.
      if (cidr)
        networks.setPodCidr(
          cidr
            .split(',')
            .map((c, i) => validCidr(`runtime_config.network_config.pod_cidr[${i}]`, c.trim()))
            .join(','),
        );
      return {};
    },
  };
}
