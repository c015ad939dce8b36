import { InvalidArgumentError } from '../core/errors.js';
import { parseQuantity } from '../core/quantity.js';

/** A Kubernetes quantity ("10M", "1Gi", "500k") in bits per second. */
export function parseBandwidth(annotation: string, value: string): number {
  const bits = parseQuantity(value);
  if (bits === undefined) throw new InvalidArgumentError(`annotation ${annotation}: ${JSON.stringify(value)} is not a quantity such as "10M" or "1Gi"`);
  if (bits < 1 || bits > 1e15) throw new InvalidArgumentError(`annotation ${annotation}: ${value} is outside 1 bit/s to 1 Pbit/s`);
  return bits;
}

export const INGRESS_ANNOTATION = 'kubernetes.io/ingress-bandwidth';
export const EGRESS_ANNOTATION = 'kubernetes.io/egress-bandwidth';

/** The CNI `bandwidth` capability from pod annotations; undefined when neither is set. */
export function bandwidthCapability(annotations: Readonly<Record<string, string>>): Record<string, number> | undefined {
  const out: Record<string, number> = {};
  // Burst as large as the bucket allows: the annotations only limit the rate.
  const burst = 2 ** 31 - 1;
  const ingress = annotations[INGRESS_ANNOTATION];
  const egress = annotations[EGRESS_ANNOTATION];
  if (ingress !== undefined) Object.assign(out, { ingressRate: parseBandwidth(INGRESS_ANNOTATION, ingress), ingressBurst: burst });
  if (egress !== undefined) Object.assign(out, { egressRate: parseBandwidth(EGRESS_ANNOTATION, egress), egressBurst: burst });
  return Object.keys(out).length > 0 ? out : undefined;
}
