import winston from 'winston';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['auto', 'text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type LogFields = Record<string, unknown>;

export interface Logger {
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  /** Hot paths ask first, so that building fields costs nothing when off. */
  isDebugEnabled(): boolean;
  child(fields: LogFields): Logger;
}

export interface LoggerControl {
  logger: Logger;
  setLevel(level: LogLevel): void;
  setFormat(format: LogFormat): void;
  level(): LogLevel;
  close(): Promise<void>;
}

function renderValue(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** `2026-11-23T20:01:02.003Z info  message key=value ...`, for people at a terminal. */
const textFormat = winston.format.printf((info) => {
  const { level, message, timestamp, ...fields } = info;
  const rest = Object.entries(fields)
    .filter(([k]) => typeof k === 'string')
    .map(([k, v]) => `${k}=${renderValue(v)}`)
    .join(' ');
  return `${String(timestamp)} ${level.padEnd(5)} ${String(message)}${rest ? ` ${rest}` : ''}`;
});

const bigintSafeJson = winston.format((info) => {
  for (const [k, v] of Object.entries(info)) {
    if (typeof v === 'bigint') (info as Record<string, unknown>)[k] = v.toString();
    else if (v instanceof Error) (info as Record<string, unknown>)[k] = v.message;
  }
  return info;
});

function formatFor(format: LogFormat, stream: NodeJS.WriteStream): winston.Logform.Format {
  const json = format === 'json' || (format === 'auto' && !stream.isTTY);
  return json
    ? winston.format.combine(winston.format.timestamp(), bigintSafeJson(), winston.format.json())
    : winston.format.combine(winston.format.timestamp(), textFormat);
}

function wrap(w: winston.Logger): Logger {
  return {
    error: (m, f) => void w.error(m, f),
    warn: (m, f) => void w.warn(m, f),
    info: (m, f) => void w.info(m, f),
    debug: (m, f) => void w.debug(m, f),
    isDebugEnabled: () => w.isDebugEnabled(),
    child: (fields) => wrap(w.child(fields)),
  };
}

/** Logs go to stderr: stdout stays free for command output (`cradle config`). */
export function createLogger(level: LogLevel, format: LogFormat): LoggerControl {
  const stream = process.stderr;
  const transport = new winston.transports.Stream({ stream });
  const w = winston.createLogger({
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    level,
    format: formatFor(format, stream),
    transports: [transport],
  });
  return {
    logger: wrap(w),
    setLevel(next) {
      w.level = next;
    },
    setFormat(next) {
      w.format = formatFor(next, stream);
    },
    level: () => w.level as LogLevel,
    close: () =>
      new Promise<void>((resolve) => {
        w.on('finish', () => resolve());
        w.end();
        setTimeout(resolve, 200).unref();
      }),
  };
}

/** A logger that drops everything: for unit tests of code that logs. */
export const silentLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  isDebugEnabled: () => false,
  child: () => silentLogger,
};
