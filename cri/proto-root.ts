import { join } from 'node:path';
import protobuf from 'protobufjs';
import { packageRoot } from '../core/package-info.js';

export const PROTO_PATH = join(packageRoot, 'cri', 'proto', 'api.proto');
export const PROTO_PACKAGE = 'runtime.v1';

let root: protobuf.Root | undefined;

/** The parsed runtime.v1 proto, resolved once per process. */
export function criRoot(): protobuf.Root {
  if (root === undefined) {
    const r = new protobuf.Root();
    // keepCase: field names stay as upstream spells them (pod_sandbox_id).
    r.loadSync(PROTO_PATH, { keepCase: true });
    r.resolveAll();
    root = r;
  }
  return root;
}
