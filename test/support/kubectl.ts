import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { packageRoot } from '../../core/package-info.js';
import { exited, spawnTracked, type RunResult } from './processes.js';
import type { TestNode } from './test-node.js';
import { waitFor } from './wait.js';

/** Debian's kubectl 1.20 (kubernetes-client), unpacked by scripts/setup.sh: a real SPDY client. */
export const KUBECTL = '/var/cache/cradle-test/kubernetes-client/usr/bin/kubectl';

/**
 * kubectl against a node: a shim (test/support/kube-shim.ts) plays the API
 * server and kubelet's streaming proxy inside the node's network namespace,
 * where kubectl runs too.
 */
export class Kubectl {
  private shim: ChildProcess | undefined;
  private readonly pods: Record<string, { sandboxId: string; containers: Record<string, string>; tty: string[] }> = {};
  private readonly podsFile: string;

  constructor(
    private readonly node: TestNode,
    readonly port = 16443,
    /** The runtime kubelet would talk to: the node's Cradle unless told otherwise (benchmarks use containerd). */
    private readonly criSocket = node.socket,
  ) {
    this.podsFile = join(node.dir, 'shim-pods.json');
  }

  async start(): Promise<void> {
    writeFileSync(this.podsFile, '{}');
    const shim = spawnTracked(
      'nsenter',
      [
        '-t',
        String(this.node.holderPid),
        '--net',
        '--mount',
        '--',
        process.execPath,
        join(packageRoot, 'dist', 'test', 'support', 'kube-shim.js'),
        this.criSocket,
        String(this.port),
        this.podsFile,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.shim = shim;
    let out = '';
    shim.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    shim.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the kube shim to listen', () => (out.includes('listening') ? true : undefined), 10_000);
  }

  /** Makes `namespace/name` known, with its containers by name (and those made with a terminal). */
  addPod(namespace: string, name: string, sandboxId: string, containers: Record<string, string>, tty: string[] = []): void {
    this.pods[`${namespace}/${name}`] = { sandboxId, containers, tty };
    writeFileSync(this.podsFile, JSON.stringify(this.pods));
  }

  private args(args: readonly string[]): string[] {
    return ['--server', `http://127.0.0.1:${this.port}`, '--cache-dir', join(this.node.dir, 'kube-cache'), '--request-timeout', '60s', ...args];
  }

  run(args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
    return this.node.exec(KUBECTL, this.args(args), options);
  }

  /** A long-running kubectl (port-forward, a session to interrupt), in the node's namespaces. */
  spawn(args: readonly string[]): ChildProcess {
    return this.node.spawn(KUBECTL, this.args(args));
  }

  async stop(): Promise<void> {
    if (this.shim && this.shim.exitCode === null) {
      this.shim.kill('SIGTERM');
      await exited(this.shim);
    }
  }
}
