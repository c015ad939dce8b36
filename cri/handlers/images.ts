import { nowNs } from '../../core/clock.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { imageUser, type ImageRecord } from '../../image/image-record.js';
import type { ImageService } from '../../image/image-service.js';
import type { RegistryAuth } from '../../image/registry-client.js';
import type { AuthConfig, Image, ImageFilter, ImageServiceMethods, ImageSpec } from '../generated/api.js';
import type { Init, ServiceHandlers } from '../service-types.js';
import { chunked } from '../stream-chunks.js';

/** CRI AuthConfig → credentials (`auth` is base64 of user:password). */
export function authFromCri(a: AuthConfig | undefined): RegistryAuth | undefined {
  if (!a) return undefined;
  let { username, password } = a;
  if (a.auth) {
    const decoded = Buffer.from(a.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new InvalidArgumentError('auth.auth must be base64 of "user:password"');
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  const out: RegistryAuth = {};
  if (username) out.username = username;
  if (password) out.password = password;
  if (a.identity_token) out.identityToken = a.identity_token;
  if (a.registry_token) out.registryToken = a.registry_token;
  return Object.keys(out).length > 0 ? out : undefined;
}

function imageName(spec: ImageSpec | undefined): string {
  const name = spec?.image ?? '';
  if (name === '') throw new InvalidArgumentError('image.image is empty');
  return name;
}

export function toCriImage(rec: ImageRecord): Init<Image> {
  const user = imageUser(rec.config.user);
  return {
    id: rec.id,
    repo_tags: rec.repoTags,
    repo_digests: rec.repoDigests,
    size: BigInt(rec.size),
    ...(user && 'uid' in user ? { uid: { value: user.uid } } : {}),
    ...(user && 'username' in user ? { username: user.username } : {}),
    spec: { image: rec.id },
    pinned: rec.pinned,
  };
}

function filtered(images: ImageService, filter: ImageFilter | undefined): ImageRecord[] {
  const wanted = filter?.image?.image;
  if (!wanted) return images.list();
  const rec = images.resolve(wanted);
  return rec ? [rec] : [];
}


/** The containers' writable layers, for ImageFsInfo: where they are and what they use. */
export interface WritableLayerUsage {
  mountpoint: string;
  usage(): Promise<{ bytes: number; inodes: number }>;
}

export function imageHandlers(images: ImageService, writable?: WritableLayerUsage): ServiceHandlers<ImageServiceMethods> {
  return {
    PullImage: async (req) => {
      const rec = await images.pull(imageName(req.image), authFromCri(req.auth));
      return { image_ref: rec.id };
    },

    ImageStatus: async (req) => {
      const rec = images.resolve(imageName(req.image));
      if (!rec) return {};
      const info = req.verbose
        ? {
            info: JSON.stringify({
              id: rec.id,
              manifestDigest: rec.manifestDigest,
              os: rec.os,
              architecture: rec.architecture,
              layers: rec.layers,
              pulledAt: rec.pulledAt.toString(),
              imageSpec: { config: rec.config },
            }),
          }
        : {};
      return { image: toCriImage(rec), info };
    },

    ListImages: async (req) => ({ images: filtered(images, req.filter).map(toCriImage) }),

    StreamImages: async function* (req) {
      const all = filtered(images, req.filter).map(toCriImage);
      for (const chunk of chunked(all)) yield { images: chunk };
    },

    RemoveImage: async (req) => {
      await images.remove(imageName(req.image));
      return {};
    },

    ImageFsInfo: async () => {
      const usage = images.usage();
      const timestamp = nowNs();
      const layers = writable ? await writable.usage() : undefined;
      return {
        image_filesystems: [{ timestamp, fs_id: { mountpoint: images.dir }, used_bytes: { value: BigInt(usage.bytes) }, inodes_used: { value: BigInt(usage.inodes) } }],
        container_filesystems:
          writable && layers ? [{ timestamp, fs_id: { mountpoint: writable.mountpoint }, used_bytes: { value: BigInt(layers.bytes) }, inodes_used: { value: BigInt(layers.inodes) } }] : [],
      };
    },
  };
}
