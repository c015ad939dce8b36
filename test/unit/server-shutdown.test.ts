import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { silentLogger } from '../../core/logger.js';
import { CriClient } from '../../cri/client.js';
import { CriServer } from '../../cri/server.js';

describe('CRI server shutdown', () => {
  let dir: string;
  let socket: string;
  let server: CriServer;
  let client: CriClient;
  let release: () => void;
  let sawAbort: boolean;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cradle-shutdown-'));
    socket = join(dir, 'cri.sock');
    sawAbort = false;
    const gate = new Promise<void>((r) => (release = r));
    server = new CriServer(socket, silentLogger, {
      runtime: {
        Version: async () => ({ runtime_name: 'test' }),
        // Finishes when the test says so: an in-flight request during shutdown.
        Status: async (_req, ctx) => {
          ctx.signal.addEventListener('abort', () => (sawAbort = true));
          await gate;
          return { info: { done: 'yes' } };
        },
      },
      image: {},
    });
    await server.listen();
    server.gate.open();
    client = new CriClient(socket);
    await client.runtime.call('Version', {});
  });

  afterEach(async () => {
    release();
    client.close();
    await server.shutdown(100);
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets an in-flight request finish, then removes the socket', async () => {
    const inFlight = client.runtime.call('Status', {});
    await new Promise((r) => setTimeout(r, 50));
    const stopped = server.shutdown(5000);
    setTimeout(() => release(), 100);
    expect((await inFlight).info).to.deep.equal({ done: 'yes' });
    await stopped;
    expect(existsSync(socket)).to.equal(false);
  });

  it('cancels what is still running when the grace period ends', async () => {
    const inFlight = client.runtime.call('Status', {}).then(
      () => undefined,
      (err: { code: number }) => err.code,
    );
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await server.shutdown(200);
    expect(Date.now() - started).to.be.within(150, 2000);
    expect(await inFlight).to.be.oneOf([Code.CANCELLED, Code.UNAVAILABLE]);
    expect(sawAbort, 'the handler is told through its AbortSignal').to.equal(true);
    expect(existsSync(socket)).to.equal(false);
  });
});
