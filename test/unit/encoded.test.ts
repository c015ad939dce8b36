import { expect } from 'chai';
import { codecFor } from '../../cri/codec.js';
import { EncodingCache, encodedRepeated } from '../../cri/encoded.js';
import type { Container, ListContainersResponse } from '../../cri/generated/api.js';
import { ContainerState } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';

describe('pre-encoded list responses', () => {
  const items: Init<Container>[] = Array.from({ length: 300 }, (_, i) => ({
    id: `c${i}`.padEnd(64, '0'),
    pod_sandbox_id: 'p'.repeat(64),
    metadata: { name: `name-${i}`, attempt: i },
    image: { image: 'docker.io/library/busybox:latest' },
    image_ref: `sha256:${'a'.repeat(64)}`,
    state: ContainerState.CONTAINER_RUNNING,
    created_at: 1763928000123456789n + BigInt(i),
    labels: { app: 'x', i: String(i) },
    annotations: {},
  }));

  it('decodes exactly like the same response encoded whole, lengths above 127 bytes included', () => {
    const codec = codecFor<ListContainersResponse>('ListContainersResponse');
    const whole = codec.encode({ containers: items });
    const assembled = codec.encode(
      encodedRepeated(
        1,
        items.map((i) => codecFor('Container').encode(i)),
      ),
    );
    expect(assembled.equals(whole)).to.equal(true);
    expect(codec.decode(assembled).containers[299]?.created_at).to.equal(1763928000123456789n + 299n);
  });

  it('encodes an object once until it is replaced', () => {
    let calls = 0;
    const cache = new EncodingCache<{ n: number }>((o) => {
      calls++;
      return Buffer.from([o.n]);
    });
    const a = { n: 1 };
    cache.get(a);
    cache.get(a);
    cache.get({ n: 1 });
    expect(calls).to.equal(2);
  });
});
