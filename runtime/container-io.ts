import type { ContainerResources } from '../cgroups/resource-limits.js';
import { errorMessage, FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { waitForFile } from '../core/fs-util.js';
import type { ObjectStore } from '../core/object-store.js';
import { ociResources } from '../oci/oci-resources.js';
import { join } from 'node:path';
import { secondsToTimerMs } from '../core/timers.js';
import { attachStream } from './attach-stream.js';
import type { ArchiveWriter } from './checkpoint-archive.js';
import { checkpointContainer } from './container-checkpoint.js';
import { criuProblem } from './criu.js';
import { reopenLogFile } from './conmon-control.js';
import { containerState, type ContainerRecord } from './container-record.js';
import { execStream } from './exec-stream.js';
import { execSync, type ExecResult } from './exec-sync.js';
import type { OciRuntime } from './oci-runtime.js';
import type { HandlerFeatures } from './runtime-handlers.js';
import { processIdentity } from './process-tree.js';
import type { ClientIO, CommandResult } from './stream-io.js';

/** A checkpoint's bound when the request names none. */
const CHECKPOINT_DEFAULT_TIMEOUT_MS = 10 * 60_000;

/** How long conmon may take to reopen a log file, on a busy node. */
const REOPEN_WAIT_MS = 30_000;

/**
 * What is done to a running container besides its lifecycle: commands run
 * in it (ExecSync, interactive exec), its own stdio joined (attach), new
 * limits, a rotated log reopened.
 */
export class ContainerIO {
  constructor(
    private readonly store: ObjectStore<ContainerRecord>,
    private readonly runtimeFor: (handler: string) => OciRuntime,
    private readonly bundle: (id: string) => string,
    private readonly upperDir: (id: string) => string,
    private readonly featuresOf: (handler: string) => HandlerFeatures | undefined,
    /** Checkpoint archives (CheckpointPod's too), written whole or not at all. */
    readonly archives: ArchiveWriter,
  ) {}

  private running(idOrPrefix: string): ContainerRecord {
    const rec = this.store.get(idOrPrefix);
    if (containerState(rec) !== 'running') throw new FailedPreconditionError(`container "${rec.id}" is not running`);
    return rec;
  }

  async exec(idOrPrefix: string, cmd: readonly string[], timeoutSeconds: number, signal?: AbortSignal): Promise<ExecResult> {
    if (cmd.length === 0 || cmd[0] === '') throw new InvalidArgumentError('cmd is empty');
    const rec = this.running(idOrPrefix);
    return execSync({ runtime: this.runtimeFor(rec.runtimeHandler), id: rec.id, bundle: this.bundle(rec.id), cmd, timeoutSeconds, signal });
  }

  /** An interactive exec for the streaming server: the client's streams are the command's stdio. */
  async streamExec(idOrPrefix: string, cmd: readonly string[], tty: boolean, io: ClientIO): Promise<CommandResult> {
    const rec = this.running(idOrPrefix);
    return execStream({ runtime: this.runtimeFor(rec.runtimeHandler), id: rec.id, bundle: this.bundle(rec.id), cmd, tty, io });
  }

  /** Attaches the streaming client to a running container's own stdio. */
  async streamAttach(idOrPrefix: string, tty: boolean, io: ClientIO): Promise<CommandResult> {
    return attachStream(this.bundle(this.running(idOrPrefix).id), tty, io);
  }

  /** CheckpointContainer: an archive of the running container at `location`; it goes on running. */
  async checkpoint(idOrPrefix: string, location: string, timeoutSeconds: number): Promise<void> {
    const rec = this.running(idOrPrefix);
    const missing = this.noCheckpointCommand(rec.runtimeHandler);
    if (missing) throw new FailedPreconditionError(`cannot checkpoint container "${rec.id}": ${missing}`);
    await this.store.locks.run(rec.id, () =>
      checkpointContainer({
        rec: this.running(rec.id),
        runtime: this.runtimeFor(rec.runtimeHandler),
        bundle: this.bundle(rec.id),
        upperDir: this.upperDir(rec.id),
        location,
        timeoutMs: timeoutSeconds > 0 ? secondsToTimerMs(timeoutSeconds) : CHECKPOINT_DEFAULT_TIMEOUT_MS,
        scratchRoot: join(this.bundle(rec.id), 'checkpoints'),
        archives: this.archives,
      }),
    );
  }

  private noCheckpointCommand(handler: string): string | undefined {
    if (this.featuresOf(handler)?.checkpoint) return undefined;
    return `its runtime handler "${handler}" (${this.runtimeFor(handler).path}) has no checkpoint command (built without CRIU)`;
  }

  /**
   * Why a container of `handler` cannot be restored from a checkpoint here
   * (in words for a FAILED_PRECONDITION), or undefined when it can.
   */
  async restoreProblem(handler: string, userNamespaced: boolean): Promise<string | undefined> {
    if (userNamespaced) return "restoring into a pod with a user namespace is not supported (the checkpoint's files carry the old mapping's owners)";
    return this.noCheckpointCommand(handler) ?? (await criuProblem());
  }

  /** New limits on the live cgroup, mapped as a create maps them; the record keeps them for status. */
  async updateResources(idOrPrefix: string, resources: ContainerResources): Promise<void> {
    const rec = this.running(idOrPrefix);
    await this.store.locks.run(rec.id, async () => {
      await this.runtimeFor(rec.runtimeHandler).update(rec.id, ociResources(resources), this.bundle(rec.id));
      const now = this.store.get(rec.id);
      this.store.save({ ...now, spec: { ...now.spec, resources } });
    });
  }

  /** Who a running container's process is (ContainerStatus.user): read from the process, not copied from the request. */
  async identity(rec: ContainerRecord): Promise<{ uid: number; gid: number; groups: number[] } | undefined> {
    return containerState(rec) === 'running' && rec.pid !== undefined ? processIdentity(rec.pid) : undefined;
  }

  /**
   * kubelet renamed the log file: conmon reopens it, and the call returns
   * only once the new file is there, since kubelet looks for it at once.
   */
  async reopenLog(idOrPrefix: string): Promise<void> {
    const rec = this.running(idOrPrefix);
    await reopenLogFile(this.bundle(rec.id)).catch((err: unknown) => {
      throw new FailedPreconditionError(`cannot reach conmon of container "${rec.id}": ${errorMessage(err)}`);
    });
    if (!(await waitForFile(rec.logPath, REOPEN_WAIT_MS))) {
      throw new FailedPreconditionError(`conmon did not reopen the log of container "${rec.id}" within ${REOPEN_WAIT_MS / 1000}s (${rec.logPath})`);
    }
  }
}
