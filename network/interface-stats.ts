import { readFile } from 'node:fs/promises';

export interface InterfaceCounters {
  name: string;
  rxBytes: bigint;
  rxErrors: bigint;
  txBytes: bigint;
  txErrors: bigint;
}

/**
 * Interface counters of the network namespace `pid` lives in, from
 * /proc/PID/net/dev (no namespace switch, no process spawned); loopback
 * left out. Undefined when the process is gone.
 */
export async function interfaceCounters(pid: number): Promise<InterfaceCounters[] | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/net/dev`, 'utf8');
  } catch {
    return undefined;
  }
  const out: InterfaceCounters[] = [];
  for (const line of text.split('\n').slice(2)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (name === 'lo') continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map((x) => BigInt(x));
    // receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets errs ...
    out.push({ name, rxBytes: f[0] ?? 0n, rxErrors: f[2] ?? 0n, txBytes: f[8] ?? 0n, txErrors: f[10] ?? 0n });
  }
  return out;
}
