import { nowNs } from '../../core/clock.js';
import { authFromCri, filteredImages, imageName, toCriImage } from '../convert/images.js';
import type { ImageServiceMethods } from '../generated/api.js';
import type { ServiceHandlers } from '../service-types.js';
import { chunked } from '../stream-chunks.js';
import type { CriDeps } from './deps.js';

/** The ImageService: pulls, status and lists, removal, and the filesystems images and containers use. */
export function imageHandlers(d: CriDeps): ServiceHandlers<ImageServiceMethods> {
  const { images, writable } = d;
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

    ListImages: async (req) => ({ images: filteredImages(images, req.filter).map(toCriImage) }),

    StreamImages: async function* (req) {
      const all = filteredImages(images, req.filter).map(toCriImage);
      for (const chunk of chunked(all)) yield { images: chunk };
    },

    RemoveImage: async (req) => {
      // A container removed a moment ago still holds its image's layers until its root filesystem is gone.
      await d.containers.removalsSettled();
      await images.remove(imageName(req.image));
      return {};
    },

    ImageFsInfo: async () => {
      const usage = images.usage();
      const timestamp = nowNs();
      const layers = await writable.usage();
      return {
        image_filesystems: [
          { timestamp, fs_id: { mountpoint: images.dir }, used_bytes: { value: BigInt(usage.bytes) }, inodes_used: { value: BigInt(usage.inodes) } },
        ],
        container_filesystems: [
          { timestamp, fs_id: { mountpoint: writable.mountpoint }, used_bytes: { value: BigInt(layers.bytes) }, inodes_used: { value: BigInt(layers.inodes) } },
        ],
      };
    },
  };
}
