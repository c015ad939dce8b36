import { join } from 'node:path';
import type { ClientIO, CommandResult } from './stream-io.js';
import { loadNative } from '../native/index.js';
import { resizeTerminal } from './conmon-control.js';

/** conmon's stream bytes at the head of each attach packet (its pipe numbering: stdin 1, stdout 2, stderr 3). */
const STDOUT_PIPE = 2;
const STDERR_PIPE = 3;
/** conmon reads stdin packets into a buffer of this size. */
const STDIN_PACKET = 8192;

/**
 * Attaches the client to a running container's own stdio, which conmon
 * holds: output as conmon forwards it, input written to the container's
 * stdin, window sizes through conmon's control FIFO. Ends when the
 * container exits (conmon closes the socket) or the client goes away.
 */
export function attachStream(bundle: string, tty: boolean, io: ClientIO): Promise<CommandResult> {
  return new Promise((resolve) => {
    const pending: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const conn = loadNative().attachPackets(
      join(bundle, 'attach'),
      (packet) => {
        const data = packet.subarray(1);
        if (packet[0] === STDOUT_PIPE || tty) io.stdout?.write(data);
        else if (packet[0] === STDERR_PIPE) io.stderr?.write(data);
      },
      () => {
        clearTimeout(timer);
        resolve({ exitCode: 0 });
      },
    );
    // A full socket (conmon busy) is retried shortly; input order is kept.
    const flush = () => {
      timer = undefined;
      while (pending.length > 0) {
        if (!conn.send(pending[0] as Buffer)) {
          timer = setTimeout(flush, 5);
          return;
        }
        pending.shift();
      }
    };
    io.stdin?.on('data', (d: Buffer) => {
      for (let off = 0; off < d.length; off += STDIN_PACKET) pending.push(d.subarray(off, off + STDIN_PACKET));
      if (!timer) flush();
    });
    // The client closed stdin: conmon closes the container's unless it runs with --leave-stdin-open.
    io.stdin?.on('end', () => {
      const done = () => (pending.length > 0 ? setTimeout(done, 5) : conn.shutdownWrite());
      done();
    });
    if (tty) {
      // In order, each once conmon has read the one before: kubectl sends two at once (size+1, then size, to force a redraw).
      let resizing: Promise<void> = Promise.resolve();
      io.onResize((size) => {
        resizing = resizing.then(() => resizeTerminal(bundle, size.height, size.width).catch(() => undefined));
      });
    }
    io.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      conn.close();
      resolve({ exitCode: 0 });
    });
  });
}
