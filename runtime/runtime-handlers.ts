import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { errnoCode, errorMessage } from '../core/errors.js';
import { READY, type Condition } from '../core/condition.js';
import type { CradleConfig, RuntimeHandlerConfig } from '../core/config/config.js';

export interface HandlerFeatures {
  /** The runtime supports the `rro` mount option (`<runtime> features`). */
  recursiveReadOnlyMounts: boolean;
  userNamespaces: boolean;
  /** The runtime has a `checkpoint` command (Debian's crun is built without CRIU and has none). */
  checkpoint: boolean;
}

/** Whether `<runtime> checkpoint --help` is answered, not refused as an unknown command. */
function probeCheckpoint(path: string): Promise<boolean> {
  return new Promise((resolve) => execFile(path, ['checkpoint', '--help'], { timeout: 30_000 }, (err) => resolve(!err)));
}

/** Asks the OCI runtime what it supports (runc >= 1.1, crun >= 1.8 answer `features`); none when it cannot say. */
async function probeFeatures(path: string): Promise<HandlerFeatures> {
  const checkpoint = probeCheckpoint(path);
  const rro = new Promise<boolean>((resolve) => {
    // Bounded generously: a busy node can take seconds to start a process.
    execFile(path, ['features'], { timeout: 30_000 }, (err, stdout) => {
      let options: unknown[] = [];
      if (!err) {
        try {
          options = (JSON.parse(stdout) as { mountOptions?: unknown[] }).mountOptions ?? [];
        } catch {
          options = [];
        }
      }
      resolve(options.includes('rro'));
    });
  });
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
