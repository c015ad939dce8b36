import { PassThrough } from 'node:stream';
import { Attach, Exec, KubeConfig, PortForward, type V1Status } from '@kubernetes/client-node';

/**
 * A WebSocket streaming client made of @kubernetes/client-node's own
 * Exec, Attach and PortForward, run inside a test node (where the kube
 * shim listens):
 *
 *   ws-client SERVER exec|attach|portforward NAMESPACE POD CONTAINER [--stdin] [--tty COLSxROWS] [--] ARGS...
 *
 * stdin and stdout are the session's (for port-forward, the connection to
 * the port named in ARGS); the status the server sent is printed last on
 * stderr as "ws-client status: <json>", and the exit code follows it.
 */

const [server, mode, namespace, pod, container, ...rest] = process.argv.slice(2);
const dash = rest.indexOf('--');
const flags = dash < 0 ? rest : rest.slice(0, dash);
const args = dash < 0 ? [] : rest.slice(dash + 1);
const useStdin = flags.includes('--stdin');
const ttyAt = flags.indexOf('--tty');
const size = ttyAt < 0 ? undefined : (flags[ttyAt + 1] ?? '80x24').split('x').map(Number);

const config = new KubeConfig();
config.loadFromOptions({
  clusters: [{ name: 'node', server: server ?? '', skipTLSVerify: true }],
  users: [{ name: 'test' }],
  contexts: [{ name: 'node', cluster: 'node', user: 'test' }],
  currentContext: 'node',
});

let status: V1Status | undefined;
const onStatus = (s: V1Status) => {
  status = s;
};
const exitCode = () => {
  if (status === undefined || status.status === 'Success') return status === undefined ? 2 : 0;
  const code = status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
  return code === undefined ? 1 : Number(code);
};

// A terminal's size as client-node reads it from a resizable stdout.
const out = size ? Object.assign(new PassThrough(), { columns: size[0], rows: size[1] }) : process.stdout;
if (out !== process.stdout) out.pipe(process.stdout);
const input = useStdin ? process.stdin : null;

const ws =
  mode === 'exec'
    ? await new Exec(config).exec(namespace ?? '', pod ?? '', container ?? '', args, out, size ? null : process.stderr, input, size !== undefined, onStatus)
    : mode === 'attach'
      ? await new Attach(config).attach(namespace ?? '', pod ?? '', container ?? '', out, size ? null : process.stderr, input, size !== undefined)
      : await new PortForward(config).portForward(namespace ?? '', pod ?? '', args.map(Number), process.stdout, process.stderr, process.stdin);
const socket = typeof ws === 'function' ? ws() : ws;
socket?.on('close', () => {
  process.stderr.write(`\nws-client status: ${JSON.stringify(status ?? null)}\n`);
  process.stdout.write('', () => process.exit(mode === 'exec' ? exitCode() : 0));
});
