import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { expect } from 'chai';
import { packageRoot } from '../../core/package-info.js';

/**
 * The layout's rules, checked on every run: which top-level folder may
 * import which (arrows point inward: a folder imports only those below
 * it, and domains never import each other), no hand-written source file
 * over 400 lines, and the tree formatted and linted clean.
 */

/** What each folder may import, besides itself. docs/ARCHITECTURE.md draws the same picture. */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  core: [],
  native: ['core'],
  cgroups: ['core', 'native'],
  network: ['core', 'native'],
  storage: ['core', 'native'],
  oci: ['core', 'native', 'cgroups'],
  image: ['core', 'native', 'storage', 'oci'],
  sandbox: ['core', 'native', 'cgroups', 'network', 'oci'],
  runtime: ['core', 'native', 'cgroups', 'storage', 'oci'],
  streaming: ['core', 'runtime'],
  orchestration: ['core', 'native', 'cgroups', 'network', 'storage', 'oci', 'image', 'sandbox', 'runtime', 'streaming'],
  cri: ['core', 'native', 'cgroups', 'network', 'storage', 'oci', 'image', 'sandbox', 'runtime', 'streaming', 'orchestration'],
  bin: ['core', 'native', 'cgroups', 'network', 'storage', 'oci', 'image', 'sandbox', 'runtime', 'streaming', 'orchestration', 'cri'],
};

const SOURCE_FOLDERS = Object.keys(ALLOWED);

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'build' || name === 'generated') continue;
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

describe('code layout', () => {
  const files = SOURCE_FOLDERS.flatMap((f) => sources(join(packageRoot, f)));

  it('has every arrow point inward: a folder imports only the folders below it', () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = relative(packageRoot, file).split('/')[0] as string;
      for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
        const to = relative(packageRoot, resolve(dirname(file), m[1] as string)).split('/')[0] as string;
        if (to === from || !SOURCE_FOLDERS.includes(to)) continue;
        if (!ALLOWED[from]?.includes(to)) violations.push(`${relative(packageRoot, file)} imports ${to}/ (${m[1]})`);
      }
    }
    expect(violations).to.deep.equal([]);
  });

  it('keeps every hand-written source file within 400 lines', () => {
    const long = files.map((f) => [relative(packageRoot, f), readFileSync(f, 'utf8').split('\n').length] as const).filter(([, n]) => n > 400);
    expect(long.map(([f, n]) => `${f}: ${n} lines`)).to.deep.equal([]);
  });

  it('is formatted and linted clean (biome check)', async function () {
    this.timeout(60_000);
    const biome = join(packageRoot, 'node_modules', '.bin', 'biome');
    const result = await new Promise<{ code: number; out: string }>((done) => {
      execFile(biome, ['check', '--colors=off', '.'], { cwd: packageRoot, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
        done({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` }),
      );
    });
    expect(result.code, result.out.slice(0, 4000)).to.equal(0);
  });
});
