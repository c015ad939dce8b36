import { readdirSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../core/errors.js';
import { within } from '../core/timers.js';
import { loadNative } from '../native/index.js';

/** How long a SIGKILLed process may take to go, on a busy node. */
const EXIT_WAIT_MS = 10_000;

/**
 * SIGKILLs `pid` and waits, bounded, until it has exited (watched through
 * a pidfd opened first): its cgroup can be removed only once it is empty.
 * A pid already gone is done.
 */
export async function killAndWait(pid: number): Promise<void> {
  let exited: Promise<void> = Promise.resolve();
  try {
    const native = loadNative();
    exited = new Promise<void>((resolve) => {
      const watch = native.watchExit(pid, () => {
        watch.close();
        resolve();
      });
    });
  } catch {
    // already gone (ESRCH)
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if (errnoCode(err) !== 'ESRCH') throw err;
  }
  await within(exited, EXIT_WAIT_MS);
}

/** The namespace kinds a pod pins, as named under /proc/PID/ns. */
const KINDS = { net: 'net', ipc: 'ipc', uts: 'uts', pid: 'pid' } as const;

/**
 * Ends every process inside the namespaces pinned under `nsDir` (the pod
 * init, and anything a crashed daemon started there): what recovery does
 * before it releases a pod whose request was cut short, when the record
 * may not know the init's pid. A process is matched by the device and
 * inode of its namespace, so only processes of this pod are touched.
 * Returns, once they have exited, the pids killed.
 */
export async function killPodProcesses(nsDir: string, mountPoints: ReadonlySet<string>): Promise<number[]> {
  const wanted = new Map<string, string>();
  let names: string[];
  try {
    names = await readdir(nsDir);
  } catch {
    return [];
  }
  for (const name of names) {
    const kind = KINDS[name as keyof typeof KINDS];
    const pin = join(nsDir, name);
    // An empty pin file (the mount is gone) has an inode of its own that must match nothing.
    if (kind === undefined || !mountPoints.has(pin)) continue;
    try {
      const st = statSync(pin);
      wanted.set(`${kind}:${st.dev}:${st.ino}`, pin);
    } catch {
      // gone meanwhile
    }
  }
  if (wanted.size === 0) return [];
  const killed: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    for (const kind of new Set(Object.values(KINDS))) {
      let key: string;
      try {
        const st = statSync(`/proc/${pid}/ns/${kind}`);
        key = `${kind}:${st.dev}:${st.ino}`;
      } catch {
        continue;
      }
      if (wanted.has(key)) killed.push(pid);
      break;
    }
  }
  await Promise.all(killed.map(killAndWait));
  return killed;
}

/** Mount points from a mountinfo text. */
export function mountPointsOf(mountinfo: string): Set<string> {
  return new Set(
    mountinfo
      .split('\n')
      .map((l) => l.split(' ')[4] ?? '')
      .filter((p) => p !== ''),
  );
}
