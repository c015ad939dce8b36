#!/usr/bin/env node
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { stringify as toToml } from 'smol-toml';
import { ConfigError } from '../core/config/config.js';
import { DEFAULT_CONFIG_TOML } from '../core/config/default-config.js';
import { DEFAULT_CONFIG_PATH, loadConfig, type ConfigSource } from '../core/config/load.js';
import { errorMessage } from '../core/errors.js';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../core/logger.js';
import { packageVersion } from '../core/package-info.js';
import { runDaemon } from './daemon.js';
import { formatBench, runBench, SCENARIOS, type Scenario } from './bench/bench.js';
import { resolveEndpoint, withClient } from './cli/common.js';
import { play } from './cli/play.js';
import { psReport, top } from './cli/ps.js';
import { pullWithProgress } from './cli/pull.js';
import { statusReport } from './cli/status.js';

const USAGE = `Usage: cradle <command> [flags]

Cradle is a Kubernetes container runtime serving CRI v1 on a unix socket.

Commands:
  daemon    run the CRI daemon
  status    what the daemon runs: version, config, handlers, cgroups, readiness, counts
  ps        pods and containers: state, age, restarts, CPU, memory
  top       ps, refreshed live on a terminal
  pull      pull an image through the daemon, with its progress
  play      run a Kubernetes v1 Pod manifest over CRI, as kubelet would
  config    print the effective configuration as TOML
  version   print version information
  bench     load-test a CRI endpoint (Cradle's or another runtime's)

Run "cradle <command> --help" for a command's flags.
`;

const CONFIG_FLAGS_HELP = `  --config FILE        config file (default ${DEFAULT_CONFIG_PATH}); drop-ins are
                       read from FILE's name with .d (cradle.d/*.toml)
  --listen PATH        CRI socket path (config: listen)
  --root DIR           persistent state directory (config: root)
  --runroot DIR        volatile state directory (config: runroot)
  --log-level LEVEL    ${LOG_LEVELS.join(', ')} (config: log.level)
  --log-format FORMAT  ${LOG_FORMATS.join(', ')} (config: log.format)
`;

const ENDPOINT_HELP = `  --endpoint SOCKET    the daemon's CRI socket (default: listen from the config)
`;

const HELP: Record<string, string> = {
  daemon: `Usage: cradle daemon [flags]

Runs the CRI daemon in the foreground. Flags override the config files.
SIGTERM/SIGINT stop it gracefully; SIGHUP reloads the config.

Flags:
${CONFIG_FLAGS_HELP}  -h, --help           show this help
`,
  config: `Usage: cradle config [flags]

Prints the effective configuration (embedded default, config file, drop-ins
and flags merged) as TOML.

Flags:
  --default            print the embedded default config, with comments
${CONFIG_FLAGS_HELP}  -h, --help           show this help
`,
  bench: `Usage: cradle bench [--endpoint SOCKET] [flags]

Sends CRI calls to a runtime and reports latency percentiles per RPC. Works
against any CRI runtime, so runtimes can be compared under the same load.
The pods scenario creates, stops and removes pods (namespace cradle-bench);
the containers scenario runs containers of --image in one pod, each created,
started, stopped and removed in turn, as the CRI validation suite's benchmark.

Flags:
${ENDPOINT_HELP}  --scenario NAME      version, status, pods or containers (default version)
  --count N            calls, pods or containers (default 100)
  --concurrency N      calls (or lifecycles) in flight at once (default 1)
  --host-network       pods, containers: use the host network (no CNI)
  --image REF          containers: the image to run (pulled when missing)
  --breakdown          also print the median of each step of each RPC, from
                       the daemon's own traces (Cradle only)
  --json               print the result as JSON
  -h, --help           show this help
`,
  status: `Usage: cradle status [--endpoint SOCKET]

Shows the daemon's version and pid, the config files it read, its runtime
handlers, cgroup driver and version, whether runtime and network are ready,
and how many pods, containers and images it holds.

Flags:
${ENDPOINT_HELP}  -h, --help           show this help
`,
  ps: `Usage: cradle ps [--endpoint SOCKET]

Lists every pod with its containers: state, age, restarts (kubelet's
attempt), CPU (percent of one core) and memory (working set).

Flags:
${ENDPOINT_HELP}  -h, --help           show this help
`,
  top: `Usage: cradle top [--endpoint SOCKET] [--interval SECONDS]

"cradle ps", redrawn every interval on a terminal until Ctrl-C. Not on a
terminal, it prints one frame.

Flags:
${ENDPOINT_HELP}  --interval SECONDS   between frames (default 2)
  -h, --help           show this help
`,
  pull: `Usage: cradle pull IMAGE [--creds USER:PASSWORD] [--endpoint SOCKET]

Pulls IMAGE through the daemon (CRI PullImage) and shows the daemon's own
download per layer: a bar with bytes, rate and ETA on a terminal, a line
per layer's change otherwise. Prints the image's id when done.

Flags:
  --creds USER:PASSWORD  registry credentials for this pull
${ENDPOINT_HELP}  -h, --help             show this help
`,
  play: `Usage: cradle play POD.yaml [--follow] [--down] [--endpoint SOCKET]

Runs a Kubernetes v1 Pod manifest on this node through the daemon, as
kubelet would: the sandbox (hostname, DNS, hostPorts, labels, host
namespaces), images pulled per imagePullPolicy, init containers run to
completion in order, then the containers (command, args, literal env,
hostPath and emptyDir volumes, resources as cgroup limits, security
context). For static pods and trying workloads on a node without a control
plane; env from ConfigMaps or Secrets and other volume kinds are refused.

Flags:
  --follow             stream the containers' logs and apply restartPolicy
                       until every container is done (or Ctrl-C)
  --down               remove the pod an earlier play of this manifest made
${ENDPOINT_HELP}  -h, --help           show this help
`,
  version: `Usage: cradle version

Prints the version of Cradle and of the CRI API it serves.
`,
};

