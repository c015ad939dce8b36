import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { tarArchive, type TarEntry } from './tar-writer.js';

export interface ImageConfigSpec {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  StopSignal?: string;
  Labels?: Record<string, string>;
  Volumes?: Record<string, object>;
  ExposedPorts?: Record<string, object>;
}

export interface LayerSpec {
  entries: TarEntry[];
  compression?: 'gzip' | 'zstd' | 'none';
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const AMD64: Platform = { os: 'linux', architecture: 'amd64' };

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function compress(tar: Buffer, how: 'gzip' | 'zstd' | 'none'): Buffer {
  if (how === 'gzip') return gzipSync(tar);
  if (how === 'none') return tar;
  const dir = mkdtempSync(join(tmpdir(), 'cradle-zstd-'));
  try {
    writeFileSync(join(dir, 'in'), tar);
    execFileSync('zstd', ['-q', '-f', join(dir, 'in'), '-o', join(dir, 'out')]);
    return readFileSync(join(dir, 'out'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const LAYER_TYPES = {
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  none: 'application/vnd.oci.image.layer.v1.tar',
};

/** Builds OCI image layouts: images, multi-platform indexes, tags. */
export class OciLayout {
  private readonly tags: Array<{ tag: string; desc: Descriptor }> = [];

  constructor(readonly dir: string) {
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }

  blob(data: Buffer): string {
    const digest = sha256(data);
    writeFileSync(join(this.dir, 'blobs', 'sha256', digest.slice(7)), data);
    return digest;
  }

  /** An image manifest; returns its descriptor, with the platform set. */
  image(layers: readonly LayerSpec[], config: ImageConfigSpec, platform: Platform = AMD64): Descriptor & { configDigest: string } {
    const diffIds: string[] = [];
    const descs: Descriptor[] = [];
    for (const layer of layers) {
      const tar = tarArchive(layer.entries);
      diffIds.push(sha256(tar));
      const how = layer.compression ?? 'gzip';
      const blob = compress(tar, how);
      descs.push({ mediaType: LAYER_TYPES[how], digest: this.blob(blob), size: blob.length });
    }
    const cfg = Buffer.from(JSON.stringify({ ...platform, config, rootfs: { type: 'layers', diff_ids: diffIds }, history: [] }));
    const configDigest = this.blob(cfg);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: cfg.length },
        layers: descs,
      }),
    );
    return { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: this.blob(manifest), size: manifest.length, platform, configDigest };
  }

  index(manifests: readonly Descriptor[]): Descriptor {
    const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests }));
    return { mediaType: 'application/vnd.oci.image.index.v1+json', digest: this.blob(body), size: body.length };
  }

  tag(tag: string, desc: Descriptor): this {
    this.tags.push({ tag, desc });
    writeFileSync(
      join(this.dir, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: this.tags.map(({ tag: t, desc: d }) => ({
          mediaType: d.mediaType,
          digest: d.digest,
          size: d.size,
          annotations: { 'org.opencontainers.image.ref.name': t, 'io.containerd.image.name': t },
        })),
      }),
    );
    return this;
  }
}

/** A one-image layout, as the benchmarks use. */
export function writeOciLayout(layout: string, ref: string, layers: readonly LayerSpec[], config: ImageConfigSpec): Descriptor & { configDigest: string } {
  const l = new OciLayout(layout);
  const desc = l.image(layers, config);
  const manifests = [
    {
      mediaType: desc.mediaType,
      digest: desc.digest,
      size: desc.size,
      platform: desc.platform,
      annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': ref.slice(ref.lastIndexOf(':') + 1) },
    },
  ];
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
  return desc;
}

/** The layer of busybox-static: one binary and its applet links. */
export function busyboxEntries(): TarEntry[] {
  const applets = [
    'sh',
    'ls',
    'cat',
    'echo',
    'id',
    'sleep',
    'true',
    'false',
    'env',
    'ps',
    'touch',
    'mkdir',
    'rm',
    'wc',
    'head',
    'grep',
    'hostname',
    'mount',
    'unshare',
    'tr',
    'httpd',
    'nc',
    'stty',
    'tty',
  ];
  return [
    { name: 'bin/', type: 'dir', mode: 0o755 },
    { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
    ...applets.map((a): TarEntry => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox' })),
    { name: 'etc/', type: 'dir', mode: 0o755 },
    { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' },
    { name: 'etc/group', content: 'root:x:0:\nuser:x:1000:\n' },
    { name: 'tmp/', type: 'dir', mode: 0o1777 },
  ];
}
