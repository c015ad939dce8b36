import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { packageRoot } from '../../core/package-info.js';
import { exited, run, spawnTracked } from './processes.js';
import type { TestNode } from './test-node.js';
import { waitFor } from './wait.js';

export interface RegistryOptions {
  port?: number;
  /** Require HTTP basic auth (htpasswd) for everything. */
  user?: { name: string; password: string };
  /** Require Bearer tokens from a token service on this port (see token-server.ts). */
  token?: { port: number; user: { name: string; password: string }; refreshToken: string };
}

/**
 * Debian's docker-registry (distribution 2.8) on loopback inside a test
 * node's network namespace, with its own storage; images get there with
 * skopeo from OCI layouts the tests build.
 */
export class TestRegistry {
  readonly port: number;
  readonly storage: string;
  private process: ChildProcess | undefined;
  private tokenServer: ChildProcess | undefined;
  private log = '';

  constructor(
    private readonly node: TestNode,
    private readonly opts: RegistryOptions = {},
  ) {
    this.port = opts.port ?? 5000;
    this.storage = join(node.dir, `registry-${this.port}`);
  }

  /** The registry's pid (nsenter execs it), while it runs. */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    mkdirSync(this.storage, { recursive: true });
    let auth = '';
    if (this.opts.user) {
      const file = join(this.storage, 'htpasswd');
      const r = await run('htpasswd', ['-Bbn', this.opts.user.name, this.opts.user.password]);
      writeFileSync(file, r.stdout);
      auth = `auth:\n  htpasswd:\n    realm: cradle-test\n    path: ${file}\n`;
    }
    if (this.opts.token) auth = await this.startTokenServer(this.opts.token);
    const config = join(this.storage, 'config.yml');
    writeFileSync(
      config,
      `version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: ${this.storage}/data\n  delete:\n    enabled: true\nhttp:\n  addr: ${this.host}\n${auth}`,
    );
    this.process = spawnTracked('nsenter', ['-t', String(this.node.holderPid), '--net', '--mount', '--', 'docker-registry', 'serve', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process.stdout?.on('data', (d: Buffer) => (this.log += d.toString()));
    this.process.stderr?.on('data', (d: Buffer) => (this.log += d.toString()));
    await waitFor(`registry on ${this.host}`, () => (this.log.includes('listening on') ? true : undefined), 60_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${this.log}`);
    });
  }

  /** A token service with its own signing key, and the registry config that trusts it. */
  private async startTokenServer(t: NonNullable<RegistryOptions['token']>): Promise<string> {
    const key = join(this.storage, 'token.key');
    const cert = join(this.storage, 'token.crt');
    const ssl = await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=cradle-test-token',
    ]);
    if (ssl.code !== 0) throw new Error(`openssl: ${ssl.stderr}`);
    const script = join(packageRoot, 'dist', 'test', 'support', 'token-server.js');
    const args = [script, String(t.port), key, cert, 'cradle-test-issuer', t.user.name, t.user.password, t.refreshToken];
    this.tokenServer = spawnTracked('nsenter', ['-t', String(this.node.holderPid), '--net', '--mount', '--', process.execPath, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) => this.tokenServer?.stdout?.once('data', () => resolve()));
    return `auth:\n  token:\n    realm: http://127.0.0.1:${t.port}/token\n    service: cradle-test-registry\n    issuer: cradle-test-issuer\n    rootcertbundle: ${cert}\n`;
  }

  /** Requests the registry logged, e.g. to count blob downloads. */
  requests(): string[] {
    return this.log.split('\n').filter((l) => l.includes('http.request.uri='));
  }

  /** Pushes `oci:<layout>:<tag>` as `<repo>:<tag>`; `all` keeps every platform of an index. */
  async push(layout: string, tag: string, repo: string, options: { all?: boolean; format?: 'v2s2' } = {}): Promise<void> {
    const args = ['copy', '--insecure-policy', '--dest-tls-verify=false'];
    if (options.format) args.push('--format', options.format);
    else args.push('--preserve-digests');
    if (options.all) args.push('--all');
    const creds = this.opts.user ?? this.opts.token?.user;
    if (creds) args.push('--dest-creds', `${creds.name}:${creds.password}`);
    args.push(`oci:${layout}:${tag}`, `docker://${this.host}/${repo}:${tag}`);
    const r = await this.node.exec('skopeo', args, { timeoutMs: 120_000 });
    if (r.code !== 0) throw new Error(`skopeo ${args.join(' ')}: ${r.stderr}`);
  }

  /** Where the registry keeps a blob's bytes (to corrupt it on purpose). */
  blobPath(digest: string): string {
    const hex = digest.replace('sha256:', '');
    const path = join(this.storage, 'data', 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
    if (!existsSync(path)) throw new Error(`blob ${digest} is not in the registry`);
    return path;
  }

  async stop(): Promise<void> {
    this.tokenServer?.kill('SIGKILL');
    if (!this.process || this.process.exitCode !== null) return;
    this.process.kill('SIGTERM');
    await exited(this.process);
  }
}
