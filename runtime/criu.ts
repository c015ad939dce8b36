import { readFile } from 'node:fs/promises';
import { errorMessage } from '../core/errors.js';
import { exitDescription, type RunResult, runChild } from '../native/child-process.js';

/**
 * Whether CRIU can checkpoint here, asked of `criu check` once per daemon:
 * undefined when it can, otherwise what is missing, in words for the
 * FAILED_PRECONDITION a checkpoint then answers.
 */
let probe: Promise<string | undefined> | undefined;

export function criuProblem(): Promise<string | undefined> {
  probe ??= (async () => {
    let r: RunResult;
    try {
      r = await runChild('criu', ['check'], { timeoutMs: 60_000, killSignal: 'SIGTERM' });
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return 'CRIU is not installed (Debian package "criu")';
      return `"criu check" cannot be run: ${errorMessage(err)}`;
    }
    if (r.code === 0) return undefined;
    const lines = `${r.stderr}\n${r.stdout}`.split('\n').filter((l) => /error/i.test(l));
    return `"criu check" fails on this host: ${(lines.at(-1) ?? lines[0] ?? exitDescription(r)).trim()}`;
  })();
  return probe;
}

/**
 * The errors CRIU wrote to its log at `path` (dump.log, restore.log), if
 * there are any: the first, which names the cause, and the last, which
 * says what failed ("Restoring FAILED." alone tells an operator nothing).
 */
export async function criuLogError(path: string): Promise<string | undefined> {
  const log = await readFile(path, 'utf8').catch(() => '');
  const errors = log
    .split('\n')
    .filter((l) => l.includes('Error'))
    .map((l) => l.trim());
  const [first, last] = [errors[0], errors.at(-1)];
  if (first === undefined) return undefined;
  return first === last ? first : `${first} ... ${last}`;
}
