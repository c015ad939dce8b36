import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import Mocha from 'mocha';
import { packageRoot } from '../core/package-info.js';

/**
 * Runs the compiled suites under dist/test. Arguments pick suites by path
 * fragment (`node dist/test/run.js unit`, `... integration/daemon`). The last
 * line is always `N passed, M failed[, K skipped]`, which CI reads.
 */

const testRoot = join(packageRoot, 'dist', 'test');

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  const files = findTests(testRoot).filter((f) => filters.length === 0 || filters.some((x) => relative(testRoot, f).includes(x)));
  const mocha = new Mocha({ timeout: 30_000, reporter: 'spec', color: process.stdout.isTTY === true });
  for (const f of files) mocha.addFile(f);
  // Root hooks (teardown of every test node) live in support/.
  mocha.addFile(join(testRoot, 'support', 'root-hooks.js'));
  await mocha.loadFilesAsync();
  const runner = mocha.run();
  runner.on('end', () => {
    const stats = runner.stats;
    const passed = stats?.passes ?? 0;
    const failed = stats?.failures ?? 0;
    const skipped = stats?.pending ?? 0;
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`);
    process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
    // A test that leaks a server or timer keeps the process alive: say what
    // is still open, then exit anyway so CI never hangs on it.
    setTimeout(() => {
      const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();
      const names = handles.map((h) => h.constructor.name).filter((n) => n !== 'WriteStream' && n !== 'ReadStream');
      if (names.length > 0) process.stderr.write(`test runner: still open after the run: ${names.join(', ')}\n`);
      process.exit();
    }, 5000).unref();
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`test runner: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.stdout.write('\n0 passed, 1 failed\n');
  process.exitCode = 1;
});
