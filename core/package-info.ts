import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout or install directory, found from this module's own location so
 * that the same code works from the TypeScript sources' compiled copy in
 * dist/ and from an installed package.
 */
function findPackageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: unknown };
      if (pkg.name === 'cradle') return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the cradle package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

export const packageRoot: string = findPackageRoot();

export const packageVersion: string = (() => {
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('package.json has no version');
  return pkg.version;
})();
