import { existsSync, lstatSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { silentLogger } from '../../core/logger.js';
import { ImageService } from '../../image/image-service.js';

/**
 * Run inside a test node (nsenter): mounts an image's root filesystem the
 * way a container gets it, reports what a set of paths look like there, and
 * unmounts it again. Usage: rootfs-probe.js <images dir> <image id> <work dir> <path>...
 */
const [imagesDir, imageId, workDir, ...paths] = process.argv.slice(2) as [string, string, string, ...string[]];
const images = new ImageService({ dir: imagesDir, hosts: () => ({ insecure: () => false, mirrors: () => [], credentials: () => undefined }), logger: silentLogger });
await images.load(false);
const merged = await images.mountRootfs(imageId, workDir);
const report: Record<string, unknown> = {};
try {
  for (const p of paths) {
    const full = join(merged, p);
    if (!existsSync(full) && !(() => { try { lstatSync(full); return true; } catch { return false; } })()) report[p] = null;
    else if (lstatSync(full).isDirectory()) report[p] = readdirSync(full).sort();
    else if (lstatSync(full).isSymbolicLink()) report[p] = 'symlink';
    else report[p] = readFileSync(full, 'utf8').slice(0, 200);
  }
} finally {
  await images.unmountRootfs(workDir);
}
process.stdout.write(JSON.stringify(report));
