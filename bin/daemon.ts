import { rm } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { errorMessage } from '../core/errors.js';
import { ensureDir } from '../core/fs-util.js';
import { createLogger, type LoggerControl } from '../core/logger.js';
import { parseDuration } from '../core/duration.js';
import { packageVersion } from '../core/package-info.js';
import type { CradleConfig } from '../core/config/config.js';
import { loadConfig, type ConfigSource } from '../core/config/load.js';
import { CriServer } from '../cri/server.js';
import { NetworkReadiness } from '../network/network-readiness.js';
import { CniCache } from '../network/cni-cache.js';
import { PodNetworks } from '../network/pod-network.js';
import { SandboxManager } from '../sandbox/sandbox-manager.js';
import { ImageService } from '../image/image-service.js';
import { probeIdmappedLayers } from '../storage/idmap-probe.js';
import { Storage } from '../storage/storage.js';
import { ContainerManager } from '../runtime/container-manager.js';
import { registryHosts } from '../image/registry-hosts.js';
import { parseQuantity } from '../core/quantity.js';
import { join } from 'node:path';
import { RuntimeHandlerRegistry } from '../runtime/runtime-handlers.js';
import { loadNative } from '../native/index.js';
import { InstanceLock } from './instance-lock.js';
import { StreamingServer } from '../streaming/server.js';
import { streamBackend } from '../orchestration/streaming-backend.js';
import { ContainerCreation } from '../orchestration/container-creation.js';
import { PodLifecycle } from '../orchestration/pod-lifecycle.js';
import { StatsSource } from '../orchestration/stats-source.js';
import { recoverState } from '../orchestration/recovery.js';
import { ContainerEvents } from '../cri/container-events.js';
import { imageServiceHandlers, runtimeServiceHandlers, type CriDeps } from '../cri/rpc/index.js';
import { planReload } from './config-reload.js';
import { startMetricsEndpoint } from './metrics-endpoint.js';
import { startTraceExport } from './trace-exporter.js';
import { SystemdNotifier } from './systemd-notify.js';
import { QuietReclaim } from './quiet-reclaim.js';
import { CriClient } from '../cri/client.js';
import { containerState } from '../runtime/container-record.js';
import { isReady } from '../sandbox/sandbox-spec.js';

/** A start-up failure the operator can act on: printed as one line, exit 1. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

/**
 * The running daemon: owns the config, the CRI server and the domain
 * services, and the process's signals.
 */
export class Daemon {
  private config: CradleConfig;
  private readonly log: LoggerControl;
  private readonly lock = new InstanceLock();
  private readonly runtimes = new RuntimeHandlerRegistry();
  private readonly network: NetworkReadiness;
  private readonly server: CriServer;
  private readonly sandboxes: SandboxManager;
  private readonly storage: Storage;
  private readonly images: ImageService;
  private readonly containers: ContainerManager;
  private readonly streaming: StreamingServer;
  private stopping: Promise<void> | undefined;
  private readonly events: ContainerEvents;
  private readonly stats: StatsSource;
  private metricsEndpoint: { close(): Promise<void> } | undefined;
  private traceExport: { close(): Promise<void> } | undefined;
  private readonly reclaim: QuietReclaim;
  /** Found at start: pods can have user namespaces of their own here. */
  private userNamespaces = false;

