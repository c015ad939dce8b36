import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { InvalidArgumentError } from '../../core/errors.js';
import { parseChallenge } from '../../image/auth-challenge.js';
import { imageUser } from '../../image/image-record.js';
import { chainIds } from '../../image/chain-ids.js';
import { MEDIA, parseManifest, selectPlatform, type Descriptor } from '../../image/manifest.js';

const d = (platform: Descriptor['platform'], digest = `sha256:${'a'.repeat(64)}`): Descriptor => ({ mediaType: MEDIA.ociManifest, digest, size: 10, platform });

describe('manifests and platforms', () => {
  it('parses indexes and manifests, OCI and Docker', () => {
    const index = parseManifest(
      'x',
      MEDIA.dockerList,
      Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [d({ os: 'linux', architecture: 'amd64' })] })),
    );
    expect(index.kind).to.equal('index');
    const manifest = parseManifest('x', MEDIA.dockerManifest, Buffer.from(JSON.stringify({ schemaVersion: 2, config: d(undefined), layers: [d(undefined)] })));
    expect(manifest.kind).to.equal('manifest');
  });

  it('refuses schema 1 with a reason', () => {
    expect(() => parseManifest('old/image', MEDIA.dockerSchema1Signed, Buffer.from(JSON.stringify({ schemaVersion: 1, fsLayers: [] })))).to.throw(
      InvalidArgumentError,
      'image old/image has a Docker schema 1 manifest, which is not supported',
    );
  });

  it('selects the host platform, matching variants when both name one', () => {
    const list = [
      d({ os: 'linux', architecture: 'arm', variant: 'v6' }, `sha256:${'1'.repeat(64)}`),
      d({ os: 'linux', architecture: 'arm', variant: 'v7' }, `sha256:${'2'.repeat(64)}`),
      d({ os: 'linux', architecture: 'amd64' }, `sha256:${'3'.repeat(64)}`),
    ];
    expect(selectPlatform('x', list, { os: 'linux', architecture: 'arm', variant: 'v7' }).digest).to.equal(`sha256:${'2'.repeat(64)}`);
    expect(selectPlatform('x', list, { os: 'linux', architecture: 'amd64', variant: undefined }).digest).to.equal(`sha256:${'3'.repeat(64)}`);
    expect(() => selectPlatform('x', list, { os: 'linux', architecture: 's390x', variant: undefined })).to.throw(
      InvalidArgumentError,
      'no manifest for linux/s390x (it has: linux/arm/v6, linux/arm/v7, linux/amd64)',
    );
  });

  it('computes chain ids', () => {
    const a = `sha256:${'a'.repeat(64)}`;
    const b = `sha256:${'b'.repeat(64)}`;
    const [c0, c1] = chainIds([a, b]);
    expect(c0).to.equal(a);
    expect(c1).to.equal(`sha256:${createHash('sha256').update(`${a} ${b}`).digest('hex')}`);
  });

  it('reads the image user as a uid or a name', () => {
    expect(imageUser('1000')).to.deep.equal({ uid: 1000n });
    expect(imageUser('1000:1000')).to.deep.equal({ uid: 1000n });
    expect(imageUser('nobody:nogroup')).to.deep.equal({ username: 'nobody' });
    expect(imageUser('')).to.equal(undefined);
  });

  it('parses WWW-Authenticate challenges', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')).to.deep.equal({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
    });
    expect(parseChallenge('Basic realm="Registry Realm"')).to.deep.equal({ scheme: 'basic', params: { realm: 'Registry Realm' } });
    expect(parseChallenge('')).to.equal(undefined);
  });
});
