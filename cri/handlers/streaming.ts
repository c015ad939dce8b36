import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.js';
import { containerState } from '../../runtime/container-record.js';
import type { ContainerManager } from '../../runtime/container-manager.js';
import type { SandboxManager } from '../../sandbox/sandbox-manager.js';
import { isReady } from '../../sandbox/sandbox-spec.js';
import type { StreamingServer } from '../../streaming/server.js';
import type { RuntimeServiceMethods } from '../generated/api.js';
import type { ServiceHandlers } from '../service-types.js';
import { noNul } from '../validate.js';

/** The stdio a request asks for, checked as kubelet's own streaming server checks it. */
function streamOptions(req: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }) {
  if (!req.stdin && !req.stdout && !req.stderr) throw new InvalidArgumentError('one of stdin, stdout or stderr must be requested');
  if (req.tty && req.stderr) throw new InvalidArgumentError('tty and stderr cannot both be requested: a terminal has one output');
  return { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, tty: req.tty };
}

/** Exec, Attach and PortForward answer with a single-use URL on the streaming server. */
export function streamingHandlers(streaming: StreamingServer, containers: ContainerManager, sandboxes: SandboxManager): ServiceHandlers<RuntimeServiceMethods> {
  return {
    Exec: async (req) => {
      if (req.container_id === '') throw new InvalidArgumentError('container_id is empty');
      if (req.cmd.length === 0 || req.cmd[0] === '') throw new InvalidArgumentError('cmd is empty');
      req.cmd.forEach((a, i) => noNul(`cmd[${i}]`, a));
      const opts = streamOptions(req);
      const rec = containers.get(req.container_id);
      if (containerState(rec) !== 'running') throw new FailedPreconditionError(`container "${rec.id}" is not running`);
      return { url: streaming.url({ kind: 'exec', containerId: rec.id, cmd: req.cmd, ...opts }) };
    },
    Attach: async (req) => {
      if (req.container_id === '') throw new InvalidArgumentError('container_id is empty');
      const opts = streamOptions(req);
      const rec = containers.get(req.container_id);
      if (containerState(rec) !== 'running') throw new FailedPreconditionError(`container "${rec.id}" is not running`);
      if (opts.stdin && !rec.spec.stdin) throw new InvalidArgumentError(`container "${rec.id}" was not created with stdin: it cannot take input`);
      return { url: streaming.url({ kind: 'attach', containerId: rec.id, ...opts }) };
    },
    PortForward: async (req) => {
      if (req.pod_sandbox_id === '') throw new InvalidArgumentError('pod_sandbox_id is empty');
      const pod = sandboxes.get(req.pod_sandbox_id);
      if (!isReady(pod)) throw new FailedPreconditionError(`pod sandbox "${pod.id}" is not ready`);
      for (const p of req.port) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new InvalidArgumentError(`port ${p} is not a TCP port`);
      return { url: streaming.url({ kind: 'portforward', podId: pod.id, ports: req.port }) };
    },
  };
}
