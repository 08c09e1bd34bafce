/**
 * What the facades and the CLI report when they stop waiting for a mapping stream to end
 * (their own bound passed before the core's answer): the mapping, as far as the states seen so
 * far tell, as an {@link UnconfirmedDelete}. Shared by `natService().close()`, `natMap` and
 * `rxnat map`.
 *
 * @packageDocumentation
 */
import type { MappingState } from '../core/map-port.js';
import { RxnatError, type UnconfirmedDelete } from '../errors.js';

/** The core's default `teardownTimeoutMs` (bound on an add in flight at teardown, and on each delete). */
const CORE_TEARDOWN_TIMEOUT_MS = 10_000;

/** What the outer bound adds on top of the core's own (queueing, a second delete, slow machines). */
const CLOSE_BOUND_MARGIN_MS = 5_000;

/**
 * The default outer bound on waiting for stopped mapping streams to end: `(mappings + 1) ×
 * teardownTimeoutMs + 5 000` ms (25 000 ms for one mapping with the core's default). The core
 * waits for an add in flight at most `teardownTimeoutMs` from its send, then bounds each delete
 * by `teardownTimeoutMs` from its send; deletes to one gateway may go one at a time (NAT-PMP and
 * PCP take one request at a time), so `mappings` closed together can need one bound each. The
 * core's own answer, which names exactly what is unconfirmed, so normally arrives first.
 *
 * @example
 * ```ts
 * defaultCloseTimeoutMs(undefined); // 25 000
 * defaultCloseTimeoutMs(300, 2);    // 5 900
 * ```
 */
export function defaultCloseTimeoutMs(teardownTimeoutMs: number | undefined, mappings = 1): number {
  const teardown =
    typeof teardownTimeoutMs === 'number' && Number.isFinite(teardownTimeoutMs) && teardownTimeoutMs > 0 ? teardownTimeoutMs : CORE_TEARDOWN_TIMEOUT_MS;
  return (Math.max(1, mappings) + 1) * teardown + CLOSE_BOUND_MARGIN_MS;
}

/**
 * A close (or `rxnat map`'s stop) gave up waiting for the mapping stream to end: the delete may
 * or may not have gone through. Found as the `error` of an {@link UnconfirmedDelete}.
 *
 * @example
 * ```ts
 * if (e instanceof UnconfirmedDeleteError && e.deletes.some((d) => d.error instanceof CloseTimeoutError)) console.log('gave up waiting');
 * ```
 */
export class CloseTimeoutError extends RxnatError {
  /** The bound that passed, in ms. */
  readonly timeoutMs: number;
  /** The NAT's name, for example `pmp(192.168.1.1)`. */
  readonly gateway: string;
  constructor(gateway: string, timeoutMs: number) {
    super('ERR_CLOSE_TIMEOUT', `${gateway} did not confirm the delete within ${timeoutMs} ms (gave up waiting)`);
    this.timeoutMs = timeoutMs;
    this.gateway = gateway;
  }
}

/**
 * Remembers, from a mapping's states, what may still be mapped: the latest state, the last
 * external port and lease granted. Turns that into an {@link UnconfirmedDelete} when the wait
 * for the stream's end is given up.
 *
 * @example
 * ```ts
 * const pending = new PendingDelete({ externalPort: 8080, lifetimeSeconds: 60 });
 * mapping$.subscribe((s) => pending.observe(s));
 * // bound passed:
 * const entry = pending.unconfirmed(Date.now(), (gateway) => new CloseTimeoutError(gateway, 25_000));
 * ```
 */
export class PendingDelete {
  private latest: MappingState | undefined;
  private grantedPort = 0;
  private grantedLifetimeSeconds: number | null = null;

  constructor(private readonly requested: { readonly externalPort: number; readonly lifetimeSeconds: number }) {}

  /** Takes in one state of the stream. */
  observe(state: MappingState): void {
    this.latest = state;
    if (state.externalPort !== 0) this.grantedPort = state.externalPort;
    if (state.lifetimeSeconds !== null) this.grantedLifetimeSeconds = state.lifetimeSeconds;
  }

  /** The latest state seen, if any. */
  get state(): MappingState | undefined {
    return this.latest;
  }

  /**
   * The mapping as an unconfirmed delete at `nowMs`, or `null` when no gateway was ever known
   * (nothing can have been sent). The external port is the latest state's, else the last one
   * granted, else the one asked for. The lease end is `nowMs` + the last lease granted (else
   * the one asked for): an add or renewal still unanswered was sent before `nowMs`, so the
   * router drops the mapping by then at the latest; `null` for a permanent lease.
   */
  unconfirmed(nowMs: number, error: (gateway: string) => Error): UnconfirmedDelete | null {
    const state = this.latest;
    if (state === undefined || state.backend === null) return null;
    const lifetimeSeconds = state.lifetimeSeconds ?? this.grantedLifetimeSeconds ?? this.requested.lifetimeSeconds;
    return {
      protocol: state.protocol,
      internalPort: state.internalPort,
      externalPort: state.externalPort || this.grantedPort || this.requested.externalPort,
      gateway: state.backend,
      leaseEndsAtMs: lifetimeSeconds === 0 ? null : nowMs + lifetimeSeconds * 1000,
      error: error(state.backend),
    };
  }
}
