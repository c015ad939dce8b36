import { InvalidArgumentError } from '../../core/errors.js';
import { imageUser, type ImageRecord } from '../../image/image-record.js';
import type { ImageService } from '../../image/image-service.js';
import type { RegistryAuth } from '../../image/registry-client.js';
import type { AuthConfig, Image, ImageFilter, ImageSpec } from '../generated/api.js';
import type { Init } from '../service-types.js';

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

export function imageName(spec: ImageSpec | undefined): string {
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

export function filteredImages(images: ImageService, filter: ImageFilter | undefined): ImageRecord[] {
  const wanted = filter?.image?.image;
  if (!wanted) return images.list();
  const rec = images.resolve(wanted);
  return rec ? [rec] : [];
}
