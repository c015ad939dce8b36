import type { ContainerRecord } from '../../runtime/container-record.js';
import { codecFor } from '../codec.js';
import { containerInfo, containerListItem, containerStatus } from '../convert/container-status.js';
import { containerFilter } from '../convert/filters.js';
import { EncodingCache, encodedRepeated } from '../encoded.js';
import type { ContainerFilter, ListContainersResponse, RuntimeServiceMethods } from '../generated/api.js';
import type { Init, ServiceHandlers } from '../service-types.js';
import { chunked } from '../stream-chunks.js';
import { requireId } from '../validate.js';
import type { CriDeps } from './deps.js';

/** ContainerStatus, ListContainers, StreamContainers, GetContainerEvents: answered from memory. */
export function containerStatusHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  const encoded = new EncodingCache<ContainerRecord>((rec) => codecFor('Container').encode(containerListItem(rec)));
  const listed = (f: ContainerFilter | undefined) => {
    const filter = containerFilter(f);
    return filter ? d.containers.list(filter) : [];
  };
  return {
    ContainerStatus: async (req) => {
      const rec = d.containers.get(requireId('container_id', req.container_id));
      const who = await d.containers.io.identity(rec);
      const user = who ? { linux: { uid: BigInt(who.uid), gid: BigInt(who.gid), supplemental_groups: who.groups.map(BigInt) } } : undefined;
      return { status: { ...containerStatus(rec), ...(user ? { user } : {}) }, info: req.verbose ? { info: containerInfo(rec) } : {} };
    },

    // ListContainersResponse.containers is field 1.
    ListContainers: async (req) =>
      encodedRepeated(
        1,
        listed(req.filter).map((r) => encoded.get(r)),
      ) as Init<ListContainersResponse>,

    StreamContainers: async function* (req) {
      const all = listed(req.filter).map(containerListItem);
      for (const chunk of chunked(all)) yield { containers: chunk };
    },

    GetContainerEvents: (_req, ctx) => d.events.subscribe(ctx),
  };
}
