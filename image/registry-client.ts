import { createHash } from 'node:crypto';
import { errorMessage, NotFoundError, UnauthenticatedError, UnavailableError } from '../core/errors.js';
import { parseChallenge } from './auth-challenge.js';
import { MANIFEST_ACCEPT } from './manifest.js';
import { formatReference, type ImageReference } from './reference.js';

/** Credentials for one registry, as CRI's AuthConfig carries them. */
export interface RegistryAuth {
  username?: string;
  password?: string;
  /** OAuth2 refresh token, exchanged at the token realm. */
  identityToken?: string;
  /** A bearer token to send as is. */
  registryToken?: string;
}

export interface RegistryHosts {
  /** Plain-http registries, by host[:port]. */
  insecure(host: string): boolean;
  /** Mirrors of a registry, tried in order before it: `host[:port]` or a full URL. */
  mirrors(registry: string): readonly string[];
  /** Credentials from the credentials file, for pulls that carry none. */
  credentials(registry: string): RegistryAuth | undefined;
}

interface Endpoint {
  /** `https://registry-1.docker.io` */
  base: string;
  host: string;
  mirror: boolean;
}

class EndpointError extends Error {
  constructor(
    readonly endpoint: string,
    readonly kind: 'unreachable' | 'notfound' | 'unauthorized' | 'server',
    message: string,
  ) {
    super(message);
  }
}

const REQUEST_TIMEOUT_MS = 30_000;

export interface FetchedManifest {
  endpoint: Endpoint;
  contentType: string;
  body: Buffer;
  digest: string;
}

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * Talks the OCI distribution protocol to one repository, across its mirrors
 * and origin: Bearer tokens from WWW-Authenticate challenges, Basic auth,
 * identity and registry tokens. Errors list every endpoint tried and why.
 */
export class RegistryClient {
  private readonly tokens = new Map<string, string>();
  private readonly auth: RegistryAuth | undefined;
  private readonly name: string;

  constructor(
    private readonly ref: ImageReference,
    private readonly hosts: RegistryHosts,
    auth: RegistryAuth | undefined,
    private readonly signal?: AbortSignal,
  ) {
    this.auth = auth ?? hosts.credentials(ref.registry);
    this.name = formatReference(ref);
  }

  endpoints(): Endpoint[] {
    const toEndpoint = (spec: string, mirror: boolean): Endpoint => {
      if (/^https?:\/\//.test(spec)) {
        const url = new URL(spec);
        return { base: `${url.protocol}//${url.host}${url.pathname.replace(/\/$/, '')}`, host: url.host, mirror };
      }
      const host = spec === 'docker.io' ? 'registry-1.docker.io' : spec;
      return { base: `${this.hosts.insecure(spec) ? 'http' : 'https'}://${host}`, host: spec, mirror };
    };
    return [...this.hosts.mirrors(this.ref.registry).map((m) => toEndpoint(m, true)), toEndpoint(this.ref.registry, false)];
  }

  /** The manifest for a tag or digest, from the first endpoint that has it. */
  async manifest(reference: string, from?: Endpoint): Promise<FetchedManifest> {
    return this.firstEndpoint(from, async (endpoint) => {
      const res = await this.request(endpoint, `/manifests/${reference}`, { accept: MANIFEST_ACCEPT });
      const body = Buffer.from(await res.arrayBuffer());
      const digest = sha256Digest(body);
      if (reference.includes(':') && reference !== digest) {
        throw new EndpointError(endpoint.base, 'server', `manifest digest mismatch: asked for ${reference}, got ${digest}`);
      }
      return { endpoint, contentType: res.headers.get('content-type') ?? '', body, digest };
    });
  }

  /** A blob's response body, preferring the endpoint that served the manifest. */
  async blob(digest: string, from?: Endpoint): Promise<ReadableStream<Uint8Array>> {
    return this.firstEndpoint(from, async (endpoint) => {
      const res = await this.request(endpoint, `/blobs/${digest}`, {}, 0);
      if (!res.body) throw new EndpointError(endpoint.base, 'server', 'empty response body');
      return res.body;
    });
  }

  /**
   * Where and how to GET a blob: the endpoint that has it and the
   * Authorization to send, with any token challenge already answered, so a
   * worker thread can stream it.
   */
  async blobRequest(digest: string, from?: Endpoint): Promise<{ url: string; headers: Record<string, string> }> {
    return this.firstEndpoint(from, async (endpoint) => {
      const res = await this.request(endpoint, `/blobs/${digest}`, {}, 0, 'HEAD');
      await res.body?.cancel();
      const token = this.tokens.get(endpoint.base);
      return {
        url: `${endpoint.base}/v2/${this.ref.repository}/blobs/${digest}`,
        headers: { 'user-agent': 'cradle', ...(token ? { authorization: token } : {}) },
      };
    });
  }

