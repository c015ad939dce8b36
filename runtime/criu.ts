import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/**
 * Whether CRIU can checkpoint here, asked of `criu check` once per daemon:
 * undefined when it can, otherwise what is missing, in words for the
 * FAILED_PRECONDITION a checkpoint then answers.
 */
let probe: Promise<string | undefined> | undefined;

export function criuProblem(): Promise<string | undefined> {
  probe ??= new Promise((resolve) => {
    execFile('criu', ['check'], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (!err) return resolve(undefined);
      if ((err as { code?: unknown }).code === 'ENOENT') return resolve('CRIU is not installed (Debian package "criu")');
      const lines = `${stderr}\n${stdout}`.split('\n').filter((l) => /error/i.test(l));
      resolve(`"criu check" fails on this host: ${(lines.at(-1) ?? lines[0] ?? err.message).trim()}`);
    });
  });
  return probe;
}

/** The last error CRIU wrote to its log at `path` (dump.log, restore.log), if there is one. */
export async function criuLogError(path: string): Promise<string | undefined> {
  const log = await readFile(path, 'utf8').catch(() => '');
  return (
    log
      .split('\n')
      .filter((l) => l.includes('Error'))
      .at(-1)
      ?.trim() || undefined
  );
}
