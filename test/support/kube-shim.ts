import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { CriClient } from '../../cri/client.js';

/**
 * What stands between kubectl and the runtime on a real cluster, reduced to
 * what exec, attach and port-forward need: the API server's pod lookups and
 * discovery, and kubelet's streaming proxy (ask the runtime for a URL over
 * CRI, then pass the upgrade request and every byte after it through).
 * Run as its own process inside a test node:
 *   node kube-shim.js CRI_SOCKET PORT PODS_JSON
 * where PODS_JSON maps "namespace/name" to {sandboxId, containers: {name: id}}.
 */

interface PodEntry {
  sandboxId: string;
  containers: Record<string, string>;
  /** Containers created with a terminal (kubectl attach -t checks the pod spec). */
  tty?: string[];
}

const [criSocket, portArg, podsFile] = process.argv.slice(2) as [string, string, string];
// Re-read per request: tests add pods while the shim runs.
const podsNow = () => JSON.parse(readFileSync(podsFile, 'utf8')) as Record<string, PodEntry>;
const cri = new CriClient(criSocket);

const json = (body: unknown) => JSON.stringify(body);

const discovery: Record<string, string> = {
  '/api': json({ kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }] }),
  '/apis': json({ kind: 'APIGroupList', apiVersion: 'v1', groups: [] }),
  '/api/v1': json({
    kind: 'APIResourceList',
    groupVersion: 'v1',
    resources: [
      { name: 'pods', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get', 'list'], shortNames: ['po'] },
      { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] },
      { name: 'pods/attach', singularName: '', namespaced: true, kind: 'PodAttachOptions', verbs: ['create', 'get'] },
      { name: 'pods/portforward', singularName: '', namespaced: true, kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
    ],
  }),
};

function podObject(ns: string, name: string, entry: PodEntry): string {
  return json({
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name, namespace: ns, uid: entry.sandboxId },
    // stdin: kubectl attach -i refuses containers that do not declare it.
    spec: {
      containers: Object.keys(entry.containers).map((c) => ({ name: c, image: 'busybox', stdin: true, stdinOnce: true, tty: entry.tty?.includes(c) ?? false })),
    },
    status: { phase: 'Running' },
  });
}

const server = createServer((req, res) => {
  const path = (req.url ?? '').split('?')[0] as string;
  const pod = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path);
  let body = discovery[path];
  if (pod) {
    const entry = podsNow()[`${pod[1]}/${pod[2]}`];
    if (entry) body = podObject(pod[1] as string, pod[2] as string, entry);
  }
  if (body === undefined) {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(json({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: `${path} not found` }));
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(body);
});

/** kubelet's part: a CRI call for the URL, then the upgrade passed through to it. */
server.on('upgrade', (req: IncomingMessage, client: Duplex, head: Buffer) => {
  void (async () => {
    const url = new URL(req.url ?? '', 'http://shim');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach|portforward)$/.exec(url.pathname);
    const entry = m ? podsNow()[`${m[1]}/${m[2]}`] : undefined;
    if (!m || !entry) return client.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
    const flag = (n: string) => url.searchParams.get(n) === 'true' || url.searchParams.get(n) === '1';
    const containerId = entry.containers[url.searchParams.get('container') ?? Object.keys(entry.containers)[0] ?? ''] ?? '';
    let target: string;
    try {
      if (m[3] === 'exec') {
        target = (
          await cri.runtime.call('Exec', {
            container_id: containerId,
            cmd: url.searchParams.getAll('command'),
            stdin: flag('stdin'),
            stdout: flag('stdout'),
            stderr: flag('stderr'),
            tty: flag('tty'),
          })
        ).url;
      } else if (m[3] === 'attach') {
        target = (
          await cri.runtime.call('Attach', {
            container_id: containerId,
            stdin: flag('stdin'),
            stdout: flag('stdout'),
            stderr: flag('stderr'),
            tty: flag('tty'),
          })
        ).url;
      } else {
        // kubelet passes the ports a WebSocket client names in the URL (SPDY clients name them per stream).
        const port = url.searchParams.getAll('ports').flatMap((p) => p.split(',').map(Number));
        target = (await cri.runtime.call('PortForward', { pod_sandbox_id: entry.sandboxId, port })).url;
      }
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      return client.end(`HTTP/1.1 500 Internal Server Error\r\nContent-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`);
    }
    const u = new URL(target);
    const upstream: Socket = connect({ host: u.hostname, port: Number(u.port) }, () => {
      const headers = Object.entries(req.headers)
        .filter(([k]) => ['connection', 'upgrade', 'x-stream-protocol-version'].includes(k) || k.startsWith('sec-websocket-'))
        .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => `${k}: ${x}`) : [`${k}: ${v ?? ''}`]));
      upstream.write(`${req.method ?? 'POST'} ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\n${headers.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    const close = () => {
      upstream.destroy();
      client.destroy();
    };
    upstream.on('error', close);
    client.on('error', close);
  })();
});

server.listen(Number(portArg), '127.0.0.1', () => process.stdout.write('listening\n'));
process.on('SIGTERM', () => {
  cri.close();
  server.close();
  process.exit(0);
});
