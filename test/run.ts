import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import Mocha from 'mocha';
import { packageRoot } from '../core/package-info.js';

/**
 * Runs the compiled suites under dist/test. Arguments pick suites by path
 * fragment (`node dist/test/run.js unit`, `... integration/daemon`). Suites
 * under vm/ need a pure cgroup v2 host with systemd: on this host they run
 * in the VM lane (test/vm/lane.ts), which a full run includes and `vm/...`
 * arguments select (CRADLE_VM_LANE=0 leaves it out). The last line is
 * always `N passed, M failed[, K skipped]` over everything, which CI reads.
 */

const testRoot = join(packageRoot, 'dist', 'test');
const IN_VM = process.env.CRADLE_IN_VM === '1';

interface Totals {
  passed: number;
  failed: number;
  skipped: number;
}

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...findTests(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const isVmSuite = (f: string) => relative(testRoot, f).startsWith('vm/');

function runMocha(files: readonly string[]): Promise<Totals> {
  // Under emulation everything is several times slower.
  const color = process.stdout.isTTY === true && !IN_VM;
  // The spec reporter decides on colours by itself (the guest's serial port is a tty).
  Mocha.reporters.Base.useColors = color;
  const mocha = new Mocha({ timeout: IN_VM ? 120_000 : 30_000, reporter: 'spec', color });
  for (const f of files) mocha.addFile(f);
  // Root hooks (teardown of every test node) live in support/.
  mocha.addFile(join(testRoot, 'support', 'root-hooks.js'));
  return mocha.loadFilesAsync().then(
    () =>
      new Promise((resolve) => {
        const runner = mocha.run();
        runner.on('end', () => resolve({ passed: runner.stats?.passes ?? 0, failed: runner.stats?.failures ?? 0, skipped: runner.stats?.pending ?? 0 }));
      }),
  );
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  const selected = (f: string) => filters.length === 0 || filters.some((x) => relative(testRoot, f).includes(x));
  const all = findTests(testRoot);
  const totals: Totals = { passed: 0, failed: 0, skipped: 0 };
  const add = (t: Totals) => {
    totals.passed += t.passed;
    totals.failed += t.failed;
    totals.skipped += t.skipped;
  };
  const hostFiles = all.filter((f) => selected(f) && isVmSuite(f) === IN_VM);
  if (hostFiles.length > 0) add(await runMocha(hostFiles));
  const laneFiles = IN_VM ? [] : all.filter((f) => isVmSuite(f) && selected(f));
  if (laneFiles.length > 0 && process.env.CRADLE_VM_LANE !== '0') {
    if (hostFiles.length > 0) process.stdout.write(`\nhost: ${totals.passed} passed, ${totals.failed} failed\n\n`);
    const { runVmLane } = await import('./vm/lane.js');
    const vmFilters = filters.filter((x) => laneFiles.some((f) => relative(testRoot, f).includes(x)));
    add(
      await runVmLane(vmFilters, (s) => process.stdout.write(s)).catch((err: unknown) => {
        process.stdout.write(`vm lane: ${err instanceof Error ? err.message : String(err)}\n`);
        return { passed: 0, failed: 1, skipped: 0 };
      }),
    );
  }
  process.stdout.write(`\n${totals.passed} passed, ${totals.failed} failed${totals.skipped > 0 ? `, ${totals.skipped} skipped` : ''}\n`);
  process.exitCode = totals.failed > 0 || totals.passed === 0 ? 1 : 0;
  // A test that leaks a server or timer keeps the process alive: say what
  // is still open, then exit anyway so CI never hangs on it.
  setTimeout(() => {
    const handles = (process as unknown as { _getActiveHandles(): object[] })._getActiveHandles();
    const names = handles.map((h) => h.constructor.name).filter((n) => n !== 'WriteStream' && n !== 'ReadStream');
    if (names.length > 0) process.stderr.write(`test runner: still open after the run: ${names.join(', ')}\n`);
    process.exit();
  }, 5000).unref();
}

main().catch((err: unknown) => {
  process.stderr.write(`test runner: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.stdout.write('\n0 passed, 1 failed\n');
  process.exitCode = 1;
});
