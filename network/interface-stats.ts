import { readSmallFiles } from '../native/small-files.js';

export interface InterfaceCounters {
  name: string;
  rxBytes: bigint;
  rxPackets: bigint;
  rxErrors: bigint;
  rxDropped: bigint;
  txBytes: bigint;
  txPackets: bigint;
  txErrors: bigint;
  txDropped: bigint;
}

/**
 * Interface counters of the network namespaces the processes `pids` live
 * in, from /proc/PID/net/dev (no namespace switch, no process spawned; all
 * read in one trip to the thread pool); loopback left out. Undefined for a
 * process that is gone.
 */
export async function interfaceCounters(pids: readonly number[]): Promise<(InterfaceCounters[] | undefined)[]> {
  const texts = await readSmallFiles(pids.map((pid) => `/proc/${pid}/net/dev`));
  return texts.map((text) => (text === undefined ? undefined : parseNetDev(text)));
}

function parseNetDev(text: string): InterfaceCounters[] {
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
    const at = (i: number) => f[i] ?? 0n;
    out.push({
      name,
      rxBytes: at(0),
      rxPackets: at(1),
      rxErrors: at(2),
      rxDropped: at(3),
      txBytes: at(8),
      txPackets: at(9),
      txErrors: at(10),
      txDropped: at(11),
    });
  }
  return out;
}
