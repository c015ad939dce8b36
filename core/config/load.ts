import { readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { errnoCode, errorMessage } from '../errors.js';
import type { LogFormat, LogLevel } from '../logger.js';
import { ConfigError, resolveConfig, type ConfigLayer, type CradleConfig } from './config.js';
import { DEFAULT_CONFIG_TOML } from './default-config.js';

export const DEFAULT_CONFIG_PATH = '/etc/cradle/cradle.toml';

/** Command-line flags that override the files. */
export interface ConfigOverrides {
  listen?: string;
  root?: string;
  runroot?: string;
  logLevel?: LogLevel;
  logFormat?: LogFormat;
}

export interface ConfigSource {
  /** Main config file; when not explicit, a missing file is not an error. */
  path: string;
  explicit: boolean;
  overrides: ConfigOverrides;
}

export interface LoadedConfig {
  config: CradleConfig;
  /** The files that were read, in merge order. */
  files: string[];
}

/** `/etc/cradle/cradle.toml` → `/etc/cradle/cradle.d`. */
export function dropInDir(configPath: string): string {
  const name = basename(configPath).replace(/\.toml$/, '');
  return join(dirname(configPath), `${name}.d`);
}

function parseLayer(source: string, text: string): ConfigLayer {
  try {
    return { source, data: parseToml(text) as Record<string, unknown> };
  } catch (err) {
    throw new ConfigError([`${source}: not valid TOML: ${errorMessage(err).split('\n')[0]}`]);
  }
}

function readOptional(path: string, required: boolean): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' && !required) return undefined;
    throw new ConfigError([`${path}: cannot read: ${errorMessage(err)}`]);
  }
}

function listDropIns(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.toml'))
      .sort()
      .map((f) => join(dir, f));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw new ConfigError([`${dir}: cannot list drop-in directory: ${errorMessage(err)}`]);
  }
}

function overridesLayer(o: ConfigOverrides): ConfigLayer {
  const data: Record<string, unknown> = {};
  if (o.listen !== undefined) data.listen = o.listen.replace(/^unix:\/\//, '');
  if (o.root !== undefined) data.root = o.root;
  if (o.runroot !== undefined) data.runroot = o.runroot;
  const log: Record<string, unknown> = {};
  if (o.logLevel !== undefined) log.level = o.logLevel;
  if (o.logFormat !== undefined) log.format = o.logFormat;
  if (Object.keys(log).length > 0) data.log = log;
  return { source: 'command-line flags', data };
}

/** The embedded default, the main file, its drop-ins, then flags. */
export function loadConfig(source: ConfigSource): LoadedConfig {
  const layers: ConfigLayer[] = [parseLayer('embedded default config', DEFAULT_CONFIG_TOML)];
  const files: string[] = [];
  const main = readOptional(source.path, source.explicit);
  if (main !== undefined) {
    layers.push(parseLayer(source.path, main));
    files.push(source.path);
  }
  for (const file of listDropIns(dropInDir(source.path))) {
    const text = readOptional(file, true) as string;
    layers.push(parseLayer(file, text));
    files.push(file);
  }
  layers.push(overridesLayer(source.overrides));
  return { config: resolveConfig(layers), files };
}

export function defaultConfig(): CradleConfig {
  return resolveConfig([parseLayer('embedded default config', DEFAULT_CONFIG_TOML)]);
}
