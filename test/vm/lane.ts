import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../../core/package-info.js';
import { exited, run, spawnTracked } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

/**
 * The VM lane: what this host cannot show (a pure cgroup v2 hierarchy,
 * systemd as PID 1, crun) is tested in a Debian guest under QEMU's software
 * emulation. The guest boots from a cached disk image, mounts this checkout
 * over virtiofs and runs the suites under test/vm with the host's node; its
 * mocha output comes back on the second serial port.
 */

export interface LaneTotals {
  passed: number;
  failed: number;
  skipped: number;
}

const CACHE = '/var/cache/cradle-vm';
const LANE_TIMEOUT_MS = 20 * 60_000;

/** The image is rebuilt when its recipe or the node it carries changes. */
function imageKey(): string {
  const h = createHash('sha256');
  for (const f of ['build-image.sh', 'guest-lane.sh']) h.update(readFileSync(join(packageRoot, 'scripts', 'vm', f)));
  h.update(process.version);
  return h.digest('hex').slice(0, 16);
}

async function ensureImage(log: (s: string) => void): Promise<string> {
  const key = imageKey();
  const dir = join(CACHE, key);
  if (existsSync(join(dir, 'disk.img')) && existsSync(join(dir, 'vmlinuz'))) return dir;
  mkdirSync(CACHE, { recursive: true });
  // Older images only take disk space.
  for (const old of readdirSync(CACHE)) if (old !== key) rmSync(join(CACHE, old), { recursive: true, force: true });
  const tmp = `${dir}.building-${process.pid}`;
  log(`vm lane: building the guest image (${key})\n`);
  const started = Date.now();
  const r = await run('bash', [join(packageRoot, 'scripts', 'vm', 'build-image.sh'), tmp], { timeoutMs: 15 * 60_000 });
  if (r.code !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`building the VM image failed (exit ${String(r.code)}):\n${r.stderr.slice(-4000)}`);
  }
  renameSync(tmp, dir);
  log(`vm lane: image built in ${Math.round((Date.now() - started) / 1000)} s\n`);
  return dir;
}

/** Copies what the guest writes to `file` to `out` as it grows, until `done` resolves. */
async function follow(file: string, out: (s: string) => void, done: Promise<unknown>): Promise<void> {
  let offset = 0;
  let finished = false;
  void done.finally(() => (finished = true));
  for (;;) {
    const last = finished;
    const size = existsSync(file) ? statSync(file).size : 0;
    if (size > offset) {
      const fd = await open(file, 'r');
      const { buffer, bytesRead } = await fd.read(Buffer.alloc(size - offset), 0, size - offset, offset);
      await fd.close();
      offset += bytesRead;
      // The guest's mocha colours its symbols whatever it is told; CI logs want plain text.
      out(
        buffer
          .subarray(0, bytesRead)
          .toString()
          .replace(/\r/g, '')
          // biome-ignore lint/suspicious/noControlCharactersInRegex: the guest's terminal colours are ESC sequences
          .replace(/\x1b\[[0-9;]*m/g, ''),
      );
    }
    if (last) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** The .deb the guest installs (test/vm/package), built from this checkout into build/, which the guest sees. */
async function buildPackage(log: (s: string) => void): Promise<void> {
  const started = Date.now();
  const r = await run('bash', [join(packageRoot, 'scripts', 'build-deb.sh'), '--no-setup', join(packageRoot, 'build')], {
    timeoutMs: 15 * 60_000,
    env: { ...process.env, CRADLE_DEB_COMPRESSION: 'none' },
  });
  if (r.code !== 0) throw new Error(`building the .deb failed (exit ${String(r.code)}):\n${r.stderr.slice(-4000)}`);
  log(`vm lane: .deb built in ${Math.round((Date.now() - started) / 1000)} s\n`);
}

/** Boots the guest, runs the lane's suites (filtered by `filters`) and returns mocha's totals from inside it. */
export async function runVmLane(filters: readonly string[], out: (s: string) => void): Promise<LaneTotals> {
  const image = await ensureImage(out);
  await buildPackage(out);
  const work = mkdtempSync('/var/tmp/cradle-vm-lane-');
  const socket = join(work, 'virtiofs.sock');
  const laneLog = join(work, 'lane.log');
  const consoleLog = join(work, 'console.log');
  const virtiofsd = spawnTracked(
    '/usr/lib/qemu/virtiofsd',
    [`--socket-path=${socket}`, '-o', `source=${packageRoot}`, '-o', 'cache=always', '-o', 'sandbox=chroot'],
    { stdio: 'ignore' },
  );
  try {
    await waitFor('virtiofsd to listen', () => (existsSync(socket) ? true : undefined), 10_000);
    const cmdline = ['console=ttyS0', 'root=/dev/nvme0n1', 'rw', 'rootfstype=ext4', 'panic=-1', 'systemd.unified_cgroup_hierarchy=1', 'systemd.show_status=0'];
    if (filters.length > 0) cmdline.push(`cradle.filter=${filters.join(',')}`);
    const started = Date.now();
    // Nested KVM does not work on these machines: TCG with two vCPUs.
    const qemu = spawnTracked(
      'qemu-system-x86_64',
      [
        '-accel',
        'tcg,thread=multi,tb-size=256',
        '-cpu',
        'max',
        '-smp',
        '2',
        '-m',
        '4G',
        '-object',
        'memory-backend-memfd,id=mem,size=4G,share=on',
        '-numa',
        'node,memdev=mem',
        '-chardev',
        `socket,id=vfs,path=${socket}`,
        '-device',
        'vhost-user-fs-pci,chardev=vfs,tag=cradle',
        '-drive',
        `file=${join(image, 'disk.img')},format=raw,if=none,id=d0,snapshot=on`,
        '-device',
        'nvme,drive=d0,serial=cradle',
        '-kernel',
        join(image, 'vmlinuz'),
        '-append',
        cmdline.join(' '),
        '-serial',
        `file:${consoleLog}`,
        '-serial',
        `file:${laneLog}`,
        '-display',
        'none',
        '-monitor',
        'none',
        '-no-reboot',
        '-nic',
        'none',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let qemuErr = '';
    qemu.stderr?.on('data', (d: Buffer) => (qemuErr += d.toString()));
    const timer = setTimeout(() => qemu.kill('SIGKILL'), LANE_TIMEOUT_MS);
    const gone = exited(qemu);
    await follow(laneLog, out, gone);
    clearTimeout(timer);
    const status = await gone;
    out(`vm lane: guest ran ${Math.round((Date.now() - started) / 1000)} s\n`);
    const text = existsSync(laneLog) ? readFileSync(laneLog, 'utf8') : '';
    const totals = [...text.matchAll(/^(\d+) passed, (\d+) failed(?:, (\d+) skipped)?\s*$/gm)].pop();
    if (!totals) {
      const consoleText = existsSync(consoleLog) ? readFileSync(consoleLog, 'utf8') : '';
      out(
        `vm lane: no test totals from the guest (qemu ${JSON.stringify(status)}${qemuErr ? `: ${qemuErr.trim()}` : ''}); its console ended with:\n${consoleText.slice(-3000)}\n`,
      );
      return { passed: 0, failed: 1, skipped: 0 };
    }
    return { passed: Number(totals[1]), failed: Number(totals[2]), skipped: Number(totals[3] ?? 0) };
  } finally {
    virtiofsd.kill('SIGTERM');
    await exited(virtiofsd);
    rmSync(work, { recursive: true, force: true });
  }
}
