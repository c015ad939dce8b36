/** A parsed WWW-Authenticate challenge: `Bearer realm="...",service="...",scope="..."`. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))\s*,?\s*/gy;
  const rest = m[2] ?? '';
  re.lastIndex = 0;
  while (re.lastIndex < rest.length) {
    const p = re.exec(rest);
    if (p === null) break;
    params[(p[1] as string).toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: (m[1] as string).toLowerCase(), params };
}