const CONFIG_OPTIONS = {
  config: { type: 'string' },
  listen: { type: 'string' },
  root: { type: 'string' },
  runroot: { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies ParseArgsConfig['options'];

class UsageError extends Error {}

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, not ${JSON.stringify(value)}`);
  return value as T;
}

function configSource(values: { [K in keyof typeof CONFIG_OPTIONS]?: string | boolean }): ConfigSource {
  const str = (k: keyof typeof CONFIG_OPTIONS) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  return {
    path: str('config') ?? DEFAULT_CONFIG_PATH,
    explicit: str('config') !== undefined,
    overrides: {
      listen: str('listen'),
      root: str('root'),
      runroot: str('runroot'),
      logLevel: oneOf<LogLevel>('log-level', str('log-level'), LOG_LEVELS),
      logFormat: oneOf<LogFormat>('log-format', str('log-format'), LOG_FORMATS),
    },
  };
}

function parse<O extends ParseArgsConfig['options']>(args: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined ? 2 : 0;
  }
  switch (command) {
    case 'daemon': {
      const { values } = parse(rest, CONFIG_OPTIONS);
      if (values.help) return help('daemon');
      return runDaemon(configSource(values));
    }
    case 'config': {
      const { values } = parse(rest, { ...CONFIG_OPTIONS, default: { type: 'boolean' } });
      if (values.help) return help('config');
      if (values.default) process.stdout.write(DEFAULT_CONFIG_TOML);
      else process.stdout.write(`${toToml(loadConfig(configSource(values)).config)}\n`);
      return 0;
    }
    case 'version': {
      const { values } = parse(rest, { help: { type: 'boolean', short: 'h' } });
      if (values.help) return help('version');
      process.stdout.write(`cradle ${packageVersion}\nCRI API: runtime.v1\nnode: ${process.version}\n`);
      return 0;
    }
    case 'bench': {
      const { values } = parse(rest, {
        endpoint: { type: 'string' },
        scenario: { type: 'string' },
        count: { type: 'string' },
        concurrency: { type: 'string' },
        'host-network': { type: 'boolean' },
        image: { type: 'string' },
        breakdown: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      });
      if (values.help) return help('bench');
      const count = positiveInt('count', values.count ?? '100');
      const concurrency = positiveInt('concurrency', values.concurrency ?? '1');
      const scenario = oneOf<Scenario>('scenario', values.scenario ?? 'version', SCENARIOS) as Scenario;
      if (scenario === 'containers' && !values.image) throw new UsageError('--scenario containers needs --image REF');
      const result = await runBench({
        endpoint: resolveEndpoint(values.endpoint),
        scenario,
        count,
        concurrency,
        hostNetwork: values['host-network'] === true,
        ...(values.image ? { image: values.image } : {}),
        breakdown: values.breakdown === true,
      });
      process.stdout.write(values.json ? `${JSON.stringify(result, (_k, v: unknown) => v)}\n` : formatBench(result));
      return result.rows.some((r) => r.errors > 0) ? 1 : 0;
    }
    case 'status':
    case 'ps': {
      const { values } = parse(rest, { endpoint: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
      if (values.help) return help(command);
      const endpoint = resolveEndpoint(values.endpoint);
      process.stdout.write(await withClient(endpoint, (c) => (command === 'status' ? statusReport(c, endpoint) : psReport(c))));
      return 0;
    }
    case 'top': {
      const { values } = parse(rest, { endpoint: { type: 'string' }, interval: { type: 'string' }, help: { type: 'boolean', short: 'h' } });
      if (values.help) return help('top');
      const seconds = positiveInt('interval', values.interval ?? '2');
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      await withClient(resolveEndpoint(values.endpoint), async (c) =>
        process.stdout.isTTY ? top(c, process.stdout, seconds * 1000, stop.signal) : void process.stdout.write(await psReport(c)),
      );
      return 0;
    }
    case 'pull': {
      const { values, positionals } = parse(rest, { endpoint: { type: 'string' }, creds: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, true);
      if (values.help) return help('pull');
      if (positionals.length !== 1) throw new UsageError('pull takes one image reference');
      const creds = values.creds;
      if (creds !== undefined && !creds.includes(':')) throw new UsageError('--creds must be USER:PASSWORD');
      const auth = creds === undefined ? undefined : { username: creds.slice(0, creds.indexOf(':')), password: creds.slice(creds.indexOf(':') + 1) };
      await withClient(resolveEndpoint(values.endpoint), (c) => pullWithProgress(c, positionals[0] as string, auth, process.stdout));
      return 0;
    }
    case 'play': {
      const { values, positionals } = parse(
        rest,
        { endpoint: { type: 'string' }, follow: { type: 'boolean' }, down: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
        true,
      );
      if (values.help) return help('play');
      if (positionals.length !== 1) throw new UsageError('play takes one manifest file');
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      return withClient(resolveEndpoint(values.endpoint), (c) =>
        play(c, positionals[0] as string, { follow: values.follow === true, down: values.down === true, out: process.stdout, signal: stop.signal }),
      );
    }
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  }
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${flag} must be a whole number of at least 1, not ${JSON.stringify(value)}`);
  return n;
}

function help(command: string): number {
  process.stdout.write(HELP[command] ?? USAGE);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`cradle: ${errorMessage(err)}\n`);
    process.exitCode = err instanceof UsageError || err instanceof ConfigError ? 2 : 1;
  },
);
