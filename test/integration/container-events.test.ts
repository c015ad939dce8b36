import { connect } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import type { ClientReadableStream, ServiceError } from '@grpc/grpc-js';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { ContainerEventType as E, type ContainerEventResponse, ContainerState } from '../../cri/generated/api.js';
import { BUSYBOX_IMAGE as IMAGE, busyboxSuite } from '../support/busybox-node.js';
import { podConfig } from '../support/pods.js';
import { waitFor } from '../support/wait.js';

/** Everything a stream brought, and how it ended. */
class Subscriber {
  readonly events: ContainerEventResponse[] = [];
  ended: ServiceError | 'ok' | undefined;

  constructor(readonly stream: ClientReadableStream<ContainerEventResponse>) {
    stream.on('data', (e: ContainerEventResponse) => this.events.push(e));
    stream.on('error', (err: ServiceError) => {
      this.ended = err;
    });
    stream.on('end', () => {
      this.ended ??= 'ok';
    });
  }

  /** [id, type] of each event, ids shortened to what the test named them. */
  seen(names: Record<string, string>): string[] {
    return this.events.map((e) => `${names[e.container_id] ?? e.container_id} ${E[e.container_event_type]}`);
  }
}

/**
 * GetContainerEvents over a bare HTTP/2 stream that is not read until
 * `readToEnd`: what a stuck kubelet looks like to the daemon.
 */
