import type { ChildProcess } from 'node:child_process';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { BUSYBOX_IMAGE, busyboxSuite, startBusybox } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { podConfig } from '../support/pods.js';
import { run } from '../support/processes.js';
import { CRADLE_BIN } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';

interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  boolValue?: boolean;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: { key: string; value: OtlpValue }[];
  status?: { code?: number };
}
interface OtlpExport {
  resourceSpans: { resource?: { attributes?: { key: string; value: OtlpValue }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[];
}

/** A collector's OTLP/HTTP traces endpoint, in the node's network namespace: each request body on a line of stdout. */
const COLLECTOR = `
const http = require('node:http');
http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => (body += d));
  req.on('end', () => {
    process.stdout.write(JSON.stringify({ path: req.url, type: req.headers['content-type'], body }) + '\\n');
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
}).listen(4318, '127.0.0.1', () => process.stdout.write('listening\\n'));
`;

const attr = (s: { attributes?: { key: string; value: OtlpValue }[] } | undefined, key: string) => {
  const v = s?.attributes?.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue === undefined ? v?.boolValue : Number(v.intValue));
};

/**
 * Tracing: each CRI call is a trace of its steps, exported over OTLP/HTTP
 * to a collector when `[tracing]` names one, logged at debug level, and
 * summed up per step by `cradle bench --breakdown`.
 */
describe('tracing', function () {
  this.timeout(180_000);
  let collector: ChildProcess | undefined;
  let received = '';
  const suite = busyboxSuite({
    tables: '[tracing]\nendpoint = "http://127.0.0.1:4318/v1/traces"\n',
    beforeStart: async (node) => {
      collector = node.spawn(process.execPath, ['-e', COLLECTOR]);
      collector.stdout?.on('data', (d: Buffer) => (received += d.toString()));
      await waitFor('the collector to listen', () => (received.includes('listening\n') ? true : undefined), 30_000);
    },
  });
  after(() => collector?.kill('SIGKILL'));

  const spans = () => {
    const all: { span: OtlpSpan; resource: OtlpExport['resourceSpans'][number]['resource'] }[] = [];
    for (const line of received.split('\n')) {
      if (!line.startsWith('{')) continue;
      const req = JSON.parse(line) as { path: string; body: string };
      expect(req.path).to.equal('/v1/traces');
      for (const rs of (JSON.parse(req.body) as OtlpExport).resourceSpans)
        for (const ss of rs.scopeSpans) for (const span of ss.spans) all.push({ span, resource: rs.resource });
    }
    return all;
  };

  it('exports each call as a server span with its steps as children, ids and codes as attributes, and logs the steps', async () => {
    const rt = suite.rt();
    const pod = (await rt.call('RunPodSandbox', { config: podConfig('traced') })).pod_sandbox_id;
    const id = await startBusybox(suite.node, pod, 'app', { command: ['sleep', '600'] });
    expect((await grpcFailure(rt.call('ContainerStatus', { container_id: 'f'.repeat(64) }))).code).to.equal(Code.NOT_FOUND);

    // The SDK sends in batches, every few seconds.
    const root = (name: string, match: (s: OtlpSpan) => boolean = () => true) =>
      spans().find(({ span }) => span.name === name && span.parentSpanId === undefined && match(span));
    const create = await waitFor(
      'the spans to reach the collector',
      () => (root('CreateContainer') && root('RunPodSandbox') && root('ContainerStatus') ? root('CreateContainer') : undefined),
      60_000,
    );
    expect(attr(create.resource, 'service.name')).to.equal('cradle');
    expect(attr(create.span, 'rpc.method')).to.equal('CreateContainer');
    expect(attr(create.span, 'rpc.service')).to.equal('runtime.v1.RuntimeService');
    expect(attr(create.span, 'cri.pod_sandbox_id')).to.equal(pod);
    expect(attr(create.span, 'cri.container_id'), 'the id the call made').to.equal(id);
    expect(attr(create.span, 'rpc.grpc.status_code')).to.equal(0);
    const children = (parent: OtlpSpan) => spans().filter(({ span }) => span.parentSpanId === parent.spanId && span.traceId === parent.traceId);
    const steps = children(create.span).map(({ span }) => span.name);
    expect(steps).to.include.members(['container record written', 'rootfs mounted', 'bundle config written', 'conmon + runtime create']);
    const mount = children(create.span).find(({ span }) => span.name === 'rootfs mounted')?.span as OtlpSpan;
    expect(children(mount).map(({ span }) => span.name)).to.include('overlay mount');
    // A step lies within its call.
    for (const { span } of children(create.span)) {
      expect(BigInt(span.startTimeUnixNano) >= BigInt(create.span.startTimeUnixNano)).to.equal(true);
      expect(BigInt(span.endTimeUnixNano) <= BigInt(create.span.endTimeUnixNano)).to.equal(true);
    }
    const runPod = root('RunPodSandbox')?.span as OtlpSpan;
    const network = children(runPod).find(({ span }) => span.name === 'network attached')?.span as OtlpSpan;
    expect(children(network).map(({ span }) => span.name)).to.include('cni ADD bridge');
    expect(attr(runPod, 'cri.pod_sandbox_id')).to.equal(pod);

    const failed = root('ContainerStatus', (s) => s.status?.code === 2);
    expect(failed, 'a failed call is an error span').to.not.equal(undefined);
    expect(attr(failed?.span, 'rpc.grpc.status_code')).to.equal(Code.NOT_FOUND);

    const logged = suite.node.daemon
      .log()
      .split('\n')
      .filter((l) => l.includes('"rpc":"CreateContainer"'))
      .map((l) => JSON.parse(l) as { steps?: string[] });
    expect(
      logged.at(-1)?.steps?.some((s) => /^conmon \+ runtime create \d+\.\dms$/.test(s)),
      'the debug log line has the steps',
    ).to.equal(true);
    await rt.call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  it('cradle bench --breakdown prints the median of each step of each call', async () => {
    const r = await run(
      process.execPath,
      [CRADLE_BIN, 'bench', '--endpoint', suite.node.socket, '--scenario', 'containers', '--image', BUSYBOX_IMAGE, '--count', '3', '--breakdown'],
      { timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).to.equal(0);
    for (const rpc of ['CreateContainer', 'StartContainer', 'StopContainer', 'RemoveContainer', 'lifecycle'])
      expect(r.stdout).to.match(new RegExp(`^${rpc} +\\d`, 'm'));
    const breakdown = r.stdout.slice(r.stdout.indexOf('breakdown'));
    expect(breakdown).to.match(/^CreateContainer +\d+\.\d\d {2}\(3 calls\)$/m);
    expect(breakdown).to.match(/^ {2}conmon \+ runtime create +\d+\.\d\d {2}\(3 calls\)$/m);
    expect(breakdown).to.match(/^ {4}overlay mount +\d+\.\d\d {2}\(3 calls\)$/m);
    expect(breakdown).to.match(/^ {2}runc start +\d+\.\d\d {2}\(3 calls\)$/m);
    // The scenario cleans up after itself.
    expect((await suite.rt().call('ListPodSandbox', {})).items).to.deep.equal([]);
  });
});
