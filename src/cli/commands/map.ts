/**
 * `rxnat map`: maps one or more ports, keeps them alive, prints every state change, deletes on
 * exit. (`map --leave` is in leave.ts.)
 *
 * @packageDocumentation
 */
import { ReplaySubject, share, type Observable, type Subscription } from 'rxjs';
import type { Nat } from '../../core/nat.js';
import { mapPort, type MappingState } from '../../core/map-port.js';
import { DEFAULT_LIFETIME_SECONDS } from '../../core/validate.js';
import { GatewayError, UnconfirmedDeleteError } from '../../errors.js';
import { parseNatSpec } from '../../nat-spec.js';
import { CloseTimeoutError, defaultCloseTimeoutMs, PendingDelete } from '../../facade/pending-delete.js';
import type { CommonArgs, MappingSpec } from '../args.js';
import {
  clock,
  deletedLine,
  hostOf,
  describeFailure,
  mappingEvent,
  progress,
  stateJson,
  stateLine,
  unconfirmedDeleteLine,
  unconfirmedDeleteLines,
  type MappingEvent,
} from '../format.js';
import { cliLog, loadNatSource, writeJson, type CliIo } from './common.js';

/**
 * The arguments of `rxnat map`.
 *
 * @example
 * ```ts
 * const args = parseCliArgs(['map', 'tcp', '8080', 'udp', '4001:14001', '--duration', '60']);
 * if (args.command === 'map') await mapCommand(args, io, signals);
 * ```
 */
