import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, openSync, readSync, closeSync } from 'node:fs';
import { Readable } from 'node:stream';
import { parentPort, workerData } from 'node:worker_threads';
import { createGunzip } from 'node:zlib';
import { errorMessage } from '../core/errors.js';
import { loadNative } from '../runtime/native/index.js';
import { LayerWriter, UnsafeLayerEntryError } from './layer-writer.js';
import { TarReader } from './tar-reader.js';

/**
 * Runs in a worker thread: decompresses one layer blob, checks its diffID
 * and writes it into a directory with synchronous file calls, which would
 * stall the daemon's event loop if they ran on it.
 */
export interface UnpackRequest {
  blob: string;
  dest: string;
  diffId: string;
}

export type UnpackReply = { ok: true; bytes: number; inodes: number } | { ok: false; error: string; unsafe: boolean };

type Compression = 'gzip' | 'zstd' | 'none';

/** By magic bytes: media types lie (Docker's zstd layers claim gzip in some tools). */
function sniff(blob: string): Compression {
  const fd = openSync(blob, 'r');
  const head = Buffer.alloc(4);
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

function decompressed(blob: string): Readable {
  switch (sniff(blob)) {
    case 'gzip':
      return createReadStream(blob).pipe(createGunzip());
    case 'zstd': {
      // Node 20 has no zstd; Debian's zstd tool streams it.
      const child = spawn('zstd', ['-d', '-c', '-q', blob], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => {
        if (code !== 0) child.stdout.destroy(new Error(`zstd: ${stderr.trim() || `exit code ${String(code)}`}`));
      });
      return child.stdout;
    }
    case 'none':
      return createReadStream(blob);
  }
}

async function unpack(req: UnpackRequest): Promise<UnpackReply> {
  const writer = new LayerWriter(req.dest, loadNative());
  const reader = new TarReader(writer);
  const hash = createHash('sha256');
  try {
    for await (const chunk of decompressed(req.blob)) {
      hash.update(chunk as Buffer);
      reader.write(chunk as Buffer);
    }
    reader.end();
    writer.close();
  } catch (err) {
    return { ok: false, error: errorMessage(err), unsafe: err instanceof UnsafeLayerEntryError };
  }
  const diffId = `sha256:${hash.digest('hex')}`;
  if (diffId !== req.diffId) return { ok: false, error: `layer content is ${diffId}, but the image config says ${req.diffId}`, unsafe: false };
  return { ok: true, bytes: writer.bytes, inodes: writer.inodes };
}

if (parentPort) {
  const port = parentPort;
  void unpack(workerData as UnpackRequest).then((reply) => port.postMessage(reply));
}
