import { errorMessage } from './errors.js';
import type { Logger } from './logger.js';

interface UndoStep {
  what: string;
  undo: () => Promise<void> | void;
}

/**
 * Each step of a multi-step operation registers how to take itself back;
 * on failure they run in reverse. Undo steps do not take the caller's
 * AbortSignal: the caller's deadline may be exactly what failed.
 */
export class UndoStack {
  private readonly steps: UndoStep[] = [];

  push(what: string, undo: () => Promise<void> | void): void {
    this.steps.push({ what, undo });
  }

  /** Runs every step in reverse; a failing step is logged and the rest still run. */
  async rollback(logger: Logger): Promise<void> {
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step.undo();
      } catch (err) {
        logger.error('rollback step failed; something may be left behind', { step: step.what, error: errorMessage(err) });
      }
    }
  }

  /** The operation succeeded: keep everything. */
  commit(): void {
    this.steps.length = 0;
  }
}
