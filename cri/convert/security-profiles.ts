import { InvalidArgumentError } from '../../core/errors.js';
import type { AppArmorChoice } from '../../oci/lsm.js';
import type { SeccompChoice } from '../../oci/seccomp.js';
import { SecurityProfile_ProfileType, type SecurityProfile } from '../generated/api.js';

type ProfileRequest = { kind: 'runtime-default' } | { kind: 'unconfined' } | { kind: 'localhost'; ref: string };

/** A SecurityProfile message (seccomp or AppArmor) in domain terms. */
function profileRequest(profile: SecurityProfile, what: string): ProfileRequest {
  switch (profile.profile_type) {
    case SecurityProfile_ProfileType.RuntimeDefault:
      return { kind: 'runtime-default' };
    case SecurityProfile_ProfileType.Unconfined:
      return { kind: 'unconfined' };
    case SecurityProfile_ProfileType.Localhost:
      if (!profile.localhost_ref) throw new InvalidArgumentError(`${what}: a Localhost profile needs localhost_ref`);
      return { kind: 'localhost', ref: profile.localhost_ref };
    default:
      throw new InvalidArgumentError(`${what}: unknown profile type ${String(profile.profile_type)}`);
  }
}

/**
 * The seccomp profile asked for: the SecurityProfile message, else the
 * deprecated path string; neither means Unconfined, as in Kubernetes.
 */
export function seccompChoice(profile: SecurityProfile | undefined, legacyPath: string): SeccompChoice {
  if (profile) {
    const r = profileRequest(profile, 'seccomp');
    return r.kind === 'localhost' ? { kind: 'localhost', path: r.ref } : r;
  }
  if (legacyPath === 'runtime/default' || legacyPath === 'docker/default') return { kind: 'runtime-default' };
  if (legacyPath.startsWith('localhost/')) return { kind: 'localhost', path: legacyPath.slice('localhost'.length) };
  return { kind: 'unconfined' };
}

/**
 * The AppArmor profile asked for: the SecurityProfile message, else the
 * deprecated string ("runtime/default", "unconfined", "localhost/NAME").
 */
export function appArmorChoice(profile: SecurityProfile | undefined, legacy: string): AppArmorChoice {
  if (profile) {
    const r = profileRequest(profile, 'apparmor');
    return r.kind === 'localhost' ? { kind: 'localhost', profile: r.ref.replace(/^localhost\//, '') } : r;
  }
  if (legacy === '') return { kind: 'unset' };
  if (legacy === 'runtime/default') return { kind: 'runtime-default' };
  if (legacy === 'unconfined') return { kind: 'unconfined' };
  if (legacy.startsWith('localhost/') && legacy.length > 'localhost/'.length) return { kind: 'localhost', profile: legacy.slice('localhost/'.length) };
  throw new InvalidArgumentError(`apparmor_profile ${JSON.stringify(legacy)} is not runtime/default, unconfined or localhost/<name>`);
}
