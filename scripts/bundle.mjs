// Bundles the compiled daemon (dist/, from tsc) into dist/bundle/: the
// `cradle` entry and the layer unpack worker, each one file. Everything runs
// from here: the launcher, the package, the tests' daemons.
//
// Why: V8 keeps every loaded module's source in memory and node resolved
// and read some 300 files at start. One file without comments or
// indentation took 2.3 MiB off the idle daemon's RSS, and its start to the
// first Version went from 617 to 427 ms (docs/BENCHMARKS.md, 2026-12-03).
// Identifiers are kept, so stack traces still name the functions they pass
// through.
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

/**
 * What the daemon imports only when asked (OpenTelemetry when `[tracing]`
 * names an endpoint, prom-client for `[metrics]`, the Kubernetes client for
 * `cradle play`) stays in node_modules for node to load then: not bundled,
 * it costs nothing until used, and node's own loader gives a CommonJS
 * package's named exports to `import()`, where a bundled chunk would give
 * only its default.
 */
const lazyPackagesStayExternal = {
  name: 'lazy-packages-stay-external',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => (args.kind === 'dynamic-import' ? { path: args.path, external: true } : undefined));
  },
};

// A previous build's files (an entry since renamed, its licence file) would linger.
rmSync('dist/bundle', { recursive: true, force: true });

await build({
  entryPoints: {
    cradle: 'dist/bin/cradle.js',
    // Started as `new URL('./unpack-worker.js', import.meta.url)`: beside cradle.js, as in dist/image.
    'unpack-worker': 'dist/image/unpack-worker.js',
  },
  outdir: 'dist/bundle',
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  // The addon is loaded by absolute path at run time.
  external: ['*.node'],
  // Licence texts of the bundled packages, in a file beside each output.
  legalComments: 'external',
  // Bundled CommonJS packages call require() for node's own modules.
  banner: { js: "import { createRequire as cradleCreateRequire } from 'node:module'; const require = cradleCreateRequire(import.meta.url);" },
  // protobufjs probes for optional packages with eval('require'), as it means to.
  logOverride: { 'direct-eval': 'silent' },
  plugins: [lazyPackagesStayExternal],
  logLevel: 'warning',
});
