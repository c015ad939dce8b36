import type { Logger } from '../core/logger.js';
import { packageVersion } from '../core/package-info.js';
import { addTraceSink } from '../core/tracing.js';

/**
 * OTLP export of the daemon's traces (core/tracing.ts), as CRI-O and
 * containerd offer it: OpenTelemetry's SDK with its OTLP/HTTP exporter,
 * loaded only when `[tracing]` names an endpoint. Each finished RPC becomes
 * a server span with its steps as children, at the times they ran.
 */
export async function startTraceExport(endpoint: string, samplingPerMillion: number, logger: Logger): Promise<{ close(): Promise<void> }> {
  const [api, sdk, otlp, resources] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  // The SDK reports failed exports through its diagnostics channel, silent unless given a logger.
  let lastWarning = 0;
  const warn = (message: string) => {
    if (Date.now() - lastWarning < 60_000) return;
    lastWarning = Date.now();
    logger.warn('trace export', { endpoint, error: message });
  };
  api.diag.setLogger(
    { error: warn, warn, info: () => undefined, debug: () => undefined, verbose: () => undefined },
    { logLevel: api.DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  const provider = new sdk.TracerProvider({
    resource: resources.resourceFromAttributes({ 'service.name': 'cradle', 'service.version': packageVersion }),
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(samplingPerMillion / 1_000_000) }),
    spanProcessors: [new sdk.BatchSpanProcessor({ exporter: new otlp.OTLPTraceExporter({ url: endpoint }) })],
  });
  const tracer = provider.getTracer('cradle', packageVersion);
  const wallClock = (ms: number) => performance.timeOrigin + ms;
  const remove = addTraceSink((trace) => {
    const spans: ReturnType<typeof tracer.startSpan>[] = [];
    for (const s of trace.spans) {
      const parent = s.parent < 0 ? undefined : spans[s.parent];
      const span = tracer.startSpan(
        s.name,
        { startTime: wallClock(s.start), attributes: s.attributes, kind: parent ? api.SpanKind.INTERNAL : api.SpanKind.SERVER },
        parent ? api.trace.setSpan(api.ROOT_CONTEXT, parent) : api.ROOT_CONTEXT,
      );
      if (s.error !== undefined) span.setStatus({ code: api.SpanStatusCode.ERROR, message: s.error });
      spans.push(span);
    }
    for (const [i, s] of trace.spans.entries()) spans[i]?.end(wallClock(s.end));
  });
  logger.info('exporting traces', { endpoint, samplingPerMillion });
  return {
    close: async () => {
      remove();
      await provider.shutdown().catch((err: unknown) => warn(String(err)));
      api.diag.disable();
    },
  };
}
