/**
 * The shell around {@link step}: one router entry (a protocol and internal port on one gateway),
 * shared by every stream that asks for it. It turns effects into backend calls through the
 * gateway's queue, keeps exactly the session's timers scheduled, and tells its holders the
 * session's {@link view}.
 *
 * @packageDocumentation
 */
import { defer, Subscription, take, timeout, type SchedulerLike } from 'rxjs';
import { GatewayError, GatewayTimeoutError, GatewayUnreachableError, ProtocolError, UnconfirmedDeleteError, type UnconfirmedDelete } from '../errors.js';
import {
  acquireGatewayContext,
  ADD_PRIORITY,
  DELETE_PRIORITY,
  gatewayKey,
  protocolOf,
  type GatewayContext,
  type GatewayContextOptions,
  type GatewayRegistry,
} from './gateway-context.js';
import type { Logger } from './logger.js';
import { sameState, unestablished, type MappingState } from './mapping-state.js';
import type { MappingGrant, Nat } from './nat.js';
import { initialSession, step, view, type Effect, type Session, type SessionConfig, type SessionEvent, type TimerName } from './session.js';

/** Longest delay a timer can wait: Node fires a longer one after 1 ms (a 2^32-1 s lease would renew in a loop). */
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

/** What a stream that holds an entry is told. */
export interface Holder {
  /** A new state of the entry. */
  next(state: MappingState): void;
  /** The gateway keeps refusing connections: the holder was dropped and should rediscover. */
  lost(error: Error): void;
  /** After a graceful leave: the last state (`unmapped`, with an `UnconfirmedDeleteError` or `null`). */
  closed(last: MappingState): void;
}

/** A holder's share of an entry. */
export interface Membership {
  /** Leaves the entry; the last holder's leave deletes the mapping. `graceful` waits for it and reports through `closed`. */
  leave(graceful: boolean): void;
}

/** What the runner needs besides the session's own configuration. */
export interface RunnerSettings {
  readonly scheduler: SchedulerLike;
  readonly logger: Logger;
  readonly random: () => number;
  readonly externalIpCacheMs: number;
  /** Where the entry's gateway context is shared; `undefined`: the process-wide registry. */
  readonly gatewayRegistry?: GatewayRegistry | undefined;
}

/**
 * Joins the router entry for `config.request`'s protocol and internal port on `nat`'s gateway,
 * creating (and starting) it for the first holder. The holder gets the entry's current state at
 * once, then every change.
 *
 * @example
 * ```ts
 * const membership = joinEntry(nat, config, settings, { next: console.log, lost: rediscover, closed: done });
 * membership.leave(true); // graceful: `closed` reports the last state once the delete was answered
 * ```
 */
export function joinEntry(nat: Nat, config: SessionConfig, settings: RunnerSettings, holder: Holder): Membership {
  const { context, release } = acquireGatewayContext(nat, contextOptions(settings));
  // One router entry per protocol, internal port and (IPv6) internal address on the gateway.
  const { protocol, internalPort, family = 'ipv4', internalAddress = '' } = config.request;
  const key = `${gatewayKey(nat)} ${protocol}/${internalPort} ${family} ${internalAddress}`;
  let entry = context.entries.get(key) as Entry | undefined;
  if (!entry) {
    entry = new Entry(nat, config, settings, context, () => {
      if (context.entries.get(key) === entry) context.entries.delete(key);
    });
    context.entries.set(key, entry);
    entry.join(holder);
    entry.start();
  } else {
    entry.join(holder);
  }
  const joined = entry;
  // The context share is the holder's; the entry holds its own share until its last request is done.
  release();
  let left = false;
  return {
    leave(graceful) {
      if (left) return;
      left = true;
      joined.leave(holder, graceful);
    },
  };
}

class Entry {
  private session: Session = initialSession();
  private readonly holders = new Set<Holder>();
  private readonly graceful = new Set<Holder>();
  private readonly timers = new Map<TimerName, { readonly due: number; readonly subscription: Subscription }>();
  private readonly watchers = new Subscription();
  private readonly inbox: SessionEvent[] = [];
  private processing = false;
  private add: Subscription | null = null;
  private state: MappingState;
  private readonly release: () => void;

  constructor(
    private readonly nat: Nat,
    private readonly config: SessionConfig,
    private readonly settings: RunnerSettings,
    private readonly context: GatewayContext,
    private readonly forget: () => void,
  ) {
    // The entry's own share of the gateway context: held until its last delete is answered.
    this.release = acquireGatewayContext(nat, contextOptions(settings)).release;
    this.state = unestablished(config.request.protocol, config.request.internalPort, 'mapping', nat.name, null);
  }

