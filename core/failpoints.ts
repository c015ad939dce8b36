/**
 * Named steps where the crash campaign (test/integration/crash-campaign)
 * kills the daemon, to prove that recovery finishes or undoes whatever a
 * request had started. Inert unless CRADLE_FAILPOINTS names some: a
 * comma-separated list of step names, each killing the process with
 * SIGKILL when reached (as a power cut or the OOM killer would).
 */
const armed = new Set((process.env.CRADLE_FAILPOINTS ?? '').split(',').filter((s) => s !== ''));

export function failpoint(step: string): void {
  if (armed.size > 0 && armed.has(step)) process.kill(process.pid, 'SIGKILL');
}
