import { readFileSync } from 'node:fs';
import { errnoCode, errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { RegistryAuth, RegistryHosts } from './registry-client.js';

export interface ImageConfigSection {
  insecure_registries: readonly string[];
  credentials_file: string;
  mirrors: Readonly<Record<string, readonly string[]>>;
}

interface DockerConfigEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

/** Registry settings from `[image]`; the credentials file is read per pull, so edits apply without a restart. */
export function registryHosts(section: ImageConfigSection, logger: Logger): RegistryHosts {
  const insecure = new Set(section.insecure_registries);
  return {
    insecure: (host) => insecure.has(host),
    mirrors: (registry) => section.mirrors[registry] ?? [],
    credentials: (registry) => {
      if (!section.credentials_file) return undefined;
      let auths: Record<string, DockerConfigEntry>;
      try {
        auths = (JSON.parse(readFileSync(section.credentials_file, 'utf8')) as { auths?: Record<string, DockerConfigEntry> }).auths ?? {};
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') logger.warn('cannot read the registry credentials file', { file: section.credentials_file, error: errorMessage(err) });
        return undefined;
      }
      const entry = auths[registry] ?? auths[`https://${registry}`] ?? (registry === 'docker.io' ? auths['https://index.docker.io/v1/'] : undefined);
      if (!entry) return undefined;
      const out: RegistryAuth = {};
      if (entry.auth) {
        const [user, ...pass] = Buffer.from(entry.auth, 'base64').toString('utf8').split(':');
        out.username = user;
        out.password = pass.join(':');
      }
      if (entry.username) out.username = entry.username;
      if (entry.password) out.password = entry.password;
      if (entry.identitytoken) out.identityToken = entry.identitytoken;
      if (entry.registrytoken) out.registryToken = entry.registrytoken;
      return out;
    },
  };
}