  private now(): number {
    return this.settings.scheduler.now();
  }

  private log(message: string, data?: Record<string, unknown>): void {
    this.settings.logger.debug('rxnat:map', `${this.nat.name} ${this.config.request.protocol}/${this.config.request.internalPort}: ${message}`, data);
  }

  join(holder: Holder): void {
    this.holders.add(holder);
    holder.next(this.state);
  }

  start(): void {
    this.watchers.add(
      this.context.externalIp$.subscribe((reading) => this.dispatch({ type: 'address', at: this.now(), ip: reading.ip, error: reading.error })),
    );
    if (this.nat.resets$) {
      this.watchers.add(
        this.nat.resets$.subscribe(() => {
          this.log('gateway lost its mappings (epoch reset)');
          this.dispatch({ type: 'reset', at: this.now() });
        }),
      );
    }
    this.dispatch({ type: 'start', at: this.now() });
  }

  leave(holder: Holder, graceful: boolean): void {
    if (!this.holders.has(holder)) return;
    if (this.holders.size > 1 || this.session.phase === 'closing' || this.session.phase === 'closed') {
      this.holders.delete(holder);
      this.graceful.delete(holder);
      if (graceful) holder.closed(this.last(null));
      return;
    }
    if (graceful) {
      this.graceful.add(holder);
      this.log('stopping');
    } else {
      this.holders.delete(holder);
      this.log('unsubscribed');
    }
    this.forget();
    this.dispatch({ type: graceful ? 'stop' : 'teardown', at: this.now() });
  }

  /** Runs events one at a time, in order, also those raised while effects run (no re-entrancy). */
  private dispatch(event: SessionEvent): void {
    this.inbox.push(event);
    if (this.processing) return;
    this.processing = true;
    try {
      for (let next = this.inbox.shift(); next !== undefined; next = this.inbox.shift()) {
        const { session, effects } = step(this.session, next, this.config);
        this.session = session;
        this.syncTimers();
        for (const effect of effects) this.perform(effect);
        this.publish();
      }
    } finally {
      this.processing = false;
    }
  }

  private publish(): void {
    if (this.session.phase === 'closed') return;
    const next = view(this.session, this.config);
    if (sameState(next, this.state)) return;
    this.state = next;
    for (const holder of [...this.holders]) holder.next(next);
  }

  private syncTimers(): void {
    const due = this.session.timers;
    for (const [name, timer] of this.timers) {
      if (due[name] !== timer.due) {
        timer.subscription.unsubscribe();
        this.timers.delete(name);
      }
    }
    for (const [name, at] of Object.entries(due) as Array<[TimerName, number]>) {
      if (this.timers.has(name)) continue;
      const delay = Math.min(MAX_TIMER_DELAY_MS, Math.max(0, at - this.now()));
      const subscription = this.settings.scheduler.schedule(() => {
        this.timers.delete(name);
        this.dispatch({ type: 'timer', name, at: this.now() });
      }, delay);
      this.timers.set(name, { due: at, subscription });
    }
  }

  private perform(effect: Effect): void {
    switch (effect.type) {
      case 'add': {
        const { request } = effect;
        this.log(request.previous ? `renewing external port ${request.externalPort}` : `adding, asking for external port ${request.externalPort}`);
        let answered = false;
        const call = this.context.queue(
          defer(() => {
            this.dispatch({ type: 'sent', at: this.now() });
            return this.nat.addMapping(request);
          }),
          effect.priority,
        );
        const subscription = call.pipe(take(1)).subscribe({
          next: (grant) => {
            answered = true;
            this.add = null;
            this.log(`granted external port ${grant?.externalPort} for ${grant?.lifetimeSeconds} s`);
            this.dispatch({ type: 'granted', at: this.now(), grant });
          },
          error: (error: unknown) => {
            answered = true;
            this.add = null;
            this.failed(toError(error));
          },
          complete: () => {
            if (answered) return;
            this.add = null;
            this.failed(new ProtocolError(protocolOf(this.nat), 'empty', 'the gateway answered the add with nothing', this.nat.name));
          },
        });
        if (!answered && !subscription.closed) this.add = subscription;
        return;
      }
      case 'cancelAdd':
        this.add?.unsubscribe();
        this.add = null;
        return;
      case 'delete':
        this.delete(effect.target);
        return;
      case 'check':
        this.check(effect.target);
        return;
      case 'lost': {
        this.log('gateway keeps refusing connections; rediscovering', { error: effect.error });
        this.forget();
        const holders = [...this.holders];
        this.holders.clear();
        this.graceful.clear();
        for (const holder of holders) holder.lost(effect.error);
        return;
      }
      case 'closed':
        this.finish(effect.unconfirmed);
        return;
    }
  }

