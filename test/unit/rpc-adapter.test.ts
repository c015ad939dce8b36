import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '../../core/errors.js';
import { silentLogger } from '../../core/logger.js';
import { CriClient } from '../../cri/client.js';
import { CriServer } from '../../cri/server.js';
import { PodSandboxState } from '../../cri/generated/api.js';
import { grpcFailure } from '../support/grpc.js';

describe('RPC adapter (in-process server on a unix socket)', () => {
  let dir: string;
  let server: CriServer;
  let client: CriClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cradle-adapter-'));
    server = new CriServer(join(dir, 'cri.sock'), silentLogger, {
      runtime: {
        Version: async () => ({ runtime_name: 'test' }),
        PodSandboxStatus: async (req) => {
          if (req.pod_sandbox_id === 'missing') throw new NotFoundError(`pod sandbox "missing" not found`);
          if (req.pod_sandbox_id === '') throw new InvalidArgumentError('pod sandbox id is empty');
          return { status: { id: req.pod_sandbox_id, created_at: 1763928000123456789n, state: PodSandboxState.SANDBOX_NOTREADY } };
        },
        RunPodSandbox: async () => {
          throw new AlreadyExistsError('name "a_b_c_0" is reserved for pod sandbox "f00d"');
        },
        ContainerStatus: async () => {
          throw new Error('disk on fire');
        },
        ContainerStats: async () => {
          throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
        },
        StreamPodSandboxes: async function* () {
          for (let i = 0; i < 3; i++) yield { pod_sandboxes: [{ id: `pod-${i}` }] };
        },
      },
      image: {},
    });
    await server.listen();
    client = new CriClient(join(dir, 'cri.sock'));
  });

  after(async () => {
    client.close();
    await server.shutdown(1000);
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the socket with mode 0660', () => {
    expect(statSync(join(dir, 'cri.sock')).mode & 0o777).to.equal(0o660);
  });

  it('answers Version but nothing else until start-up has finished', async () => {
    expect((await client.runtime.call('Version', {})).runtime_name).to.equal('test');
    const err = await grpcFailure(client.runtime.call('PodSandboxStatus', { pod_sandbox_id: 'p1' }));
    expect(err.code).to.equal(Code.UNAVAILABLE);
    expect(err.details).to.contain('recovering state');
    server.gate.open();
    const res = await client.runtime.call('PodSandboxStatus', { pod_sandbox_id: 'p1' });
    expect(res.status?.id).to.equal('p1');
    expect(res.status?.created_at).to.equal(1763928000123456789n);
  });

  it('maps domain errors to their gRPC codes with the message', async () => {
    const notFound = await grpcFailure(client.runtime.call('PodSandboxStatus', { pod_sandbox_id: 'missing' }));
    expect(notFound).to.include({ code: Code.NOT_FOUND, details: 'pod sandbox "missing" not found' });
    const invalid = await grpcFailure(client.runtime.call('PodSandboxStatus', { pod_sandbox_id: '' }));
    expect(invalid.code).to.equal(Code.INVALID_ARGUMENT);
    const exists = await grpcFailure(client.runtime.call('RunPodSandbox', {}));
    expect(exists.code).to.equal(Code.ALREADY_EXISTS);
    expect(exists.details).to.contain('f00d');
  });

  it('turns an unexpected error into INTERNAL', async () => {
    const err = await grpcFailure(client.runtime.call('ContainerStatus', { container_id: 'c' }));
    expect(err).to.include({ code: Code.INTERNAL, details: 'disk on fire' });
  });

  it('answers RESOURCE_EXHAUSTED, saying what ran out, when the node is out of disk', async () => {
    const err = await grpcFailure(client.runtime.call('ContainerStats', { container_id: 'c' }));
    expect(err).to.include({ code: Code.RESOURCE_EXHAUSTED, details: 'the node is out of disk space or inodes: ENOSPC: no space left on device, write' });
  });

  it('answers UNIMPLEMENTED naming the RPC for every unary and streaming RPC without a handler', async () => {
    const unary = await grpcFailure(client.image.call('PullImage', { image: { image: 'busybox' } }));
    expect(unary.code).to.equal(Code.UNIMPLEMENTED);
    expect(unary.details).to.match(/^PullImage is not implemented/);
    const stream = await grpcFailure(client.runtime.collect('StreamContainers', {}));
    expect(stream.code).to.equal(Code.UNIMPLEMENTED);
    expect(stream.details).to.match(/^StreamContainers is not implemented/);
  });

  it('streams every item of a server-streaming RPC, then ends', async () => {
    const items = await client.runtime.collect('StreamPodSandboxes', {});
    expect(items.map((i) => i.pod_sandboxes[0]?.id)).to.deep.equal(['pod-0', 'pod-1', 'pod-2']);
  });

  it('refuses a second server on a socket that answers', async () => {
    const second = new CriServer(join(dir, 'cri.sock'), silentLogger, { runtime: {}, image: {} });
    let message = '';
    await second.listen().catch((err: Error) => (message = err.message));
    expect(message).to.equal(`another daemon is already serving on ${join(dir, 'cri.sock')}`);
  });
});
