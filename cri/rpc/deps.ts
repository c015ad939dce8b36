import type { ContainerEvents } from '../container-events.js';
import type { Logger } from '../../core/logger.js';
import type { ImageService } from '../../image/image-service.js';
import type { PodNetworks } from '../../network/pod-network.js';
import type { ContainerCreation } from '../../orchestration/container-creation.js';
import type { PodLifecycle } from '../../orchestration/pod-lifecycle.js';
import type { StatsSource } from '../../orchestration/stats-source.js';
import type { ContainerManager } from '../../runtime/container-manager.js';
import type { SandboxManager } from '../../sandbox/sandbox-manager.js';
import type { DiskUsage } from '../../storage/disk-usage.js';
import type { StreamingServer } from '../../streaming/server.js';
import type { RuntimeInfoSource } from './runtime-info.js';

/** What the RPCs of both services reach: the domains, and the orchestration where they meet. */
export interface CriDeps {
  sandboxes: SandboxManager;
  containers: ContainerManager;
  images: ImageService;
  networks: PodNetworks;
  pods: PodLifecycle;
  creation: ContainerCreation;
  streaming: StreamingServer;
  runtimeInfo: RuntimeInfoSource;
  /** The containers' writable layers, for ImageFsInfo: where they are and what they use. */
  writable: { mountpoint: string; usage(): Promise<DiskUsage> };
  events: ContainerEvents;
  /** Container and pod stats: read on each call, or from the last collection (`stats.collection_period`). */
  stats: StatsSource;
  /** Volatile state; pod checkpoints are gathered below it. */
  runroot: string;
  /** For what the orchestration of several domains has to say (a pod restore undone). */
  logger: Logger;
}
