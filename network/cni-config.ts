import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { errorMessage } from '../core/errors.js';

/** Files the CNI conf dir is read for, as libcni does. */
export const CNI_CONFIG_EXTENSIONS = ['.conflist', '.conf', '.json'];

export interface CniPluginConf {
  type: string;
  [key: string]: unknown;
}

export interface CniNetworkConfig {
  file: string;
  name: string;
  cniVersion: string;
  plugins: CniPluginConf[];
  disableCheck: boolean;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses one network config file: a .conflist (name + plugins) or a single
 * plugin .conf/.json, which is treated as a list of one. Throws a message
 * naming the file and what is wrong.
 */
export function parseNetworkConfig(file: string, text: string): CniNetworkConfig {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON: ${errorMessage(err)}`);
  }
  if (!isObject(data)) throw new Error(`${file}: expected a JSON object`);
  if (typeof data.name !== 'string' || data.name === '') throw new Error(`${file}: "name" must be a non-empty string`);
  const cniVersion = typeof data.cniVersion === 'string' ? data.cniVersion : '';
  if (cniVersion === '') throw new Error(`${file}: "cniVersion" must be a non-empty string`);
  let plugins: unknown[];
  if (file.endsWith('.conflist') || 'plugins' in data) {
    if (!Array.isArray(data.plugins) || data.plugins.length === 0) throw new Error(`${file}: "plugins" must be a non-empty array`);
    plugins = data.plugins;
  } else {
    plugins = [data];
  }
  plugins.forEach((p, i) => {
    if (!isObject(p) || typeof p.type !== 'string' || p.type === '') throw new Error(`${file}: plugin ${i} has no "type"`);
    if (basename(p.type) !== p.type) throw new Error(`${file}: plugin ${i} type ${JSON.stringify(p.type)} must be a plain binary name`);
  });
  return { file, name: data.name, cniVersion, plugins: plugins as CniPluginConf[], disableCheck: data.disableCheck === true };
}

export async function readNetworkConfig(file: string): Promise<CniNetworkConfig> {
  return parseNetworkConfig(file, await readFile(file, 'utf8'));
}
