import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { CradleError, DeadlineExceededError, errorMessage, InternalError, NotFoundError } from '../core/errors.js';
import { metrics } from '../core/metrics.js';
import { runChild } from '../native/child-process.js';
import { step } from '../core/tracing.js';

export type CniCommand = 'ADD' | 'DEL' | 'CHECK' | 'VERSION' | 'STATUS' | 'GC';

export interface CniInvocation {
  command: CniCommand;
  containerId: string;
  netns: string;
  ifName: string;
  /** `K=V;K=V` */
  args: string;
  binDirs: readonly string[];
  timeoutMs: number;
}

/** A CNI plugin's own error: its exit code and its JSON (code, msg, details). */
export class CniPluginError extends CradleError {
  constructor(
    readonly plugin: string,
    readonly command: CniCommand,
    readonly exitCode: number | null,
    readonly cniCode: number | undefined,
    readonly msg: string,
    readonly details: string,
  ) {
    const code = cniCode === undefined ? '' : ` (CNI error code ${cniCode})`;
    const more = details ? `: ${details}` : '';
    super('Internal', `CNI plugin ${plugin} ${command} failed with exit code ${String(exitCode)}${code}: ${msg}${more}`);
  }
}

export async function findPlugin(type: string, binDirs: readonly string[]): Promise<string> {
  for (const dir of binDirs) {
    const path = join(dir, type);
    try {
      await access(path, constants.X_OK);
      return path;
    } catch {
      // next dir
    }
  }
  throw new NotFoundError(`CNI plugin "${type}" not found in ${binDirs.join(', ')}`);
}

interface PluginError {
  code?: unknown;
  msg?: unknown;
  details?: unknown;
}

/** Runs one plugin with the CNI environment and `config` on stdin; returns its parsed stdout. */
export async function invokePlugin(type: string, config: object, inv: CniInvocation): Promise<Record<string, unknown> | undefined> {
  const started = performance.now();
  try {
    const result = await step(`cni ${inv.command} ${type}`, () => runPlugin(type, config, inv));
    metrics.cni(inv.command, type, (performance.now() - started) / 1000, false);
    return result;
  } catch (err) {
    metrics.cni(inv.command, type, (performance.now() - started) / 1000, true);
    throw err;
  }
}

async function runPlugin(type: string, config: object, inv: CniInvocation): Promise<Record<string, unknown> | undefined> {
  const path = await findPlugin(type, inv.binDirs);
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    CNI_COMMAND: inv.command,
    CNI_PATH: inv.binDirs.join(':'),
  };
  // STATUS and GC concern no container: those variables are left unset, as the spec says.
  if (inv.containerId) env.CNI_CONTAINERID = inv.containerId;
  if (inv.netns || inv.command === 'DEL') env.CNI_NETNS = inv.netns;
  if (inv.ifName) env.CNI_IFNAME = inv.ifName;
  if (inv.args) env.CNI_ARGS = inv.args;
  // Its own process group: on timeout the plugin and anything it started
  // are killed together, and nothing holds its pipes open afterwards.
  const { code, stdout, stderr, timedOut } = await runChild(path, [], {
    env,
    setsid: true,
    input: JSON.stringify(config),
    timeoutMs: inv.timeoutMs,
    killSignal: 'SIGKILL',
  }).catch((e: unknown) => {
    throw new InternalError(`cannot run CNI plugin ${path}: ${errorMessage(e)}`);
  });
  if (timedOut) throw new DeadlineExceededError(`CNI plugin ${type} ${inv.command} did not finish within ${inv.timeoutMs} ms`);
  let parsed: unknown;
  try {
    parsed = stdout.trim() === '' ? undefined : JSON.parse(stdout);
  } catch {
    parsed = undefined;
  }
  if (code !== 0) {
    const e = (parsed ?? {}) as PluginError;
    const msg = typeof e.msg === 'string' ? e.msg : stderr.trim() || stdout.trim() || 'no error output';
    throw new CniPluginError(type, inv.command, code, typeof e.code === 'number' ? e.code : undefined, msg, typeof e.details === 'string' ? e.details : '');
  }
  if (parsed !== undefined && (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))) {
    throw new InternalError(`CNI plugin ${type} ${inv.command} printed something other than a JSON object: ${stdout.slice(0, 200)}`);
  }
  return parsed as Record<string, unknown> | undefined;
}