  private async firstEndpoint<T>(preferred: Endpoint | undefined, fn: (e: Endpoint) => Promise<T>): Promise<T> {
    const all = this.endpoints();
    const order = preferred ? [preferred, ...all.filter((e) => e.base !== preferred.base)] : all;
    const failures: EndpointError[] = [];
    for (const endpoint of order) {
      try {
        return await fn(endpoint);
      } catch (err) {
        if (this.signal?.aborted) throw err;
        failures.push(err instanceof EndpointError ? err : new EndpointError(endpoint.base, 'unreachable', errorMessage(err)));
      }
    }
    const tried = failures.map((f) => `${f.endpoint}: ${f.message}`).join('; ');
    const origin = failures[failures.length - 1];
    if (origin?.kind === 'notfound') throw new NotFoundError(`image ${this.name} not found (tried ${tried})`);
    if (failures.some((f) => f.kind === 'unauthorized')) throw new UnauthenticatedError(`pulling ${this.name} needs valid credentials (tried ${tried})`);
    // kubelet recognizes this prefix as a registry outage rather than a bad image.
    throw new UnavailableError(`RegistryUnavailable: cannot pull ${this.name} (tried ${tried})`);
  }

  private scope(): string {
    return `repository:${this.ref.repository}:pull`;
  }

  private async request(endpoint: Endpoint, path: string, headers: Record<string, string>, attempt = 0, method = 'GET'): Promise<Response> {
    const url = `${endpoint.base}/v2/${this.ref.repository}${path}`;
    const res = await this.send(endpoint, url, headers, method);
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers.get('www-authenticate') ?? '');
      await res.body?.cancel();
      if (attempt === 0 && challenge && (await this.authorize(endpoint, challenge))) return this.request(endpoint, path, headers, 1, method);
      throw new EndpointError(
        endpoint.base,
        'unauthorized',
        this.auth ? 'credentials were refused (401)' : 'authentication required (401) and no credentials were given',
      );
    }
    if (res.status === 404) {
      await res.body?.cancel();
      throw new EndpointError(endpoint.base, 'notfound', 'not found (404)');
    }
    if (res.status === 403) {
      await res.body?.cancel();
      throw new EndpointError(endpoint.base, 'unauthorized', 'access denied (403)');
    }
    if (!res.ok) {
      const text = method === 'HEAD' ? '' : (await res.text()).slice(0, 200);
      throw new EndpointError(endpoint.base, 'server', `HTTP ${res.status}${text ? `: ${text}` : ''}`);
    }
    return res;
  }

  private async send(endpoint: Endpoint, url: string, headers: Record<string, string>, method = 'GET'): Promise<Response> {
    const token = this.tokens.get(endpoint.base);
    const all: Record<string, string> = { ...headers, 'user-agent': 'cradle' };
    if (token) all.authorization = token;
    const signal = this.signal ? AbortSignal.any([this.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) : AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    try {
      return await fetch(url, { method, headers: all, redirect: 'follow', signal });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new EndpointError(endpoint.base, 'unreachable', cause?.code ?? cause?.message ?? errorMessage(err));
    }
  }

  /** Answers a 401 challenge; true when there is something new to retry with. */
  private async authorize(endpoint: Endpoint, challenge: { scheme: string; params: Record<string, string> }): Promise<boolean> {
    const auth = this.auth;
    if (challenge.scheme === 'basic') {
      if (!auth?.username) return false;
      this.tokens.set(endpoint.base, `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64')}`);
      return true;
    }
    if (challenge.scheme !== 'bearer') return false;
    if (auth?.registryToken) {
      this.tokens.set(endpoint.base, `Bearer ${auth.registryToken}`);
      return true;
    }
    const realm = challenge.params.realm;
    if (!realm) return false;
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new EndpointError(endpoint.base, 'server', `token realm ${JSON.stringify(realm)} is not a URL`);
    }
    const service = challenge.params.service ?? '';
    const scope = challenge.params.scope ?? this.scope();
    let res: Response;
    const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    try {
      if (auth?.identityToken) {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: auth.identityToken, service, scope, client_id: 'cradle' });
        res = await fetch(realmUrl, { method: 'POST', body: form, signal });
      } else {
        if (service) realmUrl.searchParams.set('service', service);
        realmUrl.searchParams.set('scope', scope);
        const headers: Record<string, string> = {};
        if (auth?.username) headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password ?? ''}`).toString('base64')}`;
        res = await fetch(realmUrl, { headers, signal });
      }
    } catch (err) {
      throw new EndpointError(endpoint.base, 'unreachable', `token service ${realmUrl.origin}: ${errorMessage(err)}`);
    }
    if (res.status === 401 || res.status === 403)
      throw new EndpointError(endpoint.base, 'unauthorized', `the token service refused the credentials (${res.status})`);
    if (!res.ok) throw new EndpointError(endpoint.base, 'server', `token service answered HTTP ${res.status}`);
    const body = (await res.json()) as { token?: unknown; access_token?: unknown };
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (!token) throw new EndpointError(endpoint.base, 'server', 'token service sent no token');
    this.tokens.set(endpoint.base, `Bearer ${token}`);
    return true;
  }
}
