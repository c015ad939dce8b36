import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { packageRoot } from '../../core/package-info.js';
import { grpcFailure } from '../support/grpc.js';
import { busyboxEntries, OciLayout, type Descriptor } from '../support/oci-image.js';
import { TestRegistry } from '../support/registry.js';
import { TestNode, testConfigToml } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';
import type { TarEntry } from '../support/tar-writer.js';

const PROBE = join(packageRoot, 'dist', 'test', 'support', 'rootfs-probe.js');

/**
 * A registry front (argv: front port, storage port, registry port, the
 * storage's own credentials): proxies everything to the registry except
 * blob downloads, which it redirects (307) to the storage port; the storage
 * fetches the blob with its own credentials and says whether the client
 * sent any.
 */
const REDIRECTOR = `
const http = require('node:http');
const [front, storage, registry, basic] = process.argv.slice(1);
const forward = (req, res, headers) => {
  const up = http.request({ host: '127.0.0.1', port: registry, path: req.url, method: req.method, headers }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  req.pipe(up);
};
http.createServer((req, res) => {
  if (req.method === 'GET' && /\\/blobs\\/sha256:/.test(req.url)) {
    res.writeHead(307, { location: 'http://127.0.0.1:' + storage + req.url });
    return res.end();
  }
  forward(req, res, { ...req.headers, host: '127.0.0.1:' + registry });
}).listen(Number(front), '127.0.0.1', () => {
  http.createServer((req, res) => {
    process.stdout.write('storage ' + req.url + ' authorization: ' + (req.headers.authorization ? 'sent' : 'none') + '\\n');
    forward(req, res, { host: '127.0.0.1:' + registry, authorization: 'Basic ' + basic });
  }).listen(Number(storage), '127.0.0.1', () => process.stdout.write('listening\\n'));
});
`;

