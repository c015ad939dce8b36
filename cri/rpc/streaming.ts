import { FailedPreconditionError, InvalidArgumentError } from '../../core/errors.js';
import { containerState } from '../../runtime/container-record.js';
import { isReady } from '../../sandbox/sandbox-spec.js';
import type { RuntimeServiceMethods } from '../generated/api.js';
import type { ServiceHandlers } from '../service-types.js';
import { noNul, requireId } from '../validate.js';
import type { CriDeps } from './deps.js';

/** The stdio a request asks for, checked as kubelet's own streaming server checks it. */
function streamOptions(req: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean }) {
  if (!req.stdin && !req.stdout && !req.stderr) throw new InvalidArgumentError('one of stdin, stdout or stderr must be requested');
  if (req.tty && req.stderr) throw new InvalidArgumentError('tty and stderr cannot both be requested: a terminal has one output');
  return { stdin: req.stdin, stdout: req.stdout, stderr: req.stderr, tty: req.tty };
}

/** Exec, Attach and PortForward answer with a single-use URL on the streaming server. */
export function streamingHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  const { streaming, containers, sandboxes } = d;
  return {
    Exec: async (req) => {
      if (req.cmd.length === 0 || req.cmd[0] === '') throw new InvalidArgumentError('cmd is empty');
      for (const [i, a] of req.cmd.entries()) noNul(`cmd[${i}]`, a);
      const opts = streamOptions(req);
      const rec = containers.get(requireId('container_id', req.container_id));
      if (containerState(rec) !== 'running') throw new FailedPreconditionError(`container "${rec.id}" is not running`);
      return { url: streaming.url({ kind: 'exec', containerId: rec.id, cmd: req.cmd, ...opts }) };
    },
    Attach: async (req) => {
      const opts = streamOptions(req);
      const rec = containers.get(requireId('container_id', req.container_id));
      if (containerState(rec) !== 'running') throw new FailedPreconditionError(`container "${rec.id}" is not running`);
      if (opts.stdin && !rec.spec.stdin) throw new InvalidArgumentError(`container "${rec.id}" was not created with stdin: it cannot take input`);
      return { url: streaming.url({ kind: 'attach', containerId: rec.id, ...opts }) };
    },
    PortForward: async (req) => {
      const pod = sandboxes.get(requireId('pod_sandbox_id', req.pod_sandbox_id));
      if (!isReady(pod)) throw new FailedPreconditionError(`pod sandbox "${pod.id}" is not ready`);
      for (const p of req.port) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new InvalidArgumentError(`port ${p} is not a TCP port`);
      return { url: streaming.url({ kind: 'portforward', podId: pod.id, ports: req.port }) };
    },
  };
}
