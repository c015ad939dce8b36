import { isAbsolute } from 'node:path';
import { parseDuration } from '../duration.js';
import { parseQuantity } from '../quantity.js';

/**
 * A small declarative schema for config files: enough to name the file, the
 * key, what was expected and what was found in every error, and to refuse
 * unknown keys (a typo must not silently fall back to a default).
 */
export type Spec =
  | { type: 'string'; absolutePath?: boolean; allowEmpty?: boolean; httpUrl?: boolean }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'bool' }
  | { type: 'int'; min: number; max: number }
  | { type: 'duration' }
  | { type: 'quantity' }
  | { type: 'stringArray' }
  | { type: 'table'; fields: Readonly<Record<string, Spec>> }
  | { type: 'record'; value: Spec };

export function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return `an array (${JSON.stringify(value)})`;
  if (value instanceof Date) return `a date (${value.toISOString()})`;
  switch (typeof value) {
    case 'string':
      return `the string ${JSON.stringify(value)}`;
    case 'number':
    case 'bigint':
      return `the number ${String(value)}`;
    case 'boolean':
      return `the boolean ${String(value)}`;
    case 'object':
      return 'a table';
    default:
      return typeof value;
  }
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/**
 * Checks `value` against `spec` and returns one line per problem, each
 * starting with the dotted key. Keys may be missing: files are partial, and
 * completeness is checked after merging.
 */
export function validate(value: unknown, spec: Spec, key: string): string[] {
  const problems: string[] = [];
  const expect = (what: string) => problems.push(`${key}: expected ${what}, found ${describe(value)}`);
  switch (spec.type) {
    case 'string':
      if (typeof value !== 'string') expect(spec.absolutePath ? 'an absolute path string' : 'a string');
      else if (value === '' && !spec.allowEmpty) expect('a non-empty string');
      else if (spec.absolutePath && value !== '' && !isAbsolute(value)) expect('an absolute path');
      else if (spec.httpUrl && value !== '' && !isHttpUrl(value)) expect('an http:// or https:// URL');
      break;
    case 'enum':
      if (typeof value !== 'string' || !spec.values.includes(value)) expect(`one of ${spec.values.map((v) => JSON.stringify(v)).join(', ')}`);
      break;
    case 'bool':
      if (typeof value !== 'boolean') expect('true or false');
      break;
    case 'int': {
      const n = typeof value === 'bigint' ? Number(value) : value;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < spec.min || n > spec.max) expect(`a whole number from ${spec.min} to ${spec.max}`);
      break;
    }
    case 'duration':
      if (typeof value !== 'string' || parseDuration(value) === undefined) expect('a duration such as "90s", "1m30s" or "4h"');
      break;
    case 'quantity':
      if (typeof value !== 'string' || parseQuantity(value) === undefined) expect('a quantity such as "64Mi" or "1G"');
      break;
    case 'stringArray':
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'string' || v === '')) expect('an array of non-empty strings');
      break;
    case 'table':
      if (!isTable(value)) {
        expect('a table');
        break;
      }
      for (const [k, v] of Object.entries(value)) {
        const sub = spec.fields[k];
        const subKey = key ? `${key}.${k}` : k;
        if (sub === undefined) {
          const known = Object.keys(spec.fields).join(', ');
          problems.push(`${subKey}: unknown key (known keys${key ? ` in [${key}]` : ''}: ${known})`);
        } else {
          problems.push(...validate(v, sub, subKey));
        }
      }
      break;
    case 'record':
      if (!isTable(value)) {
        expect('a table');
        break;
      }
      for (const [k, v] of Object.entries(value)) problems.push(...validate(v, spec.value, `${key}.${quoteKey(k)}`));
      break;
  }
  return problems;
}

function quoteKey(k: string): string {
  return /^[A-Za-z0-9_-]+$/.test(k) ? k : JSON.stringify(k);
}

function isHttpUrl(value: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}
