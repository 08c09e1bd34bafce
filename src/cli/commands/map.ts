/**
 * `rxnat map`: maps a port, keeps it alive, prints every state change, deletes on exit.
 *
 * @packageDocumentation
 */
import { ReplaySubject, type Subscription } from 'rxjs';
import { mapPort, type MappingState } from '../../core/map-port.js';
import type { MappingProtocol } from '../../core/nat.js';
import { DEFAULT_LIFETIME_SECONDS } from '../../core/validate.js';
import { UnconfirmedDeleteError } from '../../errors.js';
import { CloseTimeoutError, defaultCloseTimeoutMs, PendingDelete } from '../../facade/pending-delete.js';
import type { CommonArgs } from '../args.js';
import {
  clock,
  deletedLine,
  describeFailure,
  mappingEvent,
  progress,
  stateJson,
  stateLine,
  unconfirmedDeleteLine,
  unconfirmedDeleteLines,
  type MappingEvent,
} from '../format.js';
import { cliLog, natSource, writeJson, type CliIo } from './common.js';

/**
 * The arguments of `rxnat map`.
 *
 * @example
 * ```ts
 * const args = parseCliArgs(['map', 'tcp', '8080', '--duration', '60']);
 * if (args.command === 'map') await mapCommand(args, io, signals);
 * ```
 */
export interface MapArgs extends CommonArgs {
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  readonly externalPort: number | undefined;
  readonly lifetimeSeconds: number | undefined;
  readonly description: string | undefined;
  readonly durationSeconds: number | undefined;
  readonly keepTrying: boolean;
}

/**
 * Where `rxnat map` hears SIGINT/SIGTERM, and how it exits at once on a second one.
 *
 * @example
 * ```ts
 * const signals: SignalSource = { on: (s, f) => process.on(s, f), off: (s, f) => process.off(s, f), exitNow: (c) => process.exit(c) };
 * ```
 */
export interface SignalSource {
  on(signal: 'SIGINT' | 'SIGTERM', listener: () => void): void;
  off(signal: 'SIGINT' | 'SIGTERM', listener: () => void): void;
  /** Exits at once (second signal). */
  exitNow(code: number): void;
}

/**
 * How long after a stop request the CLI waits for mapPort's last state before giving up: a
 * backstop above mapPort's own teardown bound (an add in flight, then the delete, 10 s each),
 * so that mapPort's answer, which names exactly what is unconfirmed, normally comes first.
 */
const STOP_BOUND_MS = defaultCloseTimeoutMs(undefined);

/**
 * `rxnat map`: adds the mapping through `mapPort` (which renews it, follows external IP
 * changes and gateway reboots) and prints each state. On SIGINT/SIGTERM or after `--duration`
 * it asks mapPort to stop (delete, then a last `unmapped`), also while the add is in flight,
 * and resolves 0 once the gateway confirmed the delete. When the last state carries an
 * {@link UnconfirmedDeleteError} (the gateway refused a delete or did not answer it), or the
 * stop is still unsettled after 25 s, it prints one line per mapping that may stay on stderr,
 * with when its lease ends and how to remove it, and resolves 1 (with `--json` the last JSON
 * object's `error` lists them under `deletes`). A second signal exits 130 at once. Unless
 * `--keep-trying`, a first mapping that fails (no gateway, refused) stops and resolves 1.
 *
 * @example
 * ```ts
 * process.exitCode = await mapCommand({ ...args, protocol: 'tcp', internalPort: 8080 }, io, signals);
 * ```
 */
