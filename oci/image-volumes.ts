import { lstatSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';

/**
 * The image's VOLUMEs become directories of the container's own root
 * filesystem when nothing is mounted there (CRI-O's default, "mkdir").
 */
export async function ensureImageVolumes(rootfs: string, volumes: readonly string[], mounts: readonly { containerPath: string }[]): Promise<void> {
  for (const v of volumes) {
    if (mounts.some((m) => m.containerPath === v)) continue;
    const rel = normalize(v).replace(/^\/+/, '');
    if (rel === '' || rel.startsWith('..')) continue;
    let dir = rootfs;
    for (const part of rel.split('/')) {
      dir = join(dir, part);
      try {
        const st = lstatSync(dir);
        if (st.isSymbolicLink() || !st.isDirectory())
          throw new InvalidArgumentError(`image volume ${v} passes through ${JSON.stringify(part)}, which is not a directory`);
      } catch (err) {
        if (err instanceof InvalidArgumentError) throw err;
        await mkdir(dir, { mode: 0o755 });
      }
    }
  }
}
