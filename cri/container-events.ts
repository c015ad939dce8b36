import { nowNs } from '../core/clock.js';
import { Fanout } from '../core/fanout.js';
import type { Logger } from '../core/logger.js';
import type { ContainerManager } from '../runtime/container-manager.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import type { SandboxRecord } from '../sandbox/sandbox-spec.js';
import { containerEventTypes, podEventTypes } from './convert/container-events.js';
import { containerStatus } from './convert/container-status.js';
import { podStatus } from './convert/pod-status.js';
import type { ContainerEventResponse, ContainerEventType } from './generated/api.js';
import type { CallContext, Init } from './service-types.js';

type Event = Init<ContainerEventResponse>;

/**
 * GetContainerEvents (kubelet's evented PLEG): every change of a container
 * or pod record becomes its events, each carrying the pod's status and all
 * its containers' statuses as they were at that moment, in the order the
 * changes were made. The event is built once, when it happens, and only
 * while someone subscribes.
 */
export class ContainerEvents {
  private readonly fanout: Fanout<Event>;

  constructor(
    private readonly sandboxes: SandboxManager,
    private readonly containers: ContainerManager,
    limit: number,
    private readonly logger: Logger,
  ) {
    this.fanout = new Fanout<Event>(limit, 'container events');
    containers.watch((before, after) => {
      const rec = after ?? before;
      if (!rec) return;
      for (const type of containerEventTypes(before, after)) this.publish(rec.id, type, rec.sandboxId, undefined);
    });
    sandboxes.watch((before, after) => {
      const rec = after ?? before;
      if (!rec) return;
      for (const type of podEventTypes(before, after)) this.publish(rec.id, type, rec.id, after ? undefined : rec);
    });
  }

  /** The events from now on, for one subscriber; cut off with RESOURCE_EXHAUSTED if it falls `limit` behind. */
  /** How many GetContainerEvents streams are open. */
  get subscribers(): number {
    return this.fanout.size;
  }

  subscribe(ctx: CallContext): AsyncIterable<Event> {
    const events = this.fanout.subscribe(ctx.signal, (err) => {
      this.logger.warn('a container events subscriber fell behind; cut off', { error: err.message });
      ctx.end(err);
    });
    this.logger.debug('container events subscriber joined', { subscribers: this.fanout.size });
    return events;
  }

  /** `gone`: the pod's last record, for the event of its removal. */
  private publish(id: string, type: ContainerEventType, podId: string, gone: SandboxRecord | undefined): void {
    this.fanout.publish(() => {
      const known = this.sandboxes.find(podId);
      const pod = gone ?? (known === undefined ? undefined : this.sandboxes.get(known));
      return {
        container_id: id,
        container_event_type: type,
        created_at: nowNs(),
        ...(pod ? { pod_sandbox_status: podStatus(pod) } : {}),
        containers_statuses: this.containers.list({ sandboxId: podId }).map(containerStatus),
      };
    });
  }
}