  constructor(
    private readonly source: ConfigSource,
    config: CradleConfig,
    /** The files `config` came from, for `cradle status`. */
    private configFiles: readonly string[] = [],
  ) {
    this.config = config;
    this.log = createLogger(config.log.level, config.log.format);
    const logger = this.log.logger;
    const cniExec = () => ({ binDirs: this.config.cni.bin_dirs, timeoutMs: parseDuration(this.config.cni.plugin_timeout) ?? 60_000 });
    this.network = new NetworkReadiness(config.cni.conf_dir, logger.child({ component: 'network' }), cniExec);
    ensureDir(config.root, 0o711);
    ensureDir(config.runroot, 0o711);
    const networks = new PodNetworks(this.network, new CniCache(join(config.root, 'cni-cache')), cniExec, logger.child({ component: 'network' }));
    this.sandboxes = new SandboxManager({
      root: config.root,
      runroot: config.runroot,
      shmSizeBytes: () => parseQuantity(this.config.sandbox.shm_size) ?? 64 * 1024 * 1024,
      podInit: () => this.config.sandbox.pod_init,
      runtimeHandlers: () => this.runtimes.list().map((h) => h.name),
      defaultRuntimeHandler: () => this.runtimes.defaultHandler,
      cgroupDriver: config.cgroup_manager,
      userNamespaces: () => this.userNamespaces,
      network: networks,
      logger: logger.child({ component: 'sandbox' }),
    });
    this.storage = new Storage({ root: config.root, logger: logger.child({ component: 'storage' }) });
    this.images = new ImageService({
      dir: join(config.root, 'images'),
      hosts: () => registryHosts(this.config.image, logger.child({ component: 'image' })),
      storage: this.storage,
      logger: logger.child({ component: 'image' }),
    });
    this.containers = new ContainerManager({
      root: config.root,
      runroot: config.runroot,
      conmon: () => this.config.conmon.path,
      logSizeMax: () => parseQuantity(this.config.containers.log_size_max) ?? 0,
      defaultUlimits: () => this.config.containers.default_ulimits,
      appArmorDefaultProfile: () => this.config.containers.apparmor_default_profile,
      cgroupDriver: config.cgroup_manager,
      rootfs: this.storage.rootfs,
      runtimes: this.runtimes,
      logger: logger.child({ component: 'runtime' }),
    });
    this.streaming = new StreamingServer(
      {
        address: config.streaming.address,
        port: config.streaming.port,
        idleTimeoutMs: () => parseDuration(this.config.streaming.idle_timeout) ?? 4 * 3600_000,
        tokenTtlMs: () => parseDuration(this.config.streaming.token_ttl) ?? 60_000,
      },
      streamBackend(this.containers, this.sandboxes),
      logger.child({ component: 'streaming' }),
    );
    this.events = new ContainerEvents(this.sandboxes, this.containers, config.containers.events_buffer, logger.child({ component: 'events' }));
    this.stats = new StatsSource(
      this.sandboxes,
      this.containers,
      () => parseDuration(this.config.stats.collection_period) ?? 0,
      logger.child({ component: 'stats' }),
    );
    const deps: CriDeps = {
      sandboxes: this.sandboxes,
      containers: this.containers,
      images: this.images,
      networks,
      pods: new PodLifecycle(this.sandboxes, this.containers),
      creation: new ContainerCreation(this.sandboxes, this.images, this.containers, join(config.runroot, 'checkpoints')),
      streaming: this.streaming,
      runtimeInfo: {
        config: () => this.config,
        runtimeReadiness: () => this.runtimes.readiness(),
        networkReadiness: () => this.network.readiness(),
        runtimeHandlers: () => this.runtimes.list(),
        defaultRuntimeHandler: () => this.runtimes.defaultHandler,
        cgroupDriver: config.cgroup_manager,
        configFiles: () => this.configFiles,
        pulls: () => this.images.pullsUnderWay(),
      },
      writable: { mountpoint: this.storage.rootfs.dir, usage: () => this.storage.rootfs.totalUsage() },
      runroot: config.runroot,
      logger: logger.child({ component: 'orchestration' }),
      events: this.events,
      stats: this.stats,
    };
    this.reclaim = new QuietReclaim({ trim: () => loadNative().mallocTrim(), logger: logger.child({ component: 'memory' }) });
    this.server = new CriServer(config.listen, logger.child({ component: 'cri' }), {
      runtime: runtimeServiceHandlers(deps),
      image: imageServiceHandlers(deps),
    });
  }

  get logger() {
    return this.log.logger;
  }

  /** Serves Version as soon as the socket is bound; the rest once state is loaded. */
  async start(): Promise<void> {
    loadNative();
    this.lock.acquire(this.config.root);
    this.lock.acquire(this.config.runroot);
    await this.server.listen();
    await this.streaming.start().catch((err: unknown) => {
      throw new StartupError(`cannot start the streaming server on ${this.config.streaming.address}:${this.config.streaming.port}: ${errorMessage(err)}`);
    });
    await this.startMetrics();
    const { endpoint, sampling_rate_per_million } = this.config.tracing;
    if (endpoint !== '') this.traceExport = await startTraceExport(endpoint, sampling_rate_per_million, this.logger.child({ component: 'tracing' }));
    await this.recover();
    this.stats.start();
    this.server.gate.open();
    this.logger.info('ready', { version: packageVersion, startupMs: Math.round(performance.now()) });
    this.reclaim.start();
  }

  /** The Prometheus endpoint, when `[metrics]` names an address. */
  private async startMetrics(): Promise<void> {
    const { address, port } = this.config.metrics;
    if (address === '') return;
    const count = (states: string[]) => {
      const n: Record<string, number> = {};
      for (const s of states) n[s] = (n[s] ?? 0) + 1;
      return n;
    };
    this.metricsEndpoint = await startMetricsEndpoint(
      address,
      port,
      {
        containers: () => count(this.containers.list().map((c) => containerState(c))),
        pods: () => count(this.sandboxes.list().map((p) => (isReady(p) ? 'ready' : 'notready'))),
        conmonProcesses: () => this.containers.list().filter((c) => c.finishedAt === undefined && c.pid !== undefined).length,
        eventSubscribers: () => this.events.subscribers,
      },
      this.logger.child({ component: 'metrics' }),
    ).catch((err: unknown) => {
      throw new StartupError(`cannot serve metrics on ${address}:${port}: ${errorMessage(err)}`);
    });
  }