export function mapCommand(args: MapArgs, io: CliIo, signals: SignalSource): Promise<number> {
  const nat$ = natSource('map', args, io);
  const request = {
    protocol: args.protocol,
    internalPort: args.internalPort,
    ...(args.externalPort !== undefined ? { externalPort: args.externalPort } : {}),
    ...(args.lifetimeSeconds !== undefined ? { lifetimeSeconds: args.lifetimeSeconds } : {}),
    ...(args.description !== undefined ? { description: args.description } : {}),
  };
  // Replayed: a stop requested while no part of mapPort listens (between retries) is not lost.
  const stop$ = new ReplaySubject<void>(1);
  const view = new MapView(args.json, io);
  const pending = new PendingDelete({
    externalPort: args.externalPort ?? args.internalPort,
    lifetimeSeconds: args.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS,
  });

  return new Promise<number>((resolve, reject) => {
    let stopping = false;
    let finished = false;
    let mappedOnce = false;
    let failure: Error | null = null;
    let previous: MappingState | undefined;
    let durationTimer: NodeJS.Timeout | undefined;
    let boundTimer: NodeJS.Timeout | undefined;

    const cleanup = (): void => {
      finished = true;
      signals.off('SIGINT', onSignal);
      signals.off('SIGTERM', onSignal);
      clearTimeout(durationTimer);
      clearTimeout(boundTimer);
      view.close();
    };
    /** The stream ended (or the stop bound passed) with `last`: report, and resolve the exit code. */
    const finish = (last: MappingState | undefined): void => {
      cleanup();
      let code = 0;
      if (failure) {
        io.stderr.write(`rxnat: ${describeFailure(failure).message}\n`);
        code = 1;
      }
      if (last?.status === 'unmapped' && last.error instanceof UnconfirmedDeleteError) {
        for (const line of unconfirmedDeleteLines(last.error, args)) io.stderr.write(`rxnat: ${line}\n`);
        code = 1;
      }
      resolve(code);
    };
    /** The stop bound passed before mapPort's last state: what may still be mapped is unconfirmed. */
    const giveUp = (): void => {
      if (finished) return;
      subscription.unsubscribe();
      const entry = pending.unconfirmed(Date.now(), (gateway) => new CloseTimeoutError(gateway, STOP_BOUND_MS));
      const last = pending.state;
      if (entry === null || last === undefined) {
        finish(last);
        return;
      }
      const final: MappingState = {
        ...last,
        status: 'unmapped',
        externalPort: 0,
        externalIp: null,
        lifetimeSeconds: null,
        doubleNat: false,
        error: new UnconfirmedDeleteError([entry]),
      };
      view.state(final, 'unmapped', true);
      finish(final);
    };
    const stop = (reason: string, quietly = false): void => {
      if (stopping) return;
      stopping = true;
      cliLog(io, `stopping: ${reason}`);
      view.stopping(quietly ? undefined : `${reason}: deleting the mapping${mappedOnce ? '' : ' (if the add went through)'}... (Ctrl-C again to quit at once)`);
      boundTimer = setTimeout(giveUp, STOP_BOUND_MS);
      stop$.next();
    };
    function onSignal(): void {
      if (stopping) {
        io.stderr.write('\nrxnat: quitting without waiting for the delete\n');
        signals.exitNow(130);
        return;
      }
      stop('interrupted');
    }
    // Signal handlers go in before anything is sent: a signal during the add still deletes.
    signals.on('SIGINT', onSignal);
    signals.on('SIGTERM', onSignal);
    if (args.durationSeconds !== undefined) {
      durationTimer = setTimeout(() => stop(`--duration ${args.durationSeconds} s elapsed`), args.durationSeconds * 1000);
    }

    cliLog(io, 'mapping', { ...request, nat: args.nat });
    // Referenced by giveUp, which runs on a timer only: assigned by then.
    const subscription: Subscription = mapPort(nat$, request, { stop: stop$, logger: io.logger }).subscribe({
      next: (state) => {
        if (finished) return;
        const event = mappingEvent(state, previous);
        previous = state;
        pending.observe(state);
        if (state.status === 'mapped') mappedOnce = true;
        view.state(state, event, stopping);
        if (state.status === 'unmapped' && !mappedOnce && !stopping && !args.keepTrying) {
          failure = state.error ?? new Error('the mapping could not be made');
          stop('the first mapping failed', true);
        }
      },
      error: (error: unknown) => {
        if (finished) return;
        cleanup();
        reject(error);
      },
      complete: () => {
        if (!finished) finish(pending.state);
      },
    });
  });
}

