import type { VersionedRecord } from '../core/record-store.js';
import type { ImageConfigInfo } from '../oci/image-config.js';

export interface ImageRecord extends VersionedRecord {
  schema: 1;
  /** The config digest, as kubelet expects image ids and image refs to be. */
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** The digest the image was pulled by (an index's, for multi-platform images). */
  manifestDigest: string;
  /** Compressed size of config and layers, as registries report it. */
  size: number;
  /** Chain ids, bottom layer first. */
  layers: string[];
  os: string;
  architecture: string;
  config: ImageConfigInfo;
  pinned: boolean;
  pulledAt: bigint;
}

interface RawConfig {
  os?: string;
  architecture?: string;
  config?: {
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Env?: string[] | null;
    WorkingDir?: string;
    User?: string;
    StopSignal?: string;
    ExposedPorts?: Record<string, unknown> | null;
    Volumes?: Record<string, unknown> | null;
    Labels?: Record<string, string> | null;
  };
  rootfs?: { type?: string; diff_ids?: string[] };
}

export interface ParsedImageConfig {
  os: string;
  architecture: string;
  diffIds: string[];
  config: ImageConfigInfo;
}

export function parseImageConfig(image: string, body: Buffer): ParsedImageConfig {
  let raw: RawConfig;
  try {
    raw = JSON.parse(body.toString('utf8')) as RawConfig;
  } catch {
    throw new Error(`image ${image}: its config is not JSON`);
  }
  const c = raw.config ?? {};
  const diffIds = raw.rootfs?.diff_ids ?? [];
  if (!Array.isArray(diffIds) || !diffIds.every((d) => typeof d === 'string')) throw new Error(`image ${image}: config has no rootfs.diff_ids`);
  return {
    os: raw.os ?? 'linux',
    architecture: raw.architecture ?? '',
    diffIds,
    config: {
      entrypoint: c.Entrypoint ?? [],
      cmd: c.Cmd ?? [],
      env: c.Env ?? [],
      workingDir: c.WorkingDir ?? '',
      user: c.User ?? '',
      stopSignal: c.StopSignal ?? '',
      exposedPorts: Object.keys(c.ExposedPorts ?? {}),
      volumes: Object.keys(c.Volumes ?? {}),
      labels: c.Labels ?? {},
    },
  };
}

/** The image's User as CRI reports it: a numeric uid, or a user name. */
export function imageUser(user: string): { uid: bigint } | { username: string } | undefined {
  const name = user.split(':')[0] ?? '';
  if (name === '') return undefined;
  return /^\d+$/.test(name) ? { uid: BigInt(name) } : { username: name };
}
