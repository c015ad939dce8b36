import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { silentLogger } from '../../core/logger.js';
import { ImageService } from '../../image/image-service.js';
import { unmount } from '../../storage/mounts.js';
import { mountLayers } from '../../storage/rootfs-store.js';
import { Storage } from '../../storage/storage.js';

/**
 * Run inside a test node (nsenter): mounts an image's root filesystem the
 * way a container gets it, reports what a set of paths look like there, and
 * unmounts it again. Nothing of the daemon's state is changed.
 * Usage: rootfs-probe.js <root> <image id> <work dir> <path>...
 */
const [root, imageId, workDir, ...paths] = process.argv.slice(2) as [string, string, string, ...string[]];
const storage = new Storage({ root, logger: silentLogger });
await storage.layers.load();
const images = new ImageService({
  dir: join(root, 'images'),
  hosts: () => ({ insecure: () => false, mirrors: () => [], credentials: () => undefined }),
  storage,
  logger: silentLogger,
});
await images.load();
const image = images.resolve(imageId);
if (!image) throw new Error(`image ${imageId} not found`);
const merged = await mountLayers(storage.layers, image.layers, workDir);
const report: Record<string, unknown> = {};
try {
  for (const p of paths) {
    const full = join(merged, p);
    if (
      !existsSync(full) &&
      !(() => {
        try {
          lstatSync(full);
          return true;
        } catch {
          return false;
        }
      })()
    )
      report[p] = null;
    else if (lstatSync(full).isDirectory()) report[p] = readdirSync(full).sort();
    else if (lstatSync(full).isSymbolicLink()) report[p] = 'symlink';
    else report[p] = readFileSync(full, 'utf8').slice(0, 200);
  }
} finally {
  await unmount(merged);
  await rm(workDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(report));