export interface MapArgs extends CommonArgs {
  /** At least one. */
  readonly mappings: readonly MappingSpec[];
  readonly lifetimeSeconds: number | undefined;
  readonly description: string | undefined;
  readonly durationSeconds: number | undefined;
  readonly keepTrying: boolean;
  readonly leave: boolean;
  /** `--internal-address`: the IPv6 address to open (with `--ipv6`). */
  readonly internalAddress?: string | undefined;
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

/** One mapping of the command line and what its stream has shown so far. */
interface Run {
  readonly index: number;
  /** `tcp 8080`, for messages. */
  readonly label: string;
  readonly pending: PendingDelete;
  previous: MappingState | undefined;
  mappedOnce: boolean;
  /** Its stream ended (or the stop bound passed): `final` is its last state. */
  done: boolean;
  final: MappingState | undefined;
  /** Why its first mapping could not be made (ends the command, unless --keep-trying). */
  failure: Error | null;
  /**
   * The backends (`protocol gateway`) that refused its first mapping with a "not here" code
   * while the NAT source is the race: the stream moves on to another backend, and only a
   * second such refusal by one of them (the race found nothing else) ends the command.
   */
  readonly refusedHere: Set<string>;
  subscription: Subscription | undefined;
}

/**
 * `rxnat map`: adds every mapping through `mapPort` (which renews it, follows external IP
 * changes and gateway reboots), all at once over one shared discovery, and prints each state.
 * On SIGINT/SIGTERM or after `--duration` it asks every stream to stop (delete, then a last
 * `unmapped`), also while an add is in flight, and resolves 0 once the gateway confirmed every
 * delete. For each mapping whose last state carries an {@link UnconfirmedDeleteError} (the
 * gateway refused the delete or did not answer it), or whose stop is still unsettled after the
 * bound (25 s for one mapping, 10 s more for each other), it prints one line on stderr, with
 * when its lease ends and how to remove it, and resolves 1 (with `--json` that mapping's last
 * JSON object's `error` lists it under `deletes`). A second signal exits 130 at once. Unless
 * `--keep-trying`, a mapping whose first add fails (no gateway, refused) stops them all and
 * resolves 1; with `--nat any`, a backend's "not here" refusal (`GatewayError.notHere`: PCP or
 * NAT-PMP answer but will not map) is not a failure while the race can move the mapping to
 * another backend, only a second one from the same backend is.
 *
 * @example
 * ```ts
 * process.exitCode = await mapCommand({ ...args, mappings: [{ protocol: 'tcp', internalPort: 8080, externalPort: undefined }] }, io, signals);
 * ```
 */
export async function mapCommand(args: MapArgs, io: CliIo, signals: SignalSource): Promise<number> {
  // The backend's module is loaded before any clock starts (--duration counts from here).
  // One discovery for every mapping: the streams subscribe at once and share it. share() resets
  // when it completes, so a stream that later rediscovers its gateway starts a discovery of its own.
  const nat$ = (await loadNatSource('map', args, io)).pipe(share());
  return mapAll(nat$, args, io, signals);
}

/** {@link mapCommand} once its NAT source is loaded. */
function mapAll(nat$: Observable<Nat>, args: MapArgs, io: CliIo, signals: SignalSource): Promise<number> {
  const count = args.mappings.length;
  // loadNatSource parsed the spec already: this cannot throw.
  const racing = parseNatSpec(args.nat).mechanism === 'any';
  /** A refusal the race moves away from: the first "not here" of a backend. */
  const movesOn = (run: Run, error: Error): boolean => {
    if (!racing || !(error instanceof GatewayError) || !error.notHere) return false;
    const backend = `${error.protocol} ${error.gateway}`;
    if (run.refusedHere.has(backend)) return false;
    run.refusedHere.add(backend);
    return true;
  };
  const stopBoundMs = defaultCloseTimeoutMs(undefined, count);
  // Replayed: a stop requested while no part of mapPort listens (between retries) is not lost.
  const stop$ = new ReplaySubject<void>(1);
  const view = new MapView(args.json, io, count);
  const runs: Run[] = args.mappings.map((spec, index) => ({
    index,
    label: `${spec.protocol} ${spec.internalPort}`,
    pending: new PendingDelete({
      externalPort: spec.externalPort ?? spec.internalPort,
      lifetimeSeconds: args.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS,
    }),
    previous: undefined,
    mappedOnce: false,
    done: false,
    final: undefined,
    failure: null,
    refusedHere: new Set<string>(),
    subscription: undefined,
  }));

  return new Promise<number>((resolve, reject) => {
    let stopping = false;
    /** Stopped by a signal or --duration (not by a failure). */
    let asked = false;
    let finished = false;
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
    /** Every stream ended (or the stop bound passed): report, and resolve the exit code. */
    const finish = (): void => {
      cleanup();
      let code = 0;
      for (const run of runs) {
        if (run.failure === null) continue;
        io.stderr.write(`rxnat: ${count > 1 ? `${run.label}: ` : ''}${describeFailure(run.failure).message}\n`);
        code = 1;
      }
      for (const run of runs) {
        const last = run.final;
        if (last?.status !== 'unmapped' || !(last.error instanceof UnconfirmedDeleteError)) continue;
        for (const line of unconfirmedDeleteLines(last.error, args)) io.stderr.write(`rxnat: ${line}\n`);
        code = 1;
      }
      resolve(code);
    };
    const settle = (run: Run): void => {
      run.done = true;
      run.final = run.pending.state;
      if (!finished && runs.every((r) => r.done)) finish();
    };
    /** The stop bound passed before some streams' last state: what they may still hold is unconfirmed. */
    const giveUp = (): void => {
      if (finished) return;
      for (const run of runs) {
        if (run.done) continue;
        run.done = true;
        run.subscription?.unsubscribe();
        const entry = run.pending.unconfirmed(Date.now(), (gateway) => new CloseTimeoutError(gateway, stopBoundMs));
        const last = run.pending.state;
        if (entry === null || last === undefined) {
          run.final = last;
          continue;
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
        view.state(run.index, final, 'unmapped', true);
        run.final = final;
      }
      finish();
    };
    const stop = (reason: string, quietly = false): void => {
      if (stopping) return;
      stopping = true;
      cliLog(io, `stopping: ${reason}`);
      const what =
        count === 1
          ? `the mapping${runs[0]!.mappedOnce ? '' : ' (if the add went through)'}`
          : `the ${asked ? '' : 'other '}mappings${runs.every((r) => r.mappedOnce || r.failure !== null) ? '' : ' (those whose add went through)'}`;
      view.stopping(quietly ? undefined : `${reason}: deleting ${what}... (Ctrl-C again to quit at once)`);
      boundTimer = setTimeout(giveUp, stopBoundMs);
      stop$.next();
    };
    function onSignal(): void {
      if (stopping) {
        io.stderr.write('\nrxnat: quitting without waiting for the delete\n');
        signals.exitNow(130);
        return;
      }
      asked = true;
      stop('interrupted');
    }
    // Signal handlers go in before anything is sent: a signal during the add still deletes.
    signals.on('SIGINT', onSignal);
    signals.on('SIGTERM', onSignal);
    if (args.durationSeconds !== undefined) {
      durationTimer = setTimeout(() => {
        asked = true;
        stop(`--duration ${args.durationSeconds} s elapsed`);
      }, args.durationSeconds * 1000);
    }

    for (const run of runs) {
      if (finished) break;
      const spec = args.mappings[run.index]!;
      const request = {
        protocol: spec.protocol,
        internalPort: spec.internalPort,
        ...(spec.externalPort !== undefined ? { externalPort: spec.externalPort } : {}),
        ...(args.lifetimeSeconds !== undefined ? { lifetimeSeconds: args.lifetimeSeconds } : {}),
        ...(args.description !== undefined ? { description: args.description } : {}),
        ...(args.ipv6 === true ? { family: 'ipv6' as const } : {}),
        ...(args.internalAddress !== undefined ? { internalAddress: args.internalAddress } : {}),
      };
      cliLog(io, 'mapping', { ...request, nat: args.nat });
      run.subscription = mapPort(nat$, request, { stop: stop$, logger: io.logger }).subscribe({
        next: (state) => {
          if (finished || run.done) return;
          const event = mappingEvent(state, run.previous);
          run.previous = state;
          run.pending.observe(state);
          if (state.status === 'mapped') run.mappedOnce = true;
          view.state(run.index, state, event, stopping);
          const failed =
            state.status === 'unmapped' && !run.mappedOnce && state.error !== null && !(state.error instanceof UnconfirmedDeleteError) && !movesOn(run, state.error);
          if (failed && !asked && !args.keepTrying && run.failure === null) {
            run.failure = state.error;
            if (count === 1 || !runs.some((r) => r.mappedOnce)) stop(count === 1 ? 'the first mapping failed' : `${run.label} could not be mapped`, true);
            else stop(`${run.label} could not be mapped`);
          }
        },
        error: (error: unknown) => {
          if (finished) return;
          cleanup();
          for (const other of runs) other.subscription?.unsubscribe();
          reject(error);
        },
        complete: () => {
          if (!finished && !run.done) settle(run);
        },
      });
    }
  });
}

/** What the view remembers of one mapping. */
interface Slot {
  current: MappingState | undefined;
  mappedAtMs: number;
  grantedAtMs: number;
  lastMapped: MappingState | undefined;
}

/**
 * How `rxnat map` shows states: JSON lines; plain timestamped lines when stdout is not a
 * terminal; on a terminal the same lines plus a live status line at the bottom (time mapped,
 * next renewal; with several mappings, how many are mapped), redrawn every second.
 */
class MapView {
  private readonly live: boolean;
  private readonly slots: Slot[];
  private footer: NodeJS.Timeout | undefined;
  private stopRequested = false;
  private endProgress: (() => void) | undefined;
  /** A stop after a failure: the last (error-free) `unmapped` of a mapping never made is not worth a line for people. */
  private quiet = false;

  constructor(
    private readonly json: boolean,
    private readonly io: CliIo,
    count: number,
  ) {
    this.slots = Array.from({ length: count }, () => ({ current: undefined, mappedAtMs: 0, grantedAtMs: 0, lastMapped: undefined }));
    this.live = !json && io.stdout.isTTY === true;
    if (this.live) {
      this.footer = setInterval(() => this.drawFooter(), 1000);
      this.footer.unref();
    } else {
      // No live line on stdout (JSON, or a pipe): discovery's progress goes to stderr, if a terminal.
      this.endProgress = progress(io.stderr, 'looking for a gateway');
    }
  }

  state(index: number, state: MappingState, event: MappingEvent, stopping: boolean): void {
    const slot = this.slots[index]!;
    const before = slot.current;
    const now = Date.now();
    if (state.status !== 'mapping') this.stopProgress();
    if (state.status === 'mapped') {
      if (slot.current?.status !== 'mapped' && slot.current?.status !== 'degraded') slot.mappedAtMs = now;
      slot.grantedAtMs = now;
      slot.lastMapped = state;
    }
    slot.current = state;
    if (this.json) {
      writeJson(this.io, stateJson(state, event, new Date(now)));
      return;
    }
    let line = stateLine(state, event);
    if (stopping && state.status === 'unmapped') {
      if (state.error === null && slot.lastMapped) line = deletedLine(slot.lastMapped);
      // A mapping never made, stopped after it failed: its error-free last state adds nothing.
      else if (state.error === null && (this.quiet || before?.status === 'unmapped')) return;
      else if (state.error instanceof UnconfirmedDeleteError && slot.lastMapped) line = unconfirmedDeleteLine(slot.lastMapped);
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
    if (!this.live || this.slots.every((s) => s.current === undefined)) return;
    const now = Date.now();
    const several = this.slots.length > 1;
    let text: string;
    if (this.stopRequested) {
      text = `  deleting the mapping${several ? 's' : ''}... | Ctrl-C again quits at once`;
    } else if (several) {
      const mapped = this.slots.filter((s) => s.current?.status === 'mapped');
      const up = mapped.length > 0 ? `, up ${formatDuration(now - Math.min(...mapped.map((s) => s.mappedAtMs)))}` : '';
      const ports = mapped.map((s) => `${s.current!.protocol} ${hostOf(s.current!.externalIp)}:${s.current!.externalPort}`).join(', ');
      text = `  ${mapped.length} of ${this.slots.length} mapped${ports ? `: ${ports}` : ''}${up} | Ctrl-C deletes the mappings`;
    } else {
      const slot = this.slots[0]!;
      const state = slot.current!;
      if (state.status === 'mapped') {
        const up = formatDuration(now - slot.mappedAtMs);
        const renewIn = state.lifetimeSeconds ? Math.max(0, Math.round((slot.grantedAtMs + (state.lifetimeSeconds * 1000) / 3 - now) / 1000)) : null;
        text = `  ${hostOf(state.externalIp)}:${state.externalPort} up ${up}${renewIn !== null ? `, renews in ~${renewIn} s` : ''} | Ctrl-C deletes the mapping`;
      } else {
        text = `  ${state.status === 'mapping' ? 'mapping' : `${state.status}, retrying`}... | Ctrl-C to stop`;
      }
    }
    const width = this.io.stdout.columns || 80;
    this.io.stdout.write(`\r\x1b[K${text.slice(0, Math.max(10, width - 1))}`);
  }
}

function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}
