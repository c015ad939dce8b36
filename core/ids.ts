import { randomBytes } from 'node:crypto';

/** A new object id: 64 lowercase hex characters, as kubelet and crictl expect. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}
