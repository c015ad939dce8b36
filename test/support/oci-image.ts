import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
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
}

export interface LayerSpec {
  entries: TarEntry[];
  /** gzip (default) or none; zstd layers are written by the image tests with the zstd tool. */
  compression?: 'gzip' | 'none';
}

export interface BuiltImage {
  manifestDigest: string;
  configDigest: string;
  layerDigests: string[];
  size: number;
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function writeBlob(layout: string, data: Buffer): string {
  const digest = sha256(data);
  writeFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)), data);
  return digest;
}

/**
 * Writes an OCI image layout directory holding one image, tagged `ref`
 * (a full name such as `cradle.test/pause:bench`).
 */
export function writeOciLayout(layout: string, ref: string, layers: readonly LayerSpec[], config: ImageConfigSpec, platform = { os: 'linux', architecture: 'amd64' }): BuiltImage {
  mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const diffIds: string[] = [];
  const layerDescs: Array<{ mediaType: string; digest: string; size: number }> = [];
  for (const layer of layers) {
    const tar = tarArchive(layer.entries);
    diffIds.push(sha256(tar));
    const gz = layer.compression !== 'none';
    const blob = gz ? gzipSync(tar) : tar;
    layerDescs.push({ mediaType: `application/vnd.oci.image.layer.v1.tar${gz ? '+gzip' : ''}`, digest: writeBlob(layout, blob), size: blob.length });
  }
  const configBlob = Buffer.from(JSON.stringify({ ...platform, config: config, rootfs: { type: 'layers', diff_ids: diffIds }, history: [] }));
  const configDigest = writeBlob(layout, configBlob);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: configBlob.length },
      layers: layerDescs,
    }),
  );
  const manifestDigest = writeBlob(layout, manifest);
  const tag = ref.slice(ref.lastIndexOf(':') + 1);
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifestDigest,
          size: manifest.length,
          platform,
          annotations: { 'io.containerd.image.name': ref, 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return { manifestDigest, configDigest, layerDigests: layerDescs.map((l) => l.digest), size: layerDescs.reduce((n, l) => n + l.size, 0) };
}
