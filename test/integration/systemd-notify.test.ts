import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { expect } from 'chai';
import { spawnTracked } from '../support/processes.js';
import { TestNode } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';

/** A notify socket as systemd's: every datagram received, in order. */
class NotifyListener {
  readonly messages: string[] = [];
  private readonly child: ChildProcess;

  constructor(readonly path: string) {
    const script = [
      'import socket, sys',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      's.bind(sys.argv[1])',
      'print("bound", flush=True)',
      'while True:',
      '    print(s.recv(65536).decode().replace("\\n", "|"), flush=True)',
    ].join('\n');
    this.child = spawnTracked('python3', ['-c', script, path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let buffered = '';
    this.child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      this.messages.push(...lines);
    });
  }

  bound(): Promise<unknown> {
    return waitFor('the notify socket to be bound', () => (this.messages.includes('bound') ? true : undefined), 30_000);
  }

  count(what: string): number {
    return this.messages.filter((m) => m.split('|').includes(what)).length;
  }

  close(): void {
    this.child.kill('SIGKILL');
  }
}

/** The daemon under a systemd-like supervisor: Type=notify readiness, STOPPING, and a watchdog tied to a real self-check. */
describe('systemd notify protocol', function () {
  this.timeout(120_000);
  let node: TestNode;
  let listener: NotifyListener;

  beforeEach(async () => {
    node = await TestNode.create();
    listener = new NotifyListener(join(node.dir, 'notify.sock'));
    await listener.bound();
  });
  afterEach(async () => {
    listener.close();
    await node.destroy();
  });

  it('says READY=1 only once every RPC is answered, pings the watchdog while healthy, and STOPPING=1 on SIGTERM', async () => {
    const daemon = node.spawnDaemon([], { NOTIFY_SOCKET: listener.path, WATCHDOG_USEC: '1000000' });
    await waitFor('READY=1', () => (listener.count('READY=1') > 0 ? true : undefined), 60_000);
    // Ready means ready: an RPC behind the readiness gate is answered at once.
    await node.client().runtime.call('ListPodSandbox', {}, { timeoutMs: 30_000 });
    expect(daemon.log()).to.contain('"ready"');
    expect(listener.messages.find((m) => m.includes('READY=1'))).to.contain(`MAINPID=${daemon.pid}`);
    await waitFor('watchdog pings', () => (listener.count('WATCHDOG=1') >= 3 ? true : undefined), 60_000);
    process.kill(daemon.pid, 'SIGTERM');
    expect((await daemon.exited).code).to.equal(0);
    expect(listener.count('STOPPING=1')).to.equal(1);
    expect(listener.messages.indexOf(listener.messages.find((m) => m.includes('STOPPING=1')) as string)).to.be.greaterThan(
      listener.messages.findIndex((m) => m.includes('READY=1')),
    );
  });

  it('stops pinging when its event loop is blocked, so systemd restarts it', async () => {
    const daemon = node.spawnDaemon([], { NOTIFY_SOCKET: listener.path, WATCHDOG_USEC: '1000000', CRADLE_TEST_BLOCK_EVENT_LOOP_ON: 'SIGUSR2' });
    await waitFor('watchdog pings', () => (listener.count('WATCHDOG=1') >= 2 ? true : undefined), 60_000);
    process.kill(daemon.pid, 'SIGUSR2');
    // Once blocked, no ping can come: the count settles and stays, for many periods.
    let last = -1;
    let still = 0;
    await waitFor(
      'the pings to stop',
      () => {
        const now = listener.count('WATCHDOG=1');
        still = now === last ? still + 1 : 0;
        last = now;
        return still >= 10 ? true : undefined;
      },
      60_000,
      500,
    );
    process.kill(daemon.pid, 'SIGKILL');
    await daemon.exited;
  });

  it('without NOTIFY_SOCKET it notifies nothing and runs as before', async () => {
    await node.startDaemon();
    expect(node.daemon.log()).to.not.contain('watchdog');
    expect(listener.messages).to.deep.equal(['bound']);
  });
});