describe('images', function () {
  this.timeout(120_000);
  let node: TestNode;
  let registry: TestRegistry;
  let secure: TestRegistry;
  let tokenRegistry: TestRegistry;
  const tokenUser = { name: 'bob', password: 'hunter2' };
  let layout: OciLayout;
  const built: Record<string, Descriptor & { configDigest?: string }> = {};

  const pull = (image: string, auth?: object) => node.client().image.call('PullImage', { image: { image }, ...(auth ? { auth } : {}) }, { timeoutMs: 60_000 });
  const status = (image: string, verbose = false) => node.client().image.call('ImageStatus', { image: { image }, verbose });
  const remove = (image: string) => node.client().image.call('RemoveImage', { image: { image } });
  const imagesDir = () => join(node.dir, 'root', 'images');
  const layerDirs = () => readdirSync(join(imagesDir(), 'layers'));

  async function probe(imageId: string, paths: string[]): Promise<Record<string, unknown>> {
    const r = await node.exec(process.execPath, [PROBE, join(node.dir, 'root'), imageId, join(node.dir, `probe-${Date.now()}`), ...paths]);
    if (r.code !== 0) throw new Error(`rootfs probe: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  before(async () => {
    node = await TestNode.create();
    writeFileSync(
      node.configPath,
      testConfigToml(node.dir) +
        `
[image]
insecure_registries = ["127.0.0.1:5000", "127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5004"]
credentials_file = "${node.dir}/auth.json"
[image.mirrors]
"origin.invalid" = ["http://127.0.0.1:5000"]
`,
    );
    registry = new TestRegistry(node);
    secure = new TestRegistry(node, { port: 5001, user: { name: 'alice', password: 's3cret' } });
    tokenRegistry = new TestRegistry(node, { port: 5002, token: { port: 5003, user: tokenUser, refreshToken: 'refresh-me' } });
    await Promise.all([registry.start(), secure.start(), tokenRegistry.start()]);

    layout = new OciLayout(join(node.dir, 'layout'));
    const base: TarEntry[] = [
      ...busyboxEntries(),
      { name: 'etc/motd', content: 'welcome\n' },
      { name: 'var/cache/', type: 'dir' },
      { name: 'var/cache/old', content: 'stale' },
    ];
    built.base = layout.image([{ entries: base }], { Entrypoint: ['/bin/sh'], Env: ['PATH=/bin'], User: '1000', Labels: { purpose: 'test' } });
    built.whiteout = layout.image(
      [
        { entries: base },
        {
          entries: [
            { name: 'etc/.wh.motd', content: '' },
            { name: 'var/cache/', type: 'dir' },
            { name: 'var/cache/.wh..wh..opq', content: '' },
            { name: 'var/cache/new', content: 'fresh' },
          ],
        },
      ],
      { Cmd: ['sh'] },
    );
    built.mixed = layout.image(
      [
        { entries: [{ name: 'gz', content: 'gzip layer' }], compression: 'gzip' },
        { entries: [{ name: 'zst', content: 'zstd layer' }], compression: 'zstd' },
        { entries: [{ name: 'raw', content: 'plain layer' }], compression: 'none' },
      ],
      {},
    );
    const amd = layout.image([{ entries: [{ name: 'arch', content: 'amd64' }] }], {}, { os: 'linux', architecture: 'amd64' });
    const arm = layout.image([{ entries: [{ name: 'arch', content: 'arm64' }] }], {}, { os: 'linux', architecture: 'arm64', variant: 'v8' });
    built.amd = amd;
    built.multi = layout.index([amd, arm]);
    built.escape = layout.image(
      [
        {
          entries: [
            { name: 'ok', content: 'fine' },
            { name: '../escape', content: 'evil' },
          ],
        },
      ],
      {},
    );
    built.corrupt = layout.image([{ entries: [{ name: 'data', content: 'x'.repeat(5000) }] }], {});
    built.crash = layout.image(
      Array.from({ length: 24 }, (_, i) => ({ entries: [{ name: `blob-${i}`, content: randomBytes(400_000) }], compression: 'none' as const })),
      {},
    );
    built.many = layout.image(
      Array.from({ length: 60 }, (_, i) => ({ entries: [{ name: `layer-${String(i).padStart(2, '0')}`, content: `layer ${i}` }] })),
      {},
    );
    for (const [tag, desc] of Object.entries(built)) layout.tag(tag, desc);
    await registry.push(layout.dir, 'base', 'test/busybox');
    await registry.push(layout.dir, 'whiteout', 'test/whiteout');
    await registry.push(layout.dir, 'mixed', 'test/mixed');
    await registry.push(layout.dir, 'multi', 'test/multi', { all: true });
    await registry.push(layout.dir, 'escape', 'test/escape');
    await registry.push(layout.dir, 'corrupt', 'test/corrupt');
    await registry.push(layout.dir, 'many', 'test/many');
    await registry.push(layout.dir, 'crash', 'test/crash');
    await registry.push(layout.dir, 'base', 'test/docker', { format: 'v2s2' });
    await registry.push(layout.dir, 'multi', 'test/dockerlist', { all: true, format: 'v2s2' });
    await secure.push(layout.dir, 'base', 'private/busybox');
    await tokenRegistry.push(layout.dir, 'base', 'tokens/busybox');
    await node.startDaemon();
  });

  after(async () => {
    await registry?.stop();
    await secure?.stop();
    await tokenRegistry?.stop();
    await node?.destroy();
  });

  it('pulls by tag and reports the config digest as the image ref, id and in status', async () => {
    const { image_ref } = await pull('127.0.0.1:5000/test/busybox:base');
    expect(image_ref).to.equal(built.base?.configDigest);
    const s = await status('127.0.0.1:5000/test/busybox:base');
    expect(s.image?.id).to.equal(image_ref);
    expect(s.image?.repo_tags).to.deep.equal(['127.0.0.1:5000/test/busybox:base']);
    expect(s.image?.repo_digests).to.deep.equal([`127.0.0.1:5000/test/busybox@${built.base?.digest}`]);
    expect(s.image?.uid?.value).to.equal(1000n);
    expect(Number(s.image?.size)).to.be.greaterThan(900_000);
    expect((await status(image_ref)).image?.id).to.equal(image_ref);
    expect((await status(image_ref.slice(7, 19))).image?.id).to.equal(image_ref);
    expect((await status(`127.0.0.1:5000/test/busybox@${built.base?.digest}`)).image?.id).to.equal(image_ref);
    const verbose = JSON.parse((await status(image_ref, true)).info.info ?? '{}') as { imageSpec: { config: { entrypoint: string[]; labels: object } } };
    expect(verbose.imageSpec.config.entrypoint).to.deep.equal(['/bin/sh']);
    expect(verbose.imageSpec.config.labels).to.deep.equal({ purpose: 'test' });
    const list = await node.client().image.call('ListImages', {});
    expect(list.images.map((i) => i.id)).to.include(image_ref);
    const filtered = await node.client().image.call('ListImages', { filter: { image: { image: '127.0.0.1:5000/test/busybox:base' } } });
    expect(filtered.images.map((i) => i.id)).to.deep.equal([image_ref]);
  });

  it('applies whiteouts and opaque directories in the mounted root filesystem', async () => {
    const { image_ref } = await pull('127.0.0.1:5000/test/whiteout:whiteout');
    const seen = await probe(image_ref, ['etc/motd', 'etc/passwd', 'var/cache', 'bin/sh']);
    expect(seen['etc/motd']).to.equal(null);
    expect(seen['etc/passwd']).to.match(/^root:x:0:0/);
    expect(seen['var/cache']).to.deep.equal(['new']);
    expect(seen['bin/sh']).to.equal('symlink');
  });

  it('reads gzip, zstd and uncompressed layers', async () => {
    const { image_ref } = await pull('127.0.0.1:5000/test/mixed:mixed');
    expect(await probe(image_ref, ['gz', 'zst', 'raw'])).to.deep.equal({ gz: 'gzip layer', zst: 'zstd layer', raw: 'plain layer' });
  });

  it('picks the host platform from a multi-arch index, and names the image by the index digest', async () => {
    const { image_ref } = await pull('127.0.0.1:5000/test/multi:multi');
    expect(image_ref).to.equal(built.amd?.configDigest);
    expect(await probe(image_ref, ['arch'])).to.deep.equal({ arch: 'amd64' });
    expect((await status(image_ref)).image?.repo_digests).to.deep.equal([`127.0.0.1:5000/test/multi@${built.multi?.digest}`]);
  });

  it('needs credentials for a registry behind htpasswd, and takes them from AuthConfig', async () => {
    const denied = await grpcFailure(pull('127.0.0.1:5001/private/busybox:base'));
    expect(denied.code).to.equal(Code.UNAUTHENTICATED);
    expect(denied.details).to.contain('authentication required (401) and no credentials were given');
    const wrong = await grpcFailure(pull('127.0.0.1:5001/private/busybox:base', { username: 'alice', password: 'nope' }));
    expect(wrong.code).to.equal(Code.UNAUTHENTICATED);
    expect(wrong.details).to.contain('credentials were refused');
    const { image_ref } = await pull('127.0.0.1:5001/private/busybox:base', { username: 'alice', password: 's3cret' });
    expect(image_ref).to.equal(built.base?.configDigest);
    await remove('127.0.0.1:5001/private/busybox:base');
    const viaAuth = await pull('127.0.0.1:5001/private/busybox:base', { auth: Buffer.from('alice:s3cret').toString('base64') });
    expect(viaAuth.image_ref).to.equal(built.base?.configDigest);
  });

  it('follows a registry that redirects blobs to other storage, without sending its credentials there', async () => {
    const redirected = layout.image([{ entries: [{ name: 'data/blob.bin', content: randomBytes(300_000) }] }], { Cmd: ['true'] });
    layout.tag('redirected', redirected);
    await secure.push(layout.dir, 'redirected', 'private/redirected');
    // 5004 fronts the registry on 5001 and sends blob downloads to 5005, another origin, as registries send them to S3.
    const front = node.spawn(process.execPath, ['-e', REDIRECTOR, '5004', '5005', '5001', Buffer.from('alice:s3cret').toString('base64')]);
    let seen = '';
    front.stdout?.on('data', (d: Buffer) => (seen += d.toString()));
    try {
      await waitFor('the redirector to listen', () => (seen.includes('listening') ? true : undefined), 30_000);
      const { image_ref } = await pull('127.0.0.1:5004/private/redirected:redirected', { username: 'alice', password: 's3cret' });
      expect(image_ref).to.equal(redirected.configDigest);
      const storage = seen.split('\n').filter((l) => l.startsWith('storage '));
      expect(storage.length, seen).to.be.at.least(1);
      expect(
        storage.every((l) => l.endsWith(' authorization: none')),
        seen,
      ).to.equal(true);
      await remove('127.0.0.1:5004/private/redirected:redirected');
    } finally {
      front.kill('SIGKILL');
    }
  });

  it("gets Bearer tokens from the registry's token service with a password, an identity token or a registry token", async () => {
    const image = '127.0.0.1:5002/tokens/busybox:base';
    const anonymous = await grpcFailure(pull(image));
    expect(anonymous.code).to.equal(Code.UNAUTHENTICATED);
    expect((await pull(image, { username: tokenUser.name, password: tokenUser.password })).image_ref).to.equal(built.base?.configDigest);
    await remove(image);
    expect((await pull(image, { identity_token: 'refresh-me' })).image_ref).to.equal(built.base?.configDigest);
    await remove(image);
    const fetchToken = `fetch('http://127.0.0.1:5003/token?service=cradle-test-registry&scope=repository:tokens/busybox:pull', { headers: { authorization: 'Basic ${Buffer.from(`${tokenUser.name}:${tokenUser.password}`).toString('base64')}' } }).then((r) => r.json()).then((j) => console.log(j.token))`;
    const registryToken = (await node.exec(process.execPath, ['-e', fetchToken])).stdout.trim();
    expect((await pull(image, { registry_token: registryToken })).image_ref).to.equal(built.base?.configDigest);
    const badRefresh = await grpcFailure(pull(image, { identity_token: 'wrong' }));
    expect(badRefresh.code).to.equal(Code.UNAUTHENTICATED);
  });

  it('uses the credentials file for registries a pull carries no credentials for', async () => {
    writeFileSync(join(node.dir, 'auth.json'), JSON.stringify({ auths: { '127.0.0.1:5001': { auth: Buffer.from('alice:s3cret').toString('base64') } } }));
    try {
      expect((await pull('127.0.0.1:5001/private/busybox:base')).image_ref).to.equal(built.base?.configDigest);
    } finally {
      writeFileSync(join(node.dir, 'auth.json'), '{}');
    }
  });

  it('pulls Docker schema 2 manifests', async () => {
    const { image_ref } = await pull('127.0.0.1:5000/test/docker:base');
    expect(image_ref).to.match(/^sha256:[0-9a-f]{64}$/);
    expect((await probe(image_ref, ['etc/motd']))['etc/motd']).to.equal('welcome\n');
  });

  it('selects from a Docker manifest list', async () => {
    const { image_ref } = await pull('127.0.0.1:5000/test/dockerlist:multi');
    expect(await probe(image_ref, ['arch'])).to.deep.equal({ arch: 'amd64' });
  });

  it('removes a digest reference, and the image with its last name', async () => {
    // test/mixed has a config no other test image shares, so this tag is its only name.
    const { image_ref } = await pull('127.0.0.1:5000/test/mixed:mixed');
    const [digestRef] = (await status(image_ref)).image?.repo_digests ?? [];
    await remove('127.0.0.1:5000/test/mixed:mixed');
    // The tag was its last tag: the image and its digest name are gone too.
    expect((await status(image_ref)).image).to.equal(undefined);
    expect((await status(digestRef as string)).image).to.equal(undefined);
    const again = await pull('127.0.0.1:5000/test/mixed:mixed');
    const digest = (await status(again.image_ref)).image?.repo_digests[0] as string;
    await remove(digest);
    expect((await status('127.0.0.1:5000/test/mixed:mixed')).image?.repo_digests).to.deep.equal([]);
    expect((await status('127.0.0.1:5000/test/mixed:mixed')).image?.id).to.equal(again.image_ref);
  });

  it('shows nothing of a pull the daemon was killed in the middle of, and cleans its files at the next start', async () => {
    const before = layerDirs().sort();
    const pulling = pull('127.0.0.1:5000/test/crash:crash').catch(() => undefined);
    await waitFor(
      'the pull to be under way',
      () => (layerDirs().length > before.length || readdirSync(join(imagesDir(), 'ingest')).length > 0 ? true : undefined),
      20_000,
      5,
    );
    await node.stopDaemon('SIGKILL');
    await pulling;
    await node.startDaemon();
    expect((await status('127.0.0.1:5000/test/crash:crash')).image).to.equal(undefined);
    expect(layerDirs().sort()).to.deep.equal(before);
    expect(readdirSync(join(imagesDir(), 'ingest'))).to.deep.equal([]);
  });

  it('pulls through a mirror when the origin host does not exist, and lists every endpoint on failure', async () => {
    const { image_ref } = await pull('origin.invalid/test/busybox:base');
    expect(image_ref).to.equal(built.base?.configDigest);
    expect((await status('origin.invalid/test/busybox:base')).image?.repo_tags).to.include('origin.invalid/test/busybox:base');
    const err = await grpcFailure(pull('origin.invalid/test/absent:v1'));
    expect(err.details).to.contain('http://127.0.0.1:5000: not found (404)');
    expect(err.details).to.contain('https://origin.invalid');
  });

  it('refuses a blob corrupted in the registry and stores nothing', async () => {
    const layerDigest = JSON.parse(readFileSync(join(layout.dir, 'blobs', 'sha256', (built.corrupt?.digest ?? '').slice(7)), 'utf8')).layers[0]
      .digest as string;
    const path = registry.blobPath(layerDigest);
    const bytes = readFileSync(path);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] as number) ^ 0xff;
    writeFileSync(path, bytes);
    const before = layerDirs().length;
    const err = await grpcFailure(pull('127.0.0.1:5000/test/corrupt:corrupt'));
    expect(err.code).to.equal(Code.INTERNAL);
    expect(err.details).to.contain(`blob ${layerDigest} has digest`);
    expect(err.details).to.contain('corrupted');
    expect((await status('127.0.0.1:5000/test/corrupt:corrupt')).image).to.equal(undefined);
    expect(layerDirs().length).to.equal(before);
    expect(readdirSync(join(imagesDir(), 'ingest'))).to.deep.equal([]);
  });

  it('refuses a layer with a ../ entry and leaves no partial layer', async () => {
    const before = layerDirs().length;
    const err = await grpcFailure(pull('127.0.0.1:5000/test/escape:escape'));
    expect(err.code).to.equal(Code.INVALID_ARGUMENT);
    expect(err.details).to.equal('refusing layer: layer entry "../escape" would land outside the layer');
    expect(layerDirs().length).to.equal(before);
    expect(layerDirs().some((d) => d.includes('.tmp-'))).to.equal(false);
    expect(existsSync(join(imagesDir(), 'layers', 'escape'))).to.equal(false);
  });

  it('shares one download between concurrent pulls of the same image', async () => {
    const mark = registry.requests().length;
    const [a, b] = await Promise.all([pull('127.0.0.1:5000/test/many:many'), pull('127.0.0.1:5000/test/many:many')]);
    expect(a.image_ref).to.equal(b.image_ref);
    const blobGets = registry
      .requests()
      .slice(mark)
      .filter((l) => l.includes('/blobs/sha256:') && l.includes('GET'));
    const perBlob = new Map<string, number>();
    for (const l of blobGets) {
      const d = /blobs\/(sha256:[0-9a-f]{64})/.exec(l)?.[1] as string;
      perBlob.set(d, (perBlob.get(d) ?? 0) + 1);
    }
    expect(perBlob.size).to.equal(61); // 60 layers + config
    expect([...perBlob.values()].every((n) => n === 1)).to.equal(true);
  });

  it('mounts an image of 60 layers as a root filesystem', async () => {
    const { image_ref } = await pull('127.0.0.1:5000/test/many:many');
    expect(await probe(image_ref, ['layer-00', 'layer-59'])).to.deep.equal({ 'layer-00': 'layer 0', 'layer-59': 'layer 59' });
  });

  it('keeps layers another image still uses when removing one', async () => {
    const base = (await pull('127.0.0.1:5000/test/busybox:base')).image_ref;
    const wh = (await pull('127.0.0.1:5000/test/whiteout:whiteout')).image_ref;
    await remove('127.0.0.1:5000/test/whiteout:whiteout');
    expect((await status(wh)).image).to.equal(undefined);
    expect((await probe(base, ['etc/motd']))['etc/motd']).to.equal('welcome\n');
    const remaining = layerDirs().length;
    expect(remaining).to.be.greaterThan(0);
    await remove(`sha256:${'0'.repeat(64)}`);
    await remove('127.0.0.1:5000/never/pulled:v1');
  });

  it('reports the image filesystem usage', async () => {
    const info = await node.client().image.call('ImageFsInfo', {});
    const fs = info.image_filesystems[0];
    expect(fs?.fs_id?.mountpoint).to.equal(imagesDir());
    expect(Number(fs?.used_bytes?.value)).to.be.greaterThan(900_000);
    expect(Number(fs?.inodes_used?.value)).to.be.greaterThan(10);
  });

  it('answers for unknown and invalid images as kubelet expects', async () => {
    expect((await status('127.0.0.1:5000/nope/nope:v1')).image).to.equal(undefined);
    const invalid = await grpcFailure(pull('Not/A/Valid:Ref!'));
    expect(invalid.code).to.equal(Code.INVALID_ARGUMENT);
    const missing = await grpcFailure(pull('127.0.0.1:5000/test/busybox:no-such-tag'));
    expect(missing.code).to.equal(Code.NOT_FOUND);
  });

  it('keeps images across a daemon restart and removes everything with the last name', async () => {
    const base = (await pull('127.0.0.1:5000/test/busybox:base')).image_ref;
    await node.stopDaemon();
    await node.startDaemon();
    expect((await status('127.0.0.1:5000/test/busybox:base')).image?.id).to.equal(base);
    for (const i of (await node.client().image.call('ListImages', {})).images) await remove(i.id);
    expect((await node.client().image.call('ListImages', {})).images).to.deep.equal([]);
    expect(layerDirs()).to.deep.equal([]);
  });

  it('hands the memory a pull freed back to the kernel once its unpack workers have ended', async () => {
    // glibc keeps freed heap pages: without handing them back, a pull left 16-20 MiB more in the daemon's RSS for good.
    const anonMiB = () => Number(/^Anonymous:\s+(\d+)/m.exec(readFileSync(`/proc/${node.daemon.pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) / 1024;
    await node.stopDaemon();
    await node.startDaemon();
    const before = anonMiB();
    await pull('127.0.0.1:5000/test/busybox:base');
    // The workers end 10 s after their last layer.
    await waitFor('the daemon to hand back what the pull freed', () => (anonMiB() <= before + 8 ? true : undefined), 90_000, 500);
  });
});