  private failed(error: Error): void {
    const retryAfterSeconds = (error as { retryAfterSeconds?: unknown }).retryAfterSeconds;
    const gatewayGone = error instanceof GatewayUnreachableError && error.gatewayGone;
    const silent = error instanceof GatewayTimeoutError;
    const notHere = error instanceof GatewayError && error.notHere;
    this.log(`add failed (${this.session.failures + 1} in a row)`, { error });
    this.dispatch({
      type: 'failed',
      at: this.now(),
      error,
      applied: mayHaveApplied(error),
      gatewayGone,
      silent,
      notHere,
      retryAfterMs: typeof retryAfterSeconds === 'number' && retryAfterSeconds > 0 ? retryAfterSeconds * 1000 : 0,
      jitter: this.settings.random(),
    });
  }

  /** Asks the gateway whether it still holds `target`; a failed or empty check says nothing (`present: null`). */
  private check(target: MappingGrant): void {
    const checkMapping = this.nat.checkMapping;
    if (checkMapping === undefined) return;
    const port = target.externalPort;
    let answered = false;
    const answer = (present: boolean | null): void => {
      if (answered) return;
      answered = true;
      if (present === false) this.log(`the gateway no longer holds external port ${port}`);
      this.dispatch({ type: 'checked', at: this.now(), port, present });
    };
    this.watchers.add(
      this.context.queue(defer(() => checkMapping.call(this.nat, target)), ADD_PRIORITY).pipe(take(1)).subscribe({
        next: (present) => answer(present === true ? true : present === false ? false : null),
        error: (error: unknown) => {
          this.log(`check of external port ${port} failed`, { error: toError(error) });
          answer(null);
        },
        complete: () => answer(null),
      }),
    );
  }

  private delete(target: MappingGrant): void {
    const port = target.externalPort;
    // The bound starts when the delete goes on the wire, never while it waits in the queue.
    const call = this.context.queue(
      defer(() => this.nat.deleteMapping(target).pipe(timeout({ first: this.config.teardownTimeoutMs, scheduler: this.settings.scheduler }))),
      DELETE_PRIORITY,
    );
    call.subscribe({
      error: (error: unknown) => {
        const cause =
          error instanceof Error && error.name === 'TimeoutError'
            ? new GatewayTimeoutError(protocolOf(this.nat), this.nat.name, this.config.teardownTimeoutMs)
            : toError(error);
        this.log(`delete of external port ${port} failed`, { error: cause });
        this.dispatch({ type: 'deleteFailed', at: this.now(), port, error: cause });
      },
      complete: () => {
        this.log(`deleted external port ${port}`);
        this.dispatch({ type: 'deleted', at: this.now(), port });
      },
    });
  }

  private finish(unconfirmed: readonly UnconfirmedDelete[]): void {
    this.watchers.unsubscribe();
    for (const timer of this.timers.values()) timer.subscription.unsubscribe();
    this.timers.clear();
    this.forget();
    this.release();
    const error = unconfirmed.length > 0 ? new UnconfirmedDeleteError(unconfirmed) : null;
    if (error) this.log(error.message, { error });
    const graceful = [...this.graceful];
    this.graceful.clear();
    this.holders.clear();
    for (const holder of graceful) holder.closed(this.last(error));
  }

  private last(error: Error | null): MappingState {
    return unestablished(this.config.request.protocol, this.config.request.internalPort, 'unmapped', this.nat.name, error, this.state.renewals);
  }
}

/**
 * Whether a failed add may still have been made by the gateway: anything but an explicit
 * refusal (a protocol error code) or a connection nobody accepted.
 *
 * @example
 * ```ts
 * mayHaveApplied(new GatewayTimeoutError('pmp', '192.0.2.1', 2000)); // true
 * ```
 */
export function mayHaveApplied(error: Error): boolean {
  if (error instanceof GatewayError) return false;
  // Refused before sending: a request of the other address family.
  if (error instanceof ProtocolError && error.reason === 'family') return false;
  if (error instanceof GatewayUnreachableError && error.gatewayGone) return false;
  return true;
}

function contextOptions(settings: RunnerSettings): GatewayContextOptions {
  return { externalIpCacheMs: settings.externalIpCacheMs, logger: settings.logger, scheduler: settings.scheduler, registry: settings.gatewayRegistry };
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
