import { readdir, readFile } from 'node:fs/promises';

/**
 * `pid` and all its descendants, read from each task's `children` list in
 * /proc: the cost follows the tree, not the node's process count (a node
 * with hundreds of containers has thousands of processes, and timed-out
 * probes ask often).
 */
export async function processTree(pid: number): Promise<number[]> {
  const out: number[] = [];
  const visit = async (p: number): Promise<void> => {
    out.push(p);
    const tasks = await readdir(`/proc/${p}/task`).catch(() => [] as string[]);
    const children = new Set<number>();
    for (const t of tasks) {
      const list = await readFile(`/proc/${p}/task/${t}/children`, 'utf8').catch(() => '');
      for (const c of list.split(' ')) if (c.trim() !== '') children.add(Number(c));
    }
    for (const c of children) await visit(c);
  };
  await visit(pid);
  return out;
}

export function killAll(pids: readonly number[]): void {
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Whether `pid` runs (a zombie does not). */
export async function isAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (stat === '') return false;
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/** A process's arguments, from /proc; empty when it is gone. */
export async function commandLine(pid: number): Promise<string[]> {
  const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return raw.split('\0').filter((a) => a !== '');
}

/** The identity a process really has: real uid and gid and its supplementary groups, from /proc; undefined once it is gone. */
export async function processIdentity(pid: number): Promise<{ uid: number; gid: number; groups: number[] } | undefined> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  // An empty field (no supplementary groups) must not run into the next line.
  const field = (name: string) => new RegExp(`^${name}:[ \\t]*([^\\n]*)$`, 'm').exec(status)?.[1]?.trim().split(/\s+/).filter(Boolean) ?? [];
  const [uid] = field('Uid');
  const [gid] = field('Gid');
  if (uid === undefined || gid === undefined) return undefined;
  return { uid: Number(uid), gid: Number(gid), groups: field('Groups').map(Number) };
}
