import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';

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
  } finally {
    await fd.close();
  }
}

export function resizeTerminal(bundle: string, rows: number, cols: number): Promise<void> {
  return control(bundle, `1 ${rows} ${cols}`);
}

export function reopenLogFile(bundle: string): Promise<void> {
  return control(bundle, '2 0 0');
}