function rawSubscriber(socket: string) {
  const session = connect('http://localhost', { createConnection: () => netConnect(socket) });
  const req = session.request({
    ':method': 'POST',
    ':path': '/runtime.v1.RuntimeService/GetContainerEvents',
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  req.end(Buffer.alloc(5)); // one empty message: uncompressed, length 0
  req.pause();
  return {
    /** Reads everything: how many messages came, then the call's status. */
    readToEnd: () =>
      new Promise<{ messages: number; status: string; message: string }>((resolve, reject) => {
        let buffered = Buffer.alloc(0);
        let messages = 0;
        req.on('data', (chunk: Buffer) => {
          buffered = Buffer.concat([buffered, chunk]);
          while (buffered.length >= 5 && buffered.length >= 5 + buffered.readUInt32BE(1)) {
            buffered = buffered.subarray(5 + buffered.readUInt32BE(1));
            messages++;
          }
        });
        req.on('trailers', (t) => {
          resolve({ messages, status: String(t['grpc-status']), message: decodeURIComponent(String(t['grpc-message'] ?? '')) });
          session.close();
        });
        req.on('error', reject);
        req.resume();
      }),
  };
}

describe('container events (GetContainerEvents)', function () {
  this.timeout(180_000);
  const suite = busyboxSuite({ tables: '[containers]\nevents_buffer = 8\n' });
  const rt = () => suite.rt();
  let seenJoins = 0;
  /** CRI has no answer for a subscription: the daemon's log says when `n` more are live. */
  const joined = async (n: number) => {
    const count = () => suite.node.daemon.log().split('container events subscriber joined').length - 1;
    await waitFor(`${n} subscriptions to be live`, () => (count() >= seenJoins + n ? true : undefined), 30_000);
    seenJoins += n;
  };
  const subscribe = () => new Subscriber(rt().open('GetContainerEvents', {}));

  it("gives every subscriber a pod's whole life in order, each event with the pod's and its containers' statuses", async () => {
    const subscribers = Array.from({ length: 10 }, subscribe);
    await joined(10);
    const config = podConfig('events', { log_directory: join(suite.node.dir, 'logs') });
    const pod = (await rt().call('RunPodSandbox', { config })).pod_sandbox_id;
    const ctr = (
      await rt().call('CreateContainer', {
        pod_sandbox_id: pod,
        config: { metadata: { name: 'once' }, image: { image: IMAGE }, command: ['sh', '-c', 'exit 3'], log_path: 'once.log' },
      })
    ).container_id;
    await rt().call('StartContainer', { container_id: ctr });
    await waitFor(
      'the container to exit',
      async () => ((await rt().call('ContainerStatus', { container_id: ctr })).status?.state === ContainerState.CONTAINER_EXITED ? true : undefined),
      30_000,
    );
    await rt().call('RemoveContainer', { container_id: ctr });
    await rt().call('StopPodSandbox', { pod_sandbox_id: pod });
    await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });

    const expected = [
      'pod CONTAINER_CREATED_EVENT',
      'pod CONTAINER_STARTED_EVENT',
      'ctr CONTAINER_CREATED_EVENT',
      'ctr CONTAINER_STARTED_EVENT',
      'ctr CONTAINER_STOPPED_EVENT',
      'ctr CONTAINER_DELETED_EVENT',
      'pod CONTAINER_STOPPED_EVENT',
      'pod CONTAINER_DELETED_EVENT',
    ];
    const names = { [pod]: 'pod', [ctr]: 'ctr' };
    for (const [i, s] of subscribers.entries()) {
      await waitFor(`subscriber ${i} to see ${expected.length} events`, () => (s.events.length >= expected.length ? true : undefined), 30_000).catch(
        (err: unknown) => {
          throw new Error(
            `${String(err)}; it saw ${JSON.stringify(s.seen(names))}, its stream ${s.ended === undefined ? 'still open' : `ended: ${String(s.ended)}`}`,
          );
        },
      );
      expect(s.seen(names), `subscriber ${i}`).to.deep.equal(expected);
      s.stream.cancel();
    }
    const events = subscribers[0]?.events ?? [];
    for (const e of events) expect(e.pod_sandbox_status?.metadata?.uid, E[e.container_event_type]).to.equal(config.metadata?.uid);
    const states = events.slice(2, 6).map((e) => e.containers_statuses.map((c) => ContainerState[c.state]));
    expect(states).to.deep.equal([['CONTAINER_CREATED'], ['CONTAINER_RUNNING'], ['CONTAINER_EXITED'], []]);
    expect(events[4]?.containers_statuses[0]?.exit_code).to.equal(3);
    const times = events.map((e) => e.created_at);
    expect(times).to.deep.equal([...times].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  it('cuts off a subscriber that does not read with RESOURCE_EXHAUSTED, while the others and the daemon go on', async () => {
    // grpc-js clients read whatever comes; this one stops reading, so HTTP/2 flow control holds the daemon's writes.
    const stalled = rawSubscriber(suite.node.socket);
    const reader = subscribe();
    await joined(2);
    const pod = (await rt().call('RunPodSandbox', { config: podConfig('events-slow', { log_directory: join(suite.node.dir, 'logs') }) })).pod_sandbox_id;
    // Big annotations make big events: the stalled stream's windows fill after a few.
    const bulk = 'x'.repeat(16 * 1024);
    const created: string[] = [];
    for (let i = 0; i < 30; i++) {
      const { container_id } = await rt().call('CreateContainer', {
        pod_sandbox_id: pod,
        config: { metadata: { name: `c${i}` }, image: { image: IMAGE }, command: ['sleep', '60'], log_path: `c${i}.log`, annotations: { bulk } },
      });
      created.push(container_id);
    }
    expect((await rt().call('Version', {})).runtime_name).to.equal('cradle');
    await waitFor('the reader to see every create', () => (reader.events.length >= 32 ? true : undefined), 30_000);
    expect(reader.events.slice(2).map((e) => e.container_id)).to.deep.equal(created);
    expect(reader.ended).to.equal(undefined);
    await waitFor(
      'the daemon to cut the stalled subscriber off',
      () => (suite.node.daemon.log().includes('subscriber fell behind') ? true : undefined),
      30_000,
    );

    const end = await stalled.readToEnd();
    expect(end.status).to.equal(String(Code.RESOURCE_EXHAUSTED));
    expect(end.message).to.contain('fell more than 8 behind');
    expect(end.messages).to.be.below(32);

    reader.stream.cancel();
    await rt().call('StopPodSandbox', { pod_sandbox_id: pod });
    await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
  });
});
