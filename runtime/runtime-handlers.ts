import { access, constants } from 'node:fs/promises';
import { errnoCode, errorMessage } from '../core/errors.js';
import { runChild } from '../native/child-process.js';
import { READY, type Condition } from '../core/condition.js';
import type { CradleConfig, RuntimeHandlerConfig } from '../core/config/config.js';

export interface HandlerFeatures {
  /** The runtime supports the `rro` mount option (`<runtime> features`). */
  recursiveReadOnlyMounts: boolean;
  userNamespaces: boolean;
  /** The runtime has a `checkpoint` command (Debian's crun is built without CRIU and has none). */
  checkpoint: boolean;
}

/** Bounded generously: a busy node can take seconds to start a process. */
const PROBE = { timeoutMs: 30_000, killSignal: 'SIGTERM' } as const;

/** Whether `<runtime> checkpoint --help` is answered, not refused as an unknown command. */
async function probeCheckpoint(path: string): Promise<boolean> {
  const r = await runChild(path, ['checkpoint', '--help'], PROBE).catch(() => undefined);
  return r?.code === 0;
}

/** Asks the OCI runtime what it supports (runc >= 1.1, crun >= 1.8 answer `features`); none when it cannot say. */
async function probeFeatures(path: string): Promise<HandlerFeatures> {
  const checkpoint = probeCheckpoint(path);
  const rro = (async () => {
    const r = await runChild(path, ['features'], PROBE).catch(() => undefined);
    if (r?.code !== 0) return false;
    try {
      return ((JSON.parse(r.stdout) as { mountOptions?: unknown[] }).mountOptions ?? []).includes('rro');
    } catch {
      return false;
    }
  })();
  return { recursiveReadOnlyMounts: await rro, userNamespaces: false, checkpoint: await checkpoint };
}

export interface RuntimeHandlerInfo {
  name: string;
  config: RuntimeHandlerConfig;
  features: HandlerFeatures;
  /** Why the handler cannot run containers; undefined when it can. */
  problem: string | undefined;
}

async function executableProblem(what: string, path: string): Promise<string | undefined> {
  try {
    await access(path, constants.X_OK);
    return undefined;
  } catch (err) {
    const code = errnoCode(err);
    return code === 'ENOENT' ? `${what} ${path} does not exist` : `${what} ${path} is not executable (${code ?? errorMessage(err)})`;
  }
}

/**
 * The RuntimeHandlers of the config, with what start-up found about each.
 * Checked once at start and on reload, so Status stays a memory read.
 */
export class RuntimeHandlerRegistry {
  private handlers: RuntimeHandlerInfo[] = [];
  private defaultName = '';
  private condition: Condition = { ready: false, reason: 'RuntimeNotChecked', message: 'runtime handlers have not been checked yet' };
  /**
   * Cradle gives a pod's containers their user namespace itself (idmapped
   * layers and volumes, the namespace joined by path), so any handler that
   * runs can take one once the kernel was found to allow it.
   */
  private userNamespaces = false;

  setUserNamespaces(supported: boolean): void {
    this.userNamespaces = supported;
    for (const h of this.handlers) h.features = { ...h.features, userNamespaces: supported && h.problem === undefined };
  }

  async refresh(config: CradleConfig): Promise<void> {
    const conmonProblem = await executableProblem('conmon', config.conmon.path);
    const handlers = await Promise.all(
      Object.entries(config.runtimes).map(async ([name, handler]): Promise<RuntimeHandlerInfo> => {
        const problem = await executableProblem(`OCI runtime for handler "${name}":`, handler.path);
        const probed = problem === undefined ? await probeFeatures(handler.path) : { recursiveReadOnlyMounts: false, userNamespaces: false, checkpoint: false };
        const features = { ...probed, userNamespaces: this.userNamespaces && problem === undefined };
        return { name, config: handler, features, problem };
      }),
    );
    this.handlers = handlers;
    this.defaultName = config.default_runtime;
    const def = handlers.find((h) => h.name === config.default_runtime);
    const problem = conmonProblem ?? def?.problem;
    this.condition = problem === undefined ? READY : { ready: false, reason: 'RuntimeBinaryMissing', message: problem };
  }

  /** RuntimeReady: the default handler and conmon can be run. */
  readiness(): Condition {
    return this.condition;
  }

  list(): readonly RuntimeHandlerInfo[] {
    return this.handlers;
  }

  get defaultHandler(): string {
    return this.defaultName;
  }
}
