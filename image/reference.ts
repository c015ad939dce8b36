import { InvalidArgumentError } from '../core/errors.js';

/** A parsed, normalized image reference: `docker.io/library/busybox:latest`, `reg:5000/a/b@sha256:...`. */
export interface ImageReference {
  /** Registry host[:port], e.g. `docker.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Repository path within the registry, e.g. `library/busybox`. */
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
}

export const DEFAULT_REGISTRY = 'docker.io';
const DEFAULT_TAG = 'latest';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const HOST = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/;

function invalid(ref: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`invalid image reference ${JSON.stringify(ref)}: ${why}`);
}

/**
 * Parses a reference as Docker does: a first component with a dot, a colon
 * or `localhost` is a registry, anything else is on docker.io; one-component
 * names on docker.io live under `library/`; no tag and no digest means
 * `latest`.
 */
export function parseReference(ref: string): ImageReference {
  if (ref === '') throw invalid(ref, 'it is empty');
  if (ref.length > 4096) throw invalid(`${ref.slice(0, 64)}...`, 'it is too long');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(ref, `${JSON.stringify(digest)} is not a digest (algorithm:hex)`);
    if (digest.startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(digest)) throw invalid(ref, 'a sha256 digest has 64 lowercase hex characters');
  }
  let tag: string | undefined;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(ref, `${JSON.stringify(tag)} is not a valid tag`);
  }
  if (rest === '') throw invalid(ref, 'it has no repository name');
  const parts = rest.split('/');
  let registry = DEFAULT_REGISTRY;
  const first = parts[0] as string;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    parts.shift();
    if (!HOST.test(registry)) throw invalid(ref, `${JSON.stringify(registry)} is not a valid registry host`);
  }
  if (registry === 'index.docker.io') registry = DEFAULT_REGISTRY;
  for (const part of parts) {
    if (part !== part.toLowerCase()) throw invalid(ref, 'repository names must be lowercase');
    if (!COMPONENT.test(part)) throw invalid(ref, `${JSON.stringify(part)} is not a valid repository path component`);
  }
  if (registry === DEFAULT_REGISTRY && parts.length === 1) parts.unshift('library');
  if (tag === undefined && digest === undefined) tag = DEFAULT_TAG;
  return { registry, repository: parts.join('/'), tag, digest };
}

export function repoName(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** `docker.io/library/busybox:latest` (the tag form kubelet and crictl show). */
export function taggedName(ref: ImageReference): string | undefined {
  return ref.tag === undefined ? undefined : `${repoName(ref)}:${ref.tag}`;
}

/** `docker.io/library/busybox@sha256:...` */
export function digestName(ref: ImageReference, digest: string): string {
  return `${repoName(ref)}@${digest}`;
}

export function formatReference(ref: ImageReference): string {
  return `${repoName(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
