import { AsyncLocalStorage } from 'node:async_hooks';
import { errorMessage } from './errors.js';

/**
 * Per-request tracing: each CRI call is a trace whose steps (spec built,
 * rootfs mounted, conmon spawned, a CNI plugin's ADD, ...) are spans. Any
 * layer marks a step with `step()`; the step joins the trace of the call it
 * runs under (found through AsyncLocalStorage), so no context is passed by
 * hand. Outside a call a step costs one lookup. Finished traces go to the
 * sinks (the debug log, the OTLP exporter when configured) and to a small
 * window of recent step durations that `cradle bench --breakdown` reads.
 */

export type SpanAttributes = Record<string, string | number | boolean>;

export interface SpanRecord {
  name: string;
  /** Index of the parent span in the trace's list; -1 for the root. */
  parent: number;
  /** performance.now() milliseconds. */
  start: number;
  end: number;
  attributes: SpanAttributes;
  error?: string;
}

export interface FinishedTrace {
  /** spans[0] is the root (the RPC); children follow in start order. */
  spans: readonly SpanRecord[];
}

interface Trace {
  spans: SpanRecord[];
  finished: boolean;
}

interface Frame {
  trace: Trace;
  span: number;
}

const current = new AsyncLocalStorage<Frame>();
const sinks = new Set<(trace: FinishedTrace) => void>();

/**
 * Runs `fn` as the root span `name` of a new trace. Once `fn` settles, the
 * trace goes to `settled` (the caller's own log line), then to the sinks.
 */
export function traced<T>(name: string, attributes: SpanAttributes, fn: () => Promise<T>, settled?: (trace: FinishedTrace) => void): Promise<T> {
  const trace: Trace = { spans: [{ name, parent: -1, start: performance.now(), end: 0, attributes: { ...attributes } }], finished: false };
  return current.run({ trace, span: 0 }, fn).then(
    (v) => {
      finish(trace, undefined, settled);
      return v;
    },
    (err: unknown) => {
      finish(trace, err, settled);
      throw err;
    },
  );
}

/** Records `fn` as a step of the current trace; outside one, just runs it. */
export async function step<T>(name: string, fn: () => Promise<T> | T, attributes?: SpanAttributes): Promise<T> {
  const frame = current.getStore();
  // Work a call started in the background outlives it: it is not the call's step.
  if (frame === undefined || frame.trace.finished) return fn();
  const span: SpanRecord = { name, parent: frame.span, start: performance.now(), end: 0, attributes: attributes ?? {} };
  const index = frame.trace.spans.push(span) - 1;
  try {
    return await current.run({ trace: frame.trace, span: index }, fn);
  } catch (err) {
    span.error = errorMessage(err);
    throw err;
  } finally {
    span.end = performance.now();
  }
}

/** `step` for synchronous work (a record's write and fsync). */
export function stepSync<T>(name: string, fn: () => T): T {
  const frame = current.getStore();
  if (frame === undefined || frame.trace.finished) return fn();
  const span: SpanRecord = { name, parent: frame.span, start: performance.now(), end: 0, attributes: {} };
  const index = frame.trace.spans.push(span) - 1;
  try {
    return current.run({ trace: frame.trace, span: index }, fn);
  } catch (err) {
    span.error = errorMessage(err);
    throw err;
  } finally {
    span.end = performance.now();
  }
}

/** Adds attributes (ids, a plugin's name) to the innermost span of the current trace. */
export function annotate(attributes: SpanAttributes): void {
  const frame = current.getStore();
  if (frame === undefined || frame.trace.finished) return;
  Object.assign((frame.trace.spans[frame.span] as SpanRecord).attributes, attributes);
}

/** Adds a sink for finished traces; returns its removal. */
export function addTraceSink(sink: (trace: FinishedTrace) => void): () => void {
  sinks.add(sink);
  return () => sinks.delete(sink);
}

function finish(trace: Trace, err: unknown, settled: ((trace: FinishedTrace) => void) | undefined): void {
  trace.finished = true;
  const root = trace.spans[0] as SpanRecord;
  root.end = performance.now();
  if (err !== undefined) root.error = errorMessage(err);
  // A step still running when the call settled (it raced a failure) ends with it.
  for (const s of trace.spans) if (s.end === 0) s.end = root.end;
  recentSteps.add(trace);
  settled?.(trace);
  for (const sink of sinks) sink(trace);
}

/** `parent / child` names of each span, the root's name first. */
export function spanPaths(trace: FinishedTrace): string[] {
  const paths: string[] = [];
  for (const s of trace.spans) paths.push(s.parent < 0 ? s.name : `${paths[s.parent] as string} / ${s.name}`);
  return paths;
}

/** The spans as short text for a log line: `path 12.3ms`, without the root. */
export function describeSteps(trace: FinishedTrace): string[] {
  const paths = spanPaths(trace);
  return trace.spans.slice(1).map((s, i) => `${(paths[i + 1] as string).slice((paths[0] as string).length + 3)} ${(s.end - s.start).toFixed(1)}ms`);
}

/** How many recent durations each step keeps: enough for a benchmark's run of one step. */
const WINDOW = 512;

export interface StepWindow {
  /** Calls seen since start. */
  count: number;
  /** The latest durations in ms, oldest first, at most WINDOW. Per call: a step that ran twice in one call counts once, summed. */
  recent: number[];
}

/**
 * Recent durations of each step of each RPC, for `cradle bench
 * --breakdown`: keyed by span path ("CreateContainer / rootfs / mount").
 * Bounded by the code's step names times WINDOW numbers.
 */
class RecentSteps {
  private readonly steps = new Map<string, StepWindow>();

  add(trace: FinishedTrace): void {
    const paths = spanPaths(trace);
    const perCall = new Map<string, number>();
    trace.spans.forEach((s, i) => {
      const path = paths[i] as string;
      perCall.set(path, (perCall.get(path) ?? 0) + (s.end - s.start));
    });
    for (const [path, ms] of perCall) {
      let w = this.steps.get(path);
      if (w === undefined) {
        w = { count: 0, recent: [] };
        this.steps.set(path, w);
      }
      w.count++;
      w.recent.push(Math.round(ms * 100) / 100);
      if (w.recent.length > WINDOW) w.recent.splice(0, w.recent.length - WINDOW);
    }
  }

  snapshot(): Record<string, StepWindow> {
    return Object.fromEntries([...this.steps].map(([k, v]) => [k, { count: v.count, recent: [...v.recent] }]));
  }
}

const recentSteps = new RecentSteps();

export function recentStepDurations(): Record<string, StepWindow> {
  return recentSteps.snapshot();
}
