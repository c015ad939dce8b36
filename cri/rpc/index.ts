import type { ImageServiceMethods, RuntimeServiceMethods } from '../generated/api.js';
import type { ServiceHandlers } from '../service-types.js';
import { checkpointHandlers } from './checkpoint.js';
import { containerExecHandlers } from './container-exec.js';
import { containerLifecycleHandlers } from './container-lifecycle.js';
import { containerStatusHandlers } from './container-status.js';
import type { CriDeps } from './deps.js';
import { imageHandlers } from './images.js';
import { podLifecycleHandlers } from './pod-lifecycle.js';
import { podStatusHandlers } from './pod-status.js';
import { runtimeInfoHandlers } from './runtime-info.js';
import { statsHandlers } from './stats.js';
import { streamingHandlers } from './streaming.js';

export type { CriDeps } from './deps.js';

/** Every RPC of runtime.v1's RuntimeService that Cradle serves; the rest answer UNIMPLEMENTED. */
export function runtimeServiceHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  return {
    ...runtimeInfoHandlers(d.runtimeInfo, d.networks),
    ...podLifecycleHandlers(d),
    ...podStatusHandlers(d),
    ...containerLifecycleHandlers(d),
    ...containerStatusHandlers(d),
    ...containerExecHandlers(d),
    ...statsHandlers(d),
    ...streamingHandlers(d),
    ...checkpointHandlers(d),
  };
}

export function imageServiceHandlers(d: CriDeps): ServiceHandlers<ImageServiceMethods> {
  return imageHandlers(d);
}