/**
 * How `rxnat map` shows states: JSON lines; plain timestamped lines when stdout is not a
 * terminal; on a terminal the same lines plus a live status line at the bottom (time mapped,
 * next renewal), redrawn every second.
 */
class MapView {
  private readonly live: boolean;
  private footer: NodeJS.Timeout | undefined;
  private current: MappingState | undefined;
  private mappedAtMs = 0;
  private grantedAtMs = 0;
  private lastMapped: MappingState | undefined;
  private stopRequested = false;
  private endProgress: (() => void) | undefined;
  /** A stop after a failure: its last (error-free) `unmapped` is not worth a line for people. */
  private quiet = false;

  constructor(
    private readonly json: boolean,
    private readonly io: CliIo,
  ) {
    this.live = !json && io.stdout.isTTY === true;
    if (this.live) {
      this.footer = setInterval(() => this.drawFooter(), 1000);
      this.footer.unref();
    } else {
      // No live line on stdout (JSON, or a pipe): discovery's progress goes to stderr, if a terminal.
      this.endProgress = progress(io.stderr, 'looking for a gateway');
    }
  }

  state(state: MappingState, event: MappingEvent, stopping: boolean): void {
    const now = Date.now();
    if (state.status !== 'mapping') this.stopProgress();
    if (state.status === 'mapped') {
      if (this.current?.status !== 'mapped' && this.current?.status !== 'degraded') this.mappedAtMs = now;
      this.grantedAtMs = now;
      this.lastMapped = state;
    }
    this.current = state;
    if (this.json) {
      writeJson(this.io, stateJson(state, event, new Date(now)));
      return;
    }
    if (this.quiet && state.status === 'unmapped' && state.error === null) return;
    let line = stateLine(state, event);
    if (stopping && state.status === 'unmapped' && this.lastMapped) {
      if (state.error === null) line = deletedLine(this.lastMapped);
      else if (state.error instanceof UnconfirmedDeleteError) line = unconfirmedDeleteLine(this.lastMapped);
    }
    this.clearFooter();
    this.io.stdout.write(`${clock(new Date(now))} ${line}\n`);
    this.drawFooter();
  }

  /** The stop began: says so on stderr (kept clear of the live line) unless `message` is undefined. */
  stopping(message: string | undefined): void {
    this.stopRequested = true;
    this.quiet = message === undefined;
    this.stopProgress();
    if (message === undefined) return;
    this.clearFooter();
    this.io.stderr.write(`rxnat: ${message}\n`);
    this.drawFooter();
  }

  close(): void {
    this.stopProgress();
    clearInterval(this.footer);
    this.clearFooter();
  }

  private stopProgress(): void {
    this.endProgress?.();
    this.endProgress = undefined;
  }

  private clearFooter(): void {
    if (this.live) this.io.stdout.write('\r\x1b[K');
  }

  private drawFooter(): void {
    const state = this.current;
    if (!this.live || !state) return;
    const now = Date.now();
    let text: string;
    if (this.stopRequested) {
      text = '  deleting the mapping... | Ctrl-C again quits at once';
    } else if (state.status === 'mapped') {
      const up = formatDuration(now - this.mappedAtMs);
      const renewIn = state.lifetimeSeconds ? Math.max(0, Math.round((this.grantedAtMs + (state.lifetimeSeconds * 1000) / 3 - now) / 1000)) : null;
      text = `  ${state.externalIp ?? '?'}:${state.externalPort} up ${up}${renewIn !== null ? `, renews in ~${renewIn} s` : ''} | Ctrl-C deletes the mapping`;
    } else {
      text = `  ${state.status === 'mapping' ? 'mapping' : `${state.status}, retrying`}... | Ctrl-C to stop`;
    }
    const width = this.io.stdout.columns || 80;
    this.io.stdout.write(`\r\x1b[K${text.slice(0, Math.max(10, width - 1))}`);
  }
}

function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}
