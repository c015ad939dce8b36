import { expect } from 'chai';
import { InvalidArgumentError } from '../../core/errors.js';
import { formatReference, parseReference } from '../../image/reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('image references', () => {
  it('normalizes short names to docker.io/library with latest', () => {
    expect(parseReference('busybox')).to.deep.equal({ registry: 'docker.io', repository: 'library/busybox', tag: 'latest', digest: undefined });
    expect(formatReference(parseReference('busybox'))).to.equal('docker.io/library/busybox:latest');
    expect(formatReference(parseReference('user/app:1.2'))).to.equal('docker.io/user/app:1.2');
    expect(formatReference(parseReference('index.docker.io/library/nginx'))).to.equal('docker.io/library/nginx:latest');
  });

  it('recognizes registries by a dot, a port or localhost', () => {
    expect(parseReference('127.0.0.1:5000/test/busybox:v1')).to.deep.include({ registry: '127.0.0.1:5000', repository: 'test/busybox', tag: 'v1' });
    expect(parseReference('localhost/app')).to.deep.include({ registry: 'localhost', repository: 'app', tag: 'latest' });
    expect(parseReference('registry.k8s.io/pause:3.9')).to.deep.include({ registry: 'registry.k8s.io', repository: 'pause', tag: '3.9' });
    expect(parseReference('[::1]:5000/a')).to.deep.include({ registry: '[::1]:5000', repository: 'a' });
  });

  it('keeps digests, with or without a tag', () => {
    expect(parseReference(`busybox@${D}`)).to.deep.equal({ registry: 'docker.io', repository: 'library/busybox', tag: undefined, digest: D });
    expect(parseReference(`quay.io/a/b:1@${D}`)).to.deep.include({ tag: '1', digest: D });
    expect(formatReference(parseReference(`quay.io/a/b:1@${D}`))).to.equal(`quay.io/a/b:1@${D}`);
  });

  it('refuses invalid references with the reason', () => {
    const cases: Array<[string, string]> = [
      ['', 'it is empty'],
      ['Busybox', 'must be lowercase'],
      ['busybox:-bad', 'is not a valid tag'],
      ['busybox@sha256:abc', 'is not a digest'],
      [`busybox@sha256:${'A'.repeat(64)}`, '64 lowercase hex'],
      ['a//b', 'is not a valid repository path component'],
      ['reg.io/', 'is not a valid repository path component'],
      [':tag', 'has no repository name'],
    ];
    for (const [ref, why] of cases) expect(() => parseReference(ref), ref).to.throw(InvalidArgumentError, why);
  });
});
