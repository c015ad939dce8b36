import { lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { errnoCode } from '../core/errors.js';
import { ensureDir } from '../core/fs-util.js';

export class SocketInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SocketInUseError';
  }
}

/** True when something accepts connections on the unix socket at `path`. */
export function socketAnswers(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ path });
    const finish = (answer: boolean) => {
      sock.destroy();
      resolve(answer);
    };
    sock.setTimeout(timeoutMs, () => finish(true));
    sock.once('connect', () => finish(true));
    sock.once('error', () => finish(false));
  });
}

/**
 * Makes `path` free for a new listening socket: creates the parent
 * directory, removes a stale socket left by a crashed daemon, and refuses
 * when a live daemon answers there or the path is not a socket at all
 * (deleting an operator's file would be worse than not starting).
 */
export async function claimSocketPath(path: string): Promise<void> {
  ensureDir(dirname(path));
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw new SocketInUseError(`${path} exists and is not a socket; remove it or choose another --listen path`);
  if (await socketAnswers(path)) throw new SocketInUseError(`another daemon is already serving on ${path}`);
  unlinkSync(path);
}
