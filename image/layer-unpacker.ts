import { Worker } from 'node:worker_threads';
import { InternalError, InvalidArgumentError } from '../core/errors.js';
import { Semaphore } from '../core/semaphore.js';
import { loadNative } from '../native/index.js';
import type { UnpackProgress, UnpackReply, UnpackRequest } from './unpack-worker.js';

const WORKER = new URL('./unpack-worker.js', import.meta.url);
/** Layers unpacked at once: the machine has 2 cores, and disks prefer few writers. */
const MAX_PARALLEL = 2;

/** An idle worker is kept this long for the next layer: starting one costs ~80 ms here, and a pull has several layers. */
const IDLE_MS = 10_000;

const slots = new Semaphore(MAX_PARALLEL);
const idle: Array<{ worker: Worker; timer: NodeJS.Timeout }> = [];
/** Workers started and not yet ended. */
let live = 0;

function takeWorker(): Worker {
  const kept = idle.pop();
  if (kept) {
    clearTimeout(kept.timer);
    return kept.worker;
  }
  live++;
  return new Worker(WORKER);
}

/** Ends a worker; the last one to end hands what the workers freed back to the kernel (16-20 MiB of RSS after a pull here). */
function endWorker(worker: Worker): void {
  void worker
    .terminate()
    .catch(() => undefined)
    .then(() => {
      if (--live === 0) loadNative().mallocTrim();
    });
}

/** Back to the pool when it finished its layer cleanly; it ends once idle for IDLE_MS, so an idle daemon holds none. */
function returnWorker(worker: Worker): void {
  for (const event of ['message', 'error', 'exit']) worker.removeAllListeners(event);
  const timer = setTimeout(() => {
    idle.splice(
      idle.findIndex((w) => w.worker === worker),
      1,
    );
    endWorker(worker);
  }, IDLE_MS);
  timer.unref();
  worker.unref();
  idle.push({ worker, timer });
}

/** A layer download broke off (connection, HTTP error): worth another try. */
export class LayerDownloadError extends Error {}

export interface UnpackResult {
  bytes: number;
  inodes: number;
}

/** Unpacks a layer blob into `dest` off the main thread; checks its diffID. `progress` hears the compressed bytes received. */
export async function unpackLayer(req: UnpackRequest, progress?: (received: number) => void): Promise<UnpackResult> {
  const release = await slots.acquire();
  try {
    const worker = takeWorker();
    worker.ref();
    const reply = await new Promise<UnpackReply>((resolve, reject) => {
      worker.on('message', (m: UnpackReply | UnpackProgress) => ('progress' in m ? progress?.(m.progress) : resolve(m)));
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new InternalError(`layer unpack worker exited with code ${code}`)));
      worker.postMessage(req);
    }).catch((err: unknown) => {
      endWorker(worker);
      throw err;
    });
    returnWorker(worker);
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
