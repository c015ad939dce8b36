import { InvalidArgumentError } from '../../core/errors.js';
import type { IdMapping, UserNamespace as DomainUserNamespace } from '../../oci/namespaces.js';
import { NamespaceMode, type IDMapping, type NamespaceOption, type UserNamespace as CriUserNamespace } from '../generated/api.js';
import type { Init } from '../service-types.js';

/** kubelet gives each pod ids in blocks of this size, starting at a multiple of it. */
const IDS_PER_POD = 65536;
/** The kernel takes at most this many lines in an id map. */
const MAX_RANGES = 340;
const MAX_ID = 2 ** 32;

function mappings(field: string, list: readonly IDMapping[]): IdMapping[] {
  if (list.length === 0) throw new InvalidArgumentError(`${field} is empty: a user namespace of the pod's own needs an id map`);
  if (list.length > MAX_RANGES) throw new InvalidArgumentError(`${field} has ${list.length} ranges; the kernel takes at most ${MAX_RANGES}`);
  const out = list.map((m, i) => {
    const at = `${field}[${i}]`;
    for (const [name, v] of [
      ['host_id', m.host_id],
      ['container_id', m.container_id],
      ['length', m.length],
    ] as const) {
      if (!Number.isInteger(v) || v < 0 || v >= MAX_ID) throw new InvalidArgumentError(`${at}.${name} ${v} is out of range`);
    }
    if (m.length === 0 || m.length % IDS_PER_POD !== 0) throw new InvalidArgumentError(`${at}.length ${m.length} is not a positive multiple of ${IDS_PER_POD}`);
    if (m.host_id === 0 || m.host_id % IDS_PER_POD !== 0)
      throw new InvalidArgumentError(`${at}.host_id ${m.host_id} is not a positive multiple of ${IDS_PER_POD} (the host's own ids are never a pod's)`);
    if (m.host_id + m.length > MAX_ID || m.container_id + m.length > MAX_ID) throw new InvalidArgumentError(`${at} runs past the last id`);
    return { containerId: m.container_id, hostId: m.host_id, length: m.length };
  });
  const overlap = (a: number, alen: number, b: number, blen: number) => a < b + blen && b < a + alen;
  for (let i = 0; i < out.length; i++) {
    for (let j = i + 1; j < out.length; j++) {
      const a = out[i] as IdMapping;
      const b = out[j] as IdMapping;
      if (overlap(a.containerId, a.length, b.containerId, b.length) || overlap(a.hostId, a.length, b.hostId, b.length)) {
        throw new InvalidArgumentError(`${field}[${i}] and ${field}[${j}] overlap`);
      }
    }
  }
  if (!out.some((m) => m.containerId === 0)) throw new InvalidArgumentError(`${field} does not map the container's root (id 0)`);
  return out;
}

/**
 * userns_options in domain terms: none for the host's user namespace
 * (NODE), kubelet's id maps for a pod's own (POD). A pod in a user
 * namespace of its own shares no other namespace with the host.
 */
export function userNamespaceFrom(ns: NamespaceOption | undefined): DomainUserNamespace | undefined {
  const opts = ns?.userns_options;
  if (!opts || opts.mode === NamespaceMode.NODE) return undefined;
  if (opts.mode !== NamespaceMode.POD) throw new InvalidArgumentError(`userns_options.mode ${opts.mode} is not supported: only NODE and POD are`);
  for (const [kind, mode] of [
    ['network', ns?.network],
    ['ipc', ns?.ipc],
    ['pid', ns?.pid],
  ] as const) {
    if (mode === NamespaceMode.NODE) throw new InvalidArgumentError(`a pod in a user namespace of its own cannot share the host's ${kind} namespace`);
  }
  return { uids: mappings('userns_options.uids', opts.uids), gids: mappings('userns_options.gids', opts.gids) };
}

/** The pod's user namespace as PodSandboxStatus reports it back to kubelet. */
export function toCriUserNamespace(userns: DomainUserNamespace | undefined): Init<CriUserNamespace> {
  if (!userns) return { mode: NamespaceMode.NODE, uids: [], gids: [] };
  const back = (list: readonly IdMapping[]) => list.map((m) => ({ container_id: m.containerId, host_id: m.hostId, length: m.length }));
  return { mode: NamespaceMode.POD, uids: back(userns.uids), gids: back(userns.gids) };
}
