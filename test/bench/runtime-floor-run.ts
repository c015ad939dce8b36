import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnChild } from '../../native/child-process.js';
import { launchWithConmon } from '../../runtime/conmon.js';
import { OciRuntime } from '../../runtime/oci-runtime.js';
import { waitFor } from '../support/wait.js';

/**
 * The floor under Cradle's CreateContainer and StartContainer, measured in
 * the benchmark's own run: the bundle Cradle wrote for a created container
 * (same config, rootfs, pod namespaces and cgroup parent) run with no daemon
 * around it, spawned the way the daemon spawns. Run inside the node's
 * namespaces, where that bundle's mounts are, by the containers benchmark.
 * Usage: node runtime-floor-run.js <bundle> <count> <scratch dir> <runc> <conmon>
 * Prints {"create": [...], "conmonCreate": [...], "start": [...]} in ms.
 */
const [bundle, countArg, scratch, runc, conmon] = process.argv.slice(2) as [string, string, string, string, string];
const count = Number(countArg);
const runtime = new OciRuntime(runc, join(scratch, 'state'));
const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { linux: { cgroupsPath: string } };
const samples = { create: [] as number[], conmonCreate: [] as number[], start: [] as number[] };
/** How long conmon may take to leave, on a busy node. */
const TIMEOUT_MS = 120_000;

/** A bundle of its own for container `id`: Cradle's config, in a cgroup beside the original's. */
function bundleFor(id: string): string {
  const dir = join(scratch, id);
  mkdirSync(join(dir, 'persist'), { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, linux: { ...config.linux, cgroupsPath: `${config.linux.cgroupsPath}-${id}` } }));
  return dir;
}

async function timed<T>(into: number[], fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const v = await fn();
  into.push(performance.now() - t0);
  return v;
}

/** One round: the runtime alone (create, start), then conmon + create. */
async function round(direct: string, monitored: string): Promise<void> {
  // The runtime alone: create, then start.
  const dir = bundleFor(direct);
  // The container inherits create's stdio: a pipe would stay open as long as it runs, so errors go to a file.
  const errors = openSync(join(dir, 'create.err'), 'w');
  const r = await timed(
    samples.create,
    () =>
      spawnChild(runc, [...runtime.globalArgs, 'create', '--bundle', dir, '--pid-file', join(dir, 'pidfile'), direct], {
        cwd: dir,
        stdio: ['ignore', 'ignore', errors],
      }).exited,
  );
  closeSync(errors);
  if (r.code !== 0) throw new Error(`${runc} create ${direct}: ${readFileSync(join(dir, 'create.err'), 'utf8').trim() || r.signal}`);
  await timed(samples.start, () => runtime.start(direct));
  await runtime.delete(direct);
  rmSync(dir, { recursive: true, force: true });

  // Under conmon, as the daemon launches it: conmon reports the pid once create has returned.
  const mdir = bundleFor(monitored);
  await timed(samples.conmonCreate, () =>
    launchWithConmon({
      conmon,
      runtime: runc,
      runtimeArgs: runtime.globalArgs,
      id: monitored,
      name: monitored,
      bundle: mdir,
      exitDir: join(scratch, 'exits'),
      persistDir: join(mdir, 'persist'),
      socketDir: join(scratch, 'sockets'),
      logPath: join(mdir, 'log'),
      logSizeMax: 0,
      tty: false,
      stdin: false,
      leaveStdinOpen: false,
      scope: undefined,
    }),
  );
  await runtime.delete(monitored);
  // conmon writes the exit file and leaves once the container it watches is gone.
  await waitFor('conmon to record the exit', () => (existsSync(join(scratch, 'exits', monitored)) ? true : undefined), TIMEOUT_MS);
  rmSync(mdir, { recursive: true, force: true });
}

for (const dir of ['state', 'exits', 'sockets']) mkdirSync(join(scratch, dir), { recursive: true });
for (let i = 0; i < count; i++) {
  const [direct, monitored] = [`floor-${i}`, `floor-conmon-${i}`];
  try {
    await round(direct, monitored);
  } catch (err) {
    // A round cut short leaves no container running in the pod's namespaces (deleting one that is gone is no error).
    for (const id of [direct, monitored]) await runtime.delete(id).catch(() => undefined);
    throw err;
  }
}
process.stdout.write(`${JSON.stringify(samples)}\n`);
