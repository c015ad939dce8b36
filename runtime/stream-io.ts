import type { Readable, Writable } from 'node:stream';

/**
 * What an interactive exec or an attach needs of a client, whatever
 * protocol carries it: the streaming server implements it.
 */

export interface TerminalSize {
  width: number;
  height: number;
}

/** What a command or attach session sees of the client. */
export interface ClientIO {
  /** Bytes the client types; ends when the client closes stdin. */
  stdin: Readable | undefined;
  stdout: Writable | undefined;
  stderr: Writable | undefined;
  /** Terminal sizes the client sends (tty only), in order. */
  onResize(listener: (size: TerminalSize) => void): void;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
}

/** The outcome kubectl shows: an exit code, or an error message. */
export type CommandResult = { exitCode: number } | { error: string };
