import type { CriClient } from '../../cri/client.js';
import type { LayerProgress, PullProgress } from '../../image/pull-progress.js';
import { formatReference, parseReference } from '../../image/reference.js';
import { formatBytes } from './common.js';

/** How often the daemon is asked how far its download has come. */
const POLL_MS = 200;
const BAR = 24;

interface Seen {
  state: LayerProgress['state'];
  received: number;
  at: number;
  /** Bytes per second, smoothed over the samples. */
  rate: number;
}

function shortDigest(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}

function layerLine(l: LayerProgress, seen: Seen | undefined): string {
  const id = shortDigest(l.digest);
  if (l.state === 'exists') return `${id}  already here`;
  if (l.state === 'waiting') return `${id}  waiting`;
  const fraction = l.size > 0 ? Math.min(1, l.received / l.size) : 1;
  const filled = Math.round(fraction * BAR);
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(BAR - filled)}]`;
  const amount = `${formatBytes(l.received)} / ${formatBytes(l.size)}`;
  if (l.state === 'done') return `${id}  ${bar} ${amount}  done`;
  const rate = seen?.rate ?? 0;
  const eta = rate > 0 ? `ETA ${Math.ceil((l.size - l.received) / rate)}s` : 'ETA -';
  return `${id}  ${bar} ${amount}  ${formatBytes(rate)}/s  ${eta}`;
}

/** A layer's change of state, as a line for a log: no bar, no redraw. */
function plainLine(l: LayerProgress): string {
  const id = shortDigest(l.digest);
  if (l.state === 'exists') return `${id}  already here`;
  if (l.state === 'downloading') return `${id}  downloading ${formatBytes(l.size)}`;
  return `${id}  ${l.state}`;
}

/**
 * `cradle pull`: PullImage over CRI, with the daemon's own progress (its
 * verbose Status lists pulls under way) shown per layer: a bar, bytes,
 * rate and ETA redrawn in place on a terminal, one plain line per change
 * of a layer's state otherwise. Returns the image reference the daemon gave.
 */
export async function pullWithProgress(
  client: CriClient,
  image: string,
  auth: { username: string; password: string } | undefined,
  out: { write(s: string): unknown; isTTY?: boolean },
): Promise<string> {
  const name = formatReference(parseReference(image));
  const started = Date.now();
  let done = false;
  const pulling = client.image.call('PullImage', { image: { image }, ...(auth ? { auth } : {}) }, { timeoutMs: 60 * 60_000 }).finally(() => {
    done = true;
  });
  const seen = new Map<string, Seen>();
  let drawn = 0;
  const render = (p: PullProgress) => {
    const now = Date.now();
    const lines: string[] = [];
    for (const l of p.layers) {
      const before = seen.get(l.digest);
      const dt = before ? (now - before.at) / 1000 : 0;
      const instant = before && dt > 0 && l.received >= before.received ? (l.received - before.received) / dt : 0;
      const rate = before && before.rate > 0 ? before.rate * 0.7 + instant * 0.3 : instant;
      if (!out.isTTY && before?.state !== l.state) lines.push(plainLine(l));
      seen.set(l.digest, { state: l.state, received: l.received, at: now, rate });
      if (out.isTTY) lines.push(layerLine(l, seen.get(l.digest)));
    }
    if (out.isTTY) {
      // Back over the last frame and clear each line as it is rewritten.
      out.write(`${drawn > 0 ? `\x1b[${drawn}A` : ''}${lines.map((l) => `\x1b[2K${l}\n`).join('')}`);
      drawn = lines.length;
    } else if (lines.length > 0) out.write(`${lines.join('\n')}\n`);
  };
  out.write(`pulling ${name}\n`);
  while (!done) {
    const status = await client.runtime.call('Status', { verbose: true }, { timeoutMs: 30_000 }).catch(() => undefined);
    const pulls = JSON.parse(status?.info.pulls ?? '[]') as PullProgress[];
    const mine = pulls.find((p) => p.image === name);
    if (mine && !done) render(mine);
    await Promise.race([pulling.catch(() => undefined), new Promise((r) => setTimeout(r, POLL_MS))]);
  }
  const { image_ref } = await pulling;
  if (out.isTTY && drawn > 0) {
    // The last frame, finished: every layer it showed as downloading is in.
    const lines = [...seen].map(([digest, s]) => `\x1b[2K${shortDigest(digest)}  ${s.state === 'exists' ? 'already here' : 'done'}\n`);
    out.write(`\x1b[${drawn}A${lines.join('')}`);
  } else {
    // The pull is over: layers last seen on their way are in.
    const finished = [...seen].filter(([, s]) => s.state !== 'done' && s.state !== 'exists').map(([digest]) => `${shortDigest(digest)}  done\n`);
    out.write(finished.join(''));
  }
  out.write(`pulled ${name} (${image_ref}) in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
  return image_ref;
}
