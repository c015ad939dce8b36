/**
 * Durations in config are strings like "90s", "1m30s", "4h" or "250ms", the
 * notation operators know from Go tools (kubelet, containerd, CRI-O).
 */
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;

/** Milliseconds in a duration string, or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (text === '0') return 0;
  if (text.length === 0) return undefined;
  let total = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < text.length) {
    const start = PART.lastIndex;
    const match = PART.exec(text);
    if (match === null || match.index !== start) return undefined;
    const unit = UNIT_MS[match[2] as string] as number;
    total += Number(match[1]) * unit;
  }
  return Math.round(total);
}
