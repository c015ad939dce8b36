import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { cgroupDir, isSystemdCgroupsPath } from '../cgroups/cgroup-paths.js';
import { killCgroupProcesses, removeCgroup } from '../cgroups/cgroup-tree.js';
import { failpoint } from '../core/failpoints.js';
import type { Logger } from '../core/logger.js';
import { unmountAllUnder } from '../storage/mounts.js';
import type { RootfsStore } from '../storage/rootfs-store.js';
import { stopConmon } from './conmon.js';
import type { ContainerRecord } from './container-record.js';
import type { OciRuntime } from './oci-runtime.js';
import { step } from '../core/tracing.js';

/** Where a container's things are, and how to reach its runtime. */
export interface TeardownContext {
  /** `<runroot>/containers`: one bundle directory per container. */
  bundlesDir: string;
  socketDir: string;
  exitsDir: string;
  /** The runtime of a handler; undefined when the handler is no longer configured. */
  runtimeFor(handler: string): OciRuntime | undefined;
  rootfs: RootfsStore;
  logger: Logger;
}

/**
 * Everything of a container outside its record, released; each step
 * accepts what is already gone, so a failed create, a removal and the
 * recovery of either after a crash all come here. `thorough`: the
 * request may have been cut short anywhere (a create), so monitors and
 * runtimes are searched for by the container's id and whatever is in its
 * cgroup is killed, instead of trusting pid files.
 */
export async function teardownContainer(rec: ContainerRecord, ctx: TeardownContext, thorough: boolean): Promise<void> {
  const bundle = join(ctx.bundlesDir, rec.id);
  await step('conmon stopped', () => stopConmon(bundle, rec.id, { search: thorough }));
  const dir = rec.cgroupsPath ? cgroupDir(rec.cgroupsPath) : '';
  if (thorough && dir) await killCgroupProcesses(dir);
  const runtime = ctx.runtimeFor(rec.runtimeHandler);
  if (!runtime) ctx.logger.warn('the runtime handler of a container is gone; deleting what is left without it', { id: rec.id, handler: rec.runtimeHandler });
  await runtime?.delete(rec.id);
  failpoint('RemoveContainer/runtime-deleted');
  // systemd removes a scope itself once its processes are gone.
  if (dir && !isSystemdCgroupsPath(rec.cgroupsPath)) await step('cgroup removed', () => removeCgroup(dir));
  await ctx.rootfs.remove(rec.id);
  // Idmapped volumes live in the bundle: unmounted first, so the delete cannot reach the host's files.
  await step('bundle removed', async () => {
    await unmountAllUnder(bundle);
    await rm(bundle, { recursive: true, force: true });
  });
  await rm(join(ctx.exitsDir, rec.id), { force: true });
  // conmon's link from the socket dir to the bundle, for short attach socket
  // paths: named by the id, cut short to fit a socket address on long paths.
  for (const name of await readdir(ctx.socketDir).catch(() => [] as string[])) {
    if (name.length >= 32 && rec.id.startsWith(name)) await rm(join(ctx.socketDir, name), { force: true });
  }
}
