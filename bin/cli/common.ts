import { DEFAULT_CONFIG_PATH, loadConfig } from '../../core/config/load.js';
import { CriClient } from '../../cri/client.js';

/** The daemon's socket: `--endpoint`, else the configured `listen` (config files as the daemon reads them). */
export function resolveEndpoint(flag: string | undefined): string {
  if (flag) return flag.replace(/^unix:\/\//, '');
  return loadConfig({ path: DEFAULT_CONFIG_PATH, explicit: false, overrides: {} }).config.listen;
}

/** Runs `fn` with a client on `endpoint`, closed afterwards. */
export async function withClient<T>(endpoint: string, fn: (client: CriClient) => Promise<T>): Promise<T> {
  const client = new CriClient(endpoint);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

/** A duration as people read ages: 42s, 5m, 3h, 2d. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** Columns padded to their widest cell. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(header), ...rows.map(line)].join('\n')}\n`;
}
