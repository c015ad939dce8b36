/** What containers need from an image's config. */
export interface ImageConfigInfo {
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workingDir: string;
  user: string;
  stopSignal: string;
  exposedPorts: string[];
  volumes: string[];
  labels: Record<string, string>;
}
