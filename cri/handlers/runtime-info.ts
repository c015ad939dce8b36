import type { Condition } from '../../core/condition.js';
import type { CgroupManager, CradleConfig } from '../../core/config/config.js';
import { packageVersion } from '../../core/package-info.js';
import type { RuntimeHandlerInfo } from '../../runtime/runtime-handlers.js';
import { CgroupDriver, type RuntimeCondition, type RuntimeHandler, type RuntimeServiceMethods } from '../generated/api.js';
import type { Init, ServiceHandlers } from '../service-types.js';

/** What the runtime-wide RPCs read; every method is a memory read. */
export interface RuntimeInfoSource {
  config(): CradleConfig;
  runtimeReadiness(): Condition;
  networkReadiness(): Condition;
  runtimeHandlers(): readonly RuntimeHandlerInfo[];
  defaultRuntimeHandler(): string;
  /** Fixed at start: kubelet reads it once and must not see it change. */
  cgroupManager: CgroupManager;
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

export function runtimeInfoHandlers(source: RuntimeInfoSource): ServiceHandlers<RuntimeServiceMethods> {
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
        features: { supplemental_groups_policy: false, user_namespaces_host_network: false, mount_options: false },
        info: req.verbose ? { config: JSON.stringify(source.config()) } : {},
      };
    },

    RuntimeConfig: async () => ({
      linux: { cgroup_driver: source.cgroupManager === 'systemd' ? CgroupDriver.SYSTEMD : CgroupDriver.CGROUPFS },
    }),
  };
}
