import { randomBytes } from 'node:crypto';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { loadNative } from '../native/index.js';
import { idmappedBind, unmountAllUnder } from './mounts.js';

const PROBE_ROOT = 65536;

/**
 * The first directory from `/` down to `path` that a process of a user
 * namespace (an "other" on the host) cannot search: the OCI runtime mounts
 * the container's root and volumes from inside the namespace, where host
 * root's 0700 directories are closed.
 */
async function closedAncestor(path: string): Promise<string | undefined> {
  const chain: string[] = [];
  for (let p = path; ; p = dirname(p)) {
    chain.unshift(p);
    if (dirname(p) === p) break;
  }
  for (const dir of chain) {
    const st = await stat(dir).catch(() => undefined);
    if (st === undefined) return undefined; // made later, by Cradle, searchable
    if ((st.mode & 0o001) === 0) return `${dir} (mode ${(st.mode & 0o777).toString(8)})`;
  }
  return undefined;
}

/**
 * Whether a container in a user namespace can be given its image's layers
 * here: a user namespace is made, a layer-like directory idmapped through
 * it and used as an overlay's lower layer (overlayfs takes idmapped layers
 * from Linux 5.19). Tried once at start, on the layer store's filesystem;
 * it leaves nothing behind. Every directory above `containerDirs` must be
 * searchable from inside the namespace.
 */
export async function probeIdmappedLayers(root: string, containerDirs: string[], logger: Logger): Promise<boolean> {
  for (const path of containerDirs) {
    const closed = await closedAncestor(path);
    if (closed === undefined) continue;
    logger.warn('pods cannot have user namespaces of their own here', { reason: `${closed} above ${path} is not searchable by others (o+x)` });
    return false;
  }
  const dir = join(root, `.idmap-probe-${randomBytes(4).toString('hex')}`);
  const native = loadNative();
  try {
    for (const d of ['ns', 'layer', 'lower', 'upper', 'work', 'merged']) await mkdir(join(dir, d), { recursive: true });
    await writeFile(join(dir, 'layer', 'file'), 'probe');
    const map = `0 ${PROBE_ROOT} 65536\n`;
    const pins = await native.pinNamespaces(join(dir, 'ns'), ['user'], '', [], map, map);
    await idmappedBind(join(dir, 'layer'), join(dir, 'lower'), pins.user as string, false);
    await native.mountAt(dir, 'overlay', join(dir, 'merged'), 'overlay', 0, 'lowerdir=lower,upperdir=upper,workdir=work');
    const owner = (await stat(join(dir, 'merged', 'file'))).uid;
    if (owner !== PROBE_ROOT) throw new Error(`an idmapped layer shows its root's file as owned by ${owner}`);
    return true;
  } catch (err) {
    logger.info('pods cannot have user namespaces of their own here', { reason: errorMessage(err) });
    return false;
  } finally {
    // Deleted only once nothing is mounted there any more.
    const unmounted = await unmountAllUnder(dir).then(
      () => true,
      (err: unknown) => logger.warn('cannot unmount what the user namespace probe made; leaving it', { dir, error: errorMessage(err) }),
    );
    if (unmounted) await rm(dir, { recursive: true, force: true });
  }
}
