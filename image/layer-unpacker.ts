import { Worker } from 'node:worker_threads';
import { InternalError, InvalidArgumentError } from '../core/errors.js';
import type { UnpackProgress, UnpackReply, UnpackRequest } from './unpack-worker.js';

const WORKER = new URL('./unpack-worker.js', import.meta.url);
/** Layers unpacked at once: the machine has 2 cores, and disks prefer few writers. */
const MAX_PARALLEL = 2;

let running = 0;
const waiting: Array<() => void> = [];

async function slot(): Promise<() => void> {
  if (running >= MAX_PARALLEL) await new Promise<void>((r) => waiting.push(r));
  running++;
  return () => {
    running--;
    waiting.shift()?.();
  };
}

/** A layer download broke off (connection, HTTP error): worth another try. */
export class LayerDownloadError extends Error {}

export interface UnpackResult {
  bytes: number;
  inodes: number;
}

/** Unpacks a layer blob into `dest` off the main thread; checks its diffID. `progress` hears the compressed bytes received. */
export async function unpackLayer(req: UnpackRequest, progress?: (received: number) => void): Promise<UnpackResult> {
  const release = await slot();
  try {
    const reply = await new Promise<UnpackReply>((resolve, reject) => {
      const worker = new Worker(WORKER, { workerData: req });
      worker.on('message', (m: UnpackReply | UnpackProgress) => ('progress' in m ? progress?.(m.progress) : resolve(m)));
      worker.once('error', reject);
      worker.once('exit', (code) => {
        if (code !== 0) reject(new InternalError(`layer unpack worker exited with code ${code}`));
      });
    });
    if (!reply.ok) {
      if (reply.kind === 'unsafe') throw new InvalidArgumentError(`refusing layer: ${reply.error}`);
      if (reply.kind === 'network') throw new LayerDownloadError(reply.error);
      if (reply.kind === 'corrupt') throw new InternalError(reply.error);
      throw new InternalError(`cannot unpack layer: ${reply.error}`);
    }
    return { bytes: reply.bytes, inodes: reply.inodes };
  } finally {
    release();
  }
}
