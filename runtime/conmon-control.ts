import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { loadNative } from '../native/index.js';

/**
 * conmon's control FIFO (`<bundle>/ctl`) takes one command per line:
 * `1 <rows> <cols>` resizes the terminal, `2 0 0` reopens the log file.
 * Opened without blocking: a FIFO nobody reads (conmon gone) fails at once
 * instead of hanging the daemon.
 */
async function control(bundle: string, line: string): Promise<void> {
  const fd = await open(join(bundle, 'ctl'), constants.O_WRONLY | constants.O_NONBLOCK);
  try {
    await fd.write(`${line}\n`);
    await consumed(fd.fd);
  } finally {
    await fd.close();
  }
}

/** How long conmon may take to read a command before the next is written anyway. */
const CONSUME_WAIT_MS = 10_000;
const CONSUME_POLL_MS = 2;

/**
 * conmon parses one command per read of its FIFO: a second line that
 * arrives before it has read the first is lost. So each command waits
 * until the FIFO is empty again (there is no event for that; the poll is
 * short and bounded).
 */
async function consumed(fd: number): Promise<void> {
  const native = loadNative();
  const deadline = Date.now() + CONSUME_WAIT_MS;
  while (native.unreadBytes(fd) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, CONSUME_POLL_MS));
}

export function resizeTerminal(bundle: string, rows: number, cols: number): Promise<void> {
  return control(bundle, `1 ${rows} ${cols}`);
}

export function reopenLogFile(bundle: string): Promise<void> {
  return control(bundle, '2 0 0');
}
