import { access, constants } from 'node:fs/promises';
import { errnoCode, errorMessage } from '../core/errors.js';
import { READY, type Condition } from '../core/condition.js';
import type { CradleConfig, RuntimeHandlerConfig } from '../core/config/config.js';

export interface HandlerFeatures {
  /** Stays false until container creation honours recursive read-only mounts. */
  recursiveReadOnlyMounts: boolean;
  userNamespaces: boolean;
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

  async refresh(config: CradleConfig): Promise<void> {
    const conmonProblem = await executableProblem('conmon', config.conmon.path);
    const handlers = await Promise.all(
      Object.entries(config.runtimes).map(async ([name, handler]): Promise<RuntimeHandlerInfo> => ({
        name,
        config: handler,
        features: { recursiveReadOnlyMounts: false, userNamespaces: false },
        problem: await executableProblem(`OCI runtime for handler "${name}":`, handler.path),
      })),
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