  private async recover(): Promise<void> {
    const [userNamespaces] = await Promise.all([
      probeIdmappedLayers(join(this.config.root, 'images'), [join(this.config.root, 'containers'), join(this.config.runroot, 'containers')], this.logger),
      this.runtimes.refresh(this.config),
      this.network.start(),
      // What pod checkpoints a killed daemon was gathering.
      rm(join(this.config.runroot, 'checkpoints'), { recursive: true, force: true }),
    ]);
    this.userNamespaces = userNamespaces;
    this.runtimes.setUserNamespaces(userNamespaces);
    await recoverState({ storage: this.storage, sandboxes: this.sandboxes, images: this.images, containers: this.containers, logger: this.logger });
    const runtime = this.runtimes.readiness();
    if (!runtime.ready) this.logger.warn('runtime not ready', { reason: runtime.reason, message: runtime.message });
  }

  /** SIGHUP: re-read the config files; apply what can change live. */
  async reload(): Promise<void> {
    let next: CradleConfig;
    try {
      const loaded = loadConfig(this.source);
      next = loaded.config;
      this.configFiles = loaded.files;
    } catch (err) {
      this.logger.error('config reload failed; keeping the running config', { error: errorMessage(err) });
      return;
    }
    const plan = planReload(this.config, next);
    this.config = plan.effective;
    this.log.setLevel(plan.effective.log.level);
    this.log.setFormat(plan.effective.log.format);
    await this.runtimes.refresh(plan.effective);
    for (const c of plan.applied) this.logger.info('config changed', { key: c.key, from: c.before, to: c.after });
    if (plan.applied.some((c) => c.key === 'stats.collection_period')) this.stats.start();
    for (const c of plan.needsRestart) this.logger.warn('config change takes effect after a restart', { key: c.key, from: c.before, to: c.after });
    if (plan.applied.length === 0 && plan.needsRestart.length === 0) this.logger.info('config reloaded: nothing changed');
  }

  /** Stops accepting, lets in-flight RPCs finish within shutdown_timeout, removes the socket. */
  stop(signal: string): Promise<void> {
    if (this.stopping) return this.stopping;
    this.logger.info('shutting down', { signal });
    this.stopping = (async () => {
      this.server.gate.close('cradle is shutting down');
      await this.server.shutdown(parseDuration(this.config.shutdown_timeout) ?? 10_000);
      // Removals answered already finish now rather than at the next start.
      await this.containers.removalsSettled();
      await this.streaming.stop();
      await this.metricsEndpoint?.close();
      // The last calls' spans are sent before the process goes.
      await this.traceExport?.close();
      this.network.stop();
      this.stats.stop();
      this.reclaim.stop();
      this.containers.stopWatching();
      this.sandboxes.stopWatching();
      this.lock.release();
      this.logger.info('stopped');
      await this.log.close();
    })();
    return this.stopping;
  }
}

/**
 * A test-only switch (the environment names a signal): on that signal the
 * event loop blocks for good, as a wedged daemon's would, so the watchdog
 * can be seen to restart it. Nothing sets it outside tests.
 */
function blockOnSignalForTests(signal: string | undefined): void {
  if (!signal) return;
  process.on(signal as NodeJS.Signals, () => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  });
}

/** `cradle daemon`: runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function runDaemon(source: ConfigSource): Promise<number> {
  const { config, files } = loadConfig(source);
  const daemon = new Daemon(source, config, files);
  const systemd = SystemdNotifier.fromEnvironment(process.env, daemon.logger.child({ component: 'systemd' }));
  const self = new CriClient(config.listen);
  const done = new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      systemd.stopping();
      self.close();
      void daemon.stop(signal).then(() => resolve(0));
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => void daemon.reload());
  });
  process.on('unhandledRejection', (reason) => {
    daemon.logger.error('unhandled promise rejection', { error: errorMessage(reason), stack: reason instanceof Error ? reason.stack : undefined });
  });
  try {
    await daemon.start();
  } catch (err) {
    self.close();
    await daemon.stop('start-up failure').catch(() => undefined);
    throw new StartupError(errorMessage(err));
  }
  systemd.ready('serving CRI');
  // The watchdog's self-check: the event loop turns and the CRI socket answers Status.
  systemd.startWatchdog(async (timeoutMs) => {
    await self.runtime.call('Status', {}, { timeoutMs });
  });
  blockOnSignalForTests(process.env.CRADLE_TEST_BLOCK_EVENT_LOOP_ON);
  return done;
}
