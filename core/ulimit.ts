import { InvalidArgumentError } from './errors.js';

/** A process rlimit as the OCI spec writes it. */
export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

const RLIMIT_NAMES = [
  'as',
  'core',
  'cpu',
  'data',
  'fsize',
  'locks',
  'memlock',
  'msgqueue',
  'nice',
  'nofile',
  'nproc',
  'rss',
  'rtprio',
  'rttime',
  'sigpending',
  'stack',
];

/** `nofile=1024:4096` (or `nofile=1024`) → an OCI rlimit; throws naming the entry when malformed. */
export function parseUlimit(text: string): Rlimit {
  const m = /^([a-z]+)=(\d+)(?::(\d+))?$/.exec(text.trim());
  if (!m || !RLIMIT_NAMES.includes(m[1] as string))
    throw new InvalidArgumentError(`ulimit ${JSON.stringify(text)}: expected NAME=SOFT[:HARD] with NAME one of ${RLIMIT_NAMES.join(', ')}`);
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  if (soft > hard) throw new InvalidArgumentError(`ulimit ${JSON.stringify(text)}: the soft limit is above the hard one`);
  return { type: `RLIMIT_${(m[1] as string).toUpperCase()}`, soft, hard };
}
