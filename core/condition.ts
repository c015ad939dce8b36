/** A readiness condition as the domain reports it; cri/ turns it into a RuntimeCondition. */
export interface Condition {
  ready: boolean;
  /** CamelCase, machine-readable; empty when ready. */
  reason: string;
  message: string;
}

export const READY: Condition = Object.freeze({ ready: true, reason: '', message: '' });
