import { nowNs } from '../../core/clock.js';
import type { SandboxRecord } from '../../sandbox/sandbox-spec.js';
import { codecFor } from '../codec.js';
import { podFilter } from '../convert/filters.js';
import { podInfo, podListItem, podStatus } from '../convert/pod-status.js';
import { EncodingCache, encodedRepeated } from '../encoded.js';
import type { ListPodSandboxResponse, RuntimeServiceMethods } from '../generated/api.js';
import type { Init, ServiceHandlers } from '../service-types.js';
import { chunked } from '../stream-chunks.js';
import { requireId } from '../validate.js';
import type { CriDeps } from './deps.js';

/** PodSandboxStatus, ListPodSandbox, StreamPodSandboxes: answered from memory. */
export function podStatusHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  const encoded = new EncodingCache<SandboxRecord>((rec) => codecFor('PodSandbox').encode(podListItem(rec)));
  return {
    PodSandboxStatus: async (req) => {
      const rec = d.sandboxes.get(requireId('pod_sandbox_id', req.pod_sandbox_id));
      return { status: podStatus(rec), info: req.verbose ? { info: podInfo(rec, d.sandboxes) } : {}, timestamp: nowNs() };
    },

    // ListPodSandboxResponse.items is field 1.
    ListPodSandbox: async (req) =>
      encodedRepeated(
        1,
        d.sandboxes.list(podFilter(req.filter)).map((r) => encoded.get(r)),
      ) as Init<ListPodSandboxResponse>,

    StreamPodSandboxes: async function* (req) {
      const items = d.sandboxes.list(podFilter(req.filter)).map(podListItem);
      for (const chunk of chunked(items)) yield { pod_sandboxes: chunk };
    },
  };
}
