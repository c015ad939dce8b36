import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { writeOciLayout } from './oci-image.js';
import { exited, run, spawnTracked } from './processes.js';
import type { TestNode } from './test-node.js';
import { waitFor } from './wait.js';

export const PAUSE_IMAGE = 'cradle.test/pause:bench';

/**
 * containerd (Debian's 1.6 with its CRI plugin) in a test node of its own,
 * as the side-by-side peer in benchmarks. Its pause image is built here from
 * catatonit, since no public registry is reachable.
 */
export class ContainerdPeer {
  readonly socket: string;
  private process: ChildProcess | undefined;

  constructor(
    private readonly node: TestNode,
    /** Registries reached over plain http (host:port), for pull benchmarks. */
    private readonly insecureRegistries: readonly string[] = [],
  ) {
    this.socket = join(node.dir, 'containerd', 'containerd.sock');
  }

  static available(): boolean {
    return existsSync('/usr/bin/containerd') && existsSync('/usr/bin/ctr');
  }

  async start(): Promise<void> {
    const d = join(this.node.dir, 'containerd');
    mkdirSync(d, { recursive: true });
    const config = join(d, 'config.toml');
    writeFileSync(
      config,
      `version = 2
root = "${d}/root"
state = "${d}/state"
[grpc]
  address = "${this.socket}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${this.node.cniConfDir}"
${this.insecureRegistries.map((r) => `  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."${r}"]\n    endpoint = ["http://${r}"]\n`).join('')}  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
`,
    );
    this.process = spawnTracked('nsenter', ['-t', String(this.node.holderPid), '--net', '--mount', '--', 'containerd', '--config', config], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    this.process.stderr?.on('data', (b: Buffer) => (log += b.toString()));
    await waitFor('containerd to serve', () => (existsSync(this.socket) ? true : undefined), 15_000).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${log.slice(-3000)}`);
    });
    await this.importPauseImage(d);
  }

  private async importPauseImage(d: string): Promise<void> {
    const layout = join(d, 'pause-layout');
    const pause = join(d, 'pause-bin');
    copyFileSync('/usr/bin/catatonit', pause);
    const { readFileSync } = await import('node:fs');
    writeOciLayout(layout, PAUSE_IMAGE, [{ entries: [{ name: 'pause', content: readFileSync(pause), mode: 0o755 }] }], { Entrypoint: ['/pause', '-P'] });
    const tar = join(d, 'pause.tar');
    const t = await run('tar', ['-C', layout, '-cf', tar, '.']);
    if (t.code !== 0) throw new Error(`tar: ${t.stderr}`);
    const r = await this.node.exec('ctr', ['--address', this.socket, '-n', 'k8s.io', 'images', 'import', tar]);
    if (r.code !== 0) throw new Error(`ctr images import: ${r.stderr}`);
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Imports an OCI layout tarball of images into containerd's k8s.io namespace. */
  async importLayout(layoutDir: string): Promise<void> {
    const tar = `${layoutDir}.tar`;
    const t = await run('tar', ['-C', layoutDir, '-cf', tar, '.']);
    if (t.code !== 0) throw new Error(`tar: ${t.stderr}`);
    const r = await this.node.exec('ctr', ['--address', this.socket, '-n', 'k8s.io', 'images', 'import', tar]);
    if (r.code !== 0) throw new Error(`ctr images import: ${r.stderr}`);
  }

  async stop(): Promise<void> {
    if (!this.process || this.process.exitCode !== null) return;
    this.process.kill('SIGTERM');
    await exited(this.process);
  }
}
