import { constants } from 'node:os';
import { loadNative } from '../native/index.js';
import type { ContainerRecord } from './container-record.js';

/** A stop signal as the image or the request wrote it ("SIGTERM", "TERM", "15") as a number; undefined when unknown. */
export function signalNumber(name: string): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  const upper = name.toUpperCase();
  return (constants.signals as Record<string, number | undefined>)[upper.startsWith('SIG') ? upper : `SIG${upper}`];
}

/**
 * Signals a container's init as `<runtime> kill` would, without spawning
 * the runtime (a Go binary: ~25 ms a call on a small node): through a
 * pidfd, only once the process is seen in the container's own cgroup,
 * whose name carries the id under both cgroup drivers. False when it
 * cannot be done that way (the init is gone, or the signal unknown): the
 * caller asks the runtime, which also decides whether "gone" means stopped.
 */
export function signalInit(rec: Pick<ContainerRecord, 'id' | 'pid'>, signal: string): boolean {
  const n = signalNumber(signal);
  if (rec.pid === undefined || n === undefined) return false;
  return loadNative().signalInCgroup(rec.pid, n, `/cradle-${rec.id}`);
}
