import { InvalidArgumentError } from '../core/errors.js';

export const MEDIA = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What a manifest request accepts, most wanted first. */
export const MANIFEST_ACCEPT = [MEDIA.ociIndex, MEDIA.ociManifest, MEDIA.dockerList, MEDIA.dockerManifest, MEDIA.dockerSchema1Signed, MEDIA.dockerSchema1].join(
  ', ',
);

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
}

export type ManifestDocument = { kind: 'index'; manifests: Descriptor[] } | { kind: 'manifest'; config: Descriptor; layers: Descriptor[] };

function isDescriptor(d: unknown): d is Descriptor {
  const x = d as Descriptor;
  return typeof x === 'object' && x !== null && typeof x.digest === 'string' && typeof x.size === 'number' && x.size >= 0;
}

/** Parses a manifest or index; refuses schema 1 with a reason an operator can act on. */
export function parseManifest(image: string, contentType: string, body: Buffer): ManifestDocument {
  let doc: { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; config?: unknown; layers?: unknown };
  try {
    doc = JSON.parse(body.toString('utf8')) as typeof doc;
  } catch {
    throw new InvalidArgumentError(`image ${image}: the registry sent a manifest that is not JSON`);
  }
  const mediaType = (typeof doc.mediaType === 'string' ? doc.mediaType : '') || contentType.split(';')[0]?.trim() || '';
  if (doc.schemaVersion === 1 || mediaType === MEDIA.dockerSchema1 || mediaType === MEDIA.dockerSchema1Signed) {
    throw new InvalidArgumentError(
      `image ${image} has a Docker schema 1 manifest, which is not supported (deprecated since 2017); push it again as schema 2 or OCI`,
    );
  }
  if (Array.isArray(doc.manifests)) {
    if (!doc.manifests.every(isDescriptor)) throw new InvalidArgumentError(`image ${image}: malformed index`);
    return { kind: 'index', manifests: doc.manifests };
  }
  if (isDescriptor(doc.config) && Array.isArray(doc.layers) && doc.layers.every(isDescriptor)) {
    return { kind: 'manifest', config: doc.config, layers: doc.layers };
  }
  throw new InvalidArgumentError(`image ${image}: unrecognized manifest (media type ${JSON.stringify(mediaType)})`);
}

export interface Platform {
  os: string;
  architecture: string;
  variant: string | undefined;
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export function hostPlatform(): Platform {
  const architecture = ARCH[process.arch] ?? process.arch;
  const variant =
    architecture === 'arm64' ? 'v8' : architecture === 'arm' ? `v${(process.config.variables as { arm_version?: string }).arm_version ?? '7'}` : undefined;
  return { os: 'linux', architecture, variant };
}

/** The index entry for `platform`: same os and architecture, the variant when both name one. */
export function selectPlatform(image: string, manifests: readonly Descriptor[], platform: Platform = hostPlatform()): Descriptor {
  const candidates = manifests.filter((m) => m.platform?.os === platform.os && m.platform?.architecture === platform.architecture);
  const exact = candidates.find((m) => !m.platform?.variant || !platform.variant || m.platform.variant === platform.variant);
  if (exact) return exact;
  const offered = manifests.map((m) => [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(Boolean).join('/')).join(', ');
  throw new InvalidArgumentError(
    `image ${image} has no manifest for ${platform.os}/${platform.architecture}${platform.variant ? `/${platform.variant}` : ''} (it has: ${offered || 'none'})`,
  );
}
