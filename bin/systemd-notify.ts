import type { Logger } from '../core/logger.js';
import { errorMessage } from '../core/errors.js';
import { timerMs } from '../core/timers.js';
import { loadNative } from '../native/index.js';

/**
 * systemd's notify protocol (Type=notify): READY=1 once the daemon answers
 * every RPC, STOPPING=1 when it begins to stop, and WATCHDOG=1 while a real
 * self-check passes. Datagrams go through the addon (Node has no unix
 * datagram sockets). Without NOTIFY_SOCKET (not under systemd) it does nothing.
 */
export class SystemdNotifier {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  private constructor(
    private readonly socket: string | undefined,
    /** Half the watchdog period systemd was given: a ping per half leaves a missed one room. */
    private readonly pingEveryMs: number | undefined,
    private readonly logger: Logger,
  ) {}

  /**
   * Reads systemd's variables and removes them from the environment: conmon
   * and the OCI runtimes inherit it, and runc would take NOTIFY_SOCKET as a
   * container's request to notify.
   */
  static fromEnvironment(env: NodeJS.ProcessEnv, logger: Logger): SystemdNotifier {
    const socket = env.NOTIFY_SOCKET || undefined;
    const usec = Number(env.WATCHDOG_USEC);
    const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
    for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete env[k];
    const pingEveryMs = socket && forUs && Number.isFinite(usec) && usec > 0 ? Math.max(1, timerMs(Math.floor(usec / 2000))) : undefined;
    return new SystemdNotifier(socket, pingEveryMs, logger);
  }

  private send(message: string): void {
    if (!this.socket) return;
    try {
      loadNative().sdNotify(this.socket, message);
    } catch (err) {
      this.logger.warn('cannot notify systemd', { socket: this.socket, error: errorMessage(err) });
    }
  }

  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${status}\nMAINPID=${process.pid}`);
  }

  stopping(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.send('STOPPING=1');
  }

  /**
   * Pings the watchdog after each passing `check` (bounded by the ping
   * period): a blocked event loop, or a daemon that cannot answer its own
   * socket, stops the pings and systemd restarts it.
   */
  startWatchdog(check: (timeoutMs: number) => Promise<void>): void {
    const every = this.pingEveryMs;
    if (every === undefined) return;
    this.logger.info('systemd watchdog on', { pingEveryMs: every });
    const round = async () => {
      try {
        await check(every);
        if (!this.stopped) this.send('WATCHDOG=1');
      } catch (err) {
        this.logger.warn('watchdog self-check failed; not pinging systemd', { error: errorMessage(err) });
      }
      if (!this.stopped) this.timer = setTimeout(() => void round(), every).unref();
    };
    this.timer = setTimeout(() => void round(), every).unref();
  }
}
