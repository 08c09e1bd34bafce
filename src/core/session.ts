/**
 * The mapping session as a pure transition function: `step(session, event) → { session, effects }`.
 * No rxjs, no clock, no I/O: every instant comes in on the event (`at`, in ms on the scheduler's
 * clock), every random number too (`jitter`). `docs/mapping-session.md` draws the phases; the
 * shell that runs effects and timers is `session-runner.ts`.
 *
 * @packageDocumentation
 */
import {
  GatewayLostError,
  GatewayResetError,
  LeaseExpiredError,
  MappingMissingError,
  ProtocolError,
  type GatewayProtocol,
  type UnconfirmedDelete,
} from '../errors.js';
import { isDoubleNat, isUsableExternalAddress } from './address.js';
import { backoffDelayMs, type RetryOptions } from './backoff.js';
import { unestablished, type MappingState } from './mapping-state.js';
import type { MappingGrant, NatMappingRequest } from './nat.js';
import type { ResolvedMappingRequest } from './validate.js';

/** Forced re-adds (gateway reset, external-address change) are at most one per this many ms. */
export const READD_INTERVAL_MS = 5_000;

/** A renewal is never asked for sooner than this after a grant, whatever lease the gateway granted. */
export const MIN_RENEW_DELAY_MS = 1_000;

/**
 * Where the session stands. `mapped`, `renewing` and `degraded` are the only phases in which the
 * gateway holds our lease (on our clock).
 */
export type Phase = 'idle' | 'queued' | 'adding' | 'mapped' | 'renewing' | 'degraded' | 'unmapped' | 'closing' | 'closed';

/** Every phase, in the order of the table in `docs/mapping-session.md`. */
export const PHASES: readonly Phase[] = ['idle', 'queued', 'adding', 'mapped', 'renewing', 'degraded', 'unmapped', 'closing', 'closed'];

/** The session's timers; each is a due instant in the session, kept scheduled by the shell. */
export type TimerName = 'renew' | 'retry' | 'leaseEnd' | 'readd' | 'addBound' | 'check';

/** What does not change during a session: the request and the settings that shape its timing. */
export interface SessionConfig {
  readonly request: ResolvedMappingRequest;
  /** The NAT's name, for the errors and the states. */
  readonly gateway: string;
  /** The protocol the NAT speaks, for the errors (`extip` reports as `pmp`, it never fails). */
  readonly protocol: GatewayProtocol;
  readonly renewFraction: number;
  readonly retry: RetryOptions;
  readonly maxConsecutiveUnreachable: number;
  readonly teardownTimeoutMs: number;
  /** How often a held mapping is checked in the gateway's table (UPnP), in ms; `null` when the NAT cannot check. */
  readonly checkIntervalMs: number | null;
}

/** An add (or renewal) of ours: queued while `sentAt` is null, on the wire after. */
export interface InFlight {
  readonly port: number;
  readonly previous: MappingGrant | null;
  readonly sentAt: number | null;
}

/** What teardown is doing. */
export interface Closing {
  /** The phase teardown began in: what the state shows until the end, unless the lease lapses meanwhile (then `unmapped`). */
  readonly from: Phase;
  /** A holder waits for the last state (graceful stop) rather than having left. */
  readonly graceful: boolean;
  /** The add on the wire at teardown: its answer decides what to delete. */
  readonly awaitingAdd: boolean;
  /** Deletes sent and not answered yet, by external port. */
  readonly pending: readonly MappingGrant[];
  readonly unconfirmed: readonly UnconfirmedDelete[];
}

/** The whole state of one mapping on one gateway. */
export interface Session {
  readonly phase: Phase;
  /** The last valid grant: renewals ask for its port and reuse its token; kept after its lease ended. */
  readonly grant: MappingGrant | null;
  /** When the grant's lease ends on our clock (`Infinity`: permanent); `null` before any grant. */
  readonly leaseEndsAt: number | null;
  /** The last usable external address. */
  readonly externalIp: string | null;
  /** Why the gateway's external address is not usable (not connected), if its latest reading (the watcher's, or a grant's own address) says so. */
  readonly addressError: Error | null;
  /** The last failure; `null` after a grant. */
  readonly error: Error | null;
  readonly failures: number;
  readonly unreachable: number;
  readonly renewals: number;
  readonly inFlight: InFlight | null;
  /** A forced re-add waits for the add in flight or for the rate limit. */
  readonly readdPending: boolean;
  readonly lastForcedAt: number;
  /** External ports asked for in adds that were sent and got no valid answer: they may exist. */
  readonly maybeApplied: readonly number[];
  readonly timers: Readonly<Partial<Record<TimerName, number>>>;
  readonly closing: Closing | null;
}

/** Facts the session reacts to. `at` is the scheduler's clock when it happened. */
export type SessionEvent =
  | { readonly type: 'start'; readonly at: number }
  | { readonly type: 'sent'; readonly at: number }
  | { readonly type: 'granted'; readonly at: number; readonly grant: MappingGrant }
  | {
      readonly type: 'failed';
      readonly at: number;
      readonly error: Error;
      /** The gateway may have made the mapping (no answer, a late or invalid one). */
      readonly applied: boolean;
      /** Connection refused or no route: nothing serves the protocol there. */
      readonly gatewayGone: boolean;
      /** No answer at all (the request timed out after its retransmissions). */
      readonly silent: boolean;
      /** A refusal meaning the protocol will not map on this gateway (`GatewayError.notHere`). */
      readonly notHere: boolean;
      /** How long the gateway asked us to wait (PCP error lifetime), in ms. */
      readonly retryAfterMs: number;
      /** A number in [0, 1) for the backoff's jitter. */
      readonly jitter: number;
    }
  | { readonly type: 'timer'; readonly at: number; readonly name: TimerName }
  | { readonly type: 'address'; readonly at: number; readonly ip: string | null; readonly error: Error | null }
  | { readonly type: 'reset'; readonly at: number }
  /** A check of the gateway's table answered: `present` false when it no longer holds `port` for us, `null` when the check failed. */
  | { readonly type: 'checked'; readonly at: number; readonly port: number; readonly present: boolean | null }
  | { readonly type: 'teardown'; readonly at: number }
  | { readonly type: 'stop'; readonly at: number }
  | { readonly type: 'deleted'; readonly at: number; readonly port: number }
  | { readonly type: 'deleteFailed'; readonly at: number; readonly port: number; readonly error: Error };

/** What the shell must do. Timers are not effects: they are `session.timers`. */
export type Effect =
  | {
      readonly type: 'add';
      readonly request: NatMappingRequest;
      /** Queue priority: the end of the lease it renews, `Infinity` for a new add (lower goes first). */
      readonly priority: number;
    }
  | { readonly type: 'cancelAdd' }
  | { readonly type: 'delete'; readonly target: MappingGrant }
  /** Ask the gateway whether it still holds `target` (through the queue, like an address lookup). */
  | { readonly type: 'check'; readonly target: MappingGrant }
  | { readonly type: 'lost'; readonly error: Error }
  | { readonly type: 'closed'; readonly unconfirmed: readonly UnconfirmedDelete[] };

/** The result of one {@link step}. */
export interface Transition {
  readonly session: Session;
  readonly effects: readonly Effect[];
}

/**
 * The session before `start`.
 *
 * @example
 * ```ts
 * step(initialSession(), { type: 'start', at: 0 }, config).effects; // [{ type: 'add', … }]
 * ```
 */
export function initialSession(): Session {
  return {
    phase: 'idle',
    grant: null,
    leaseEndsAt: null,
    externalIp: null,
    addressError: null,
    error: null,
    failures: 0,
    unreachable: 0,
    renewals: 0,
    inFlight: null,
    readdPending: false,
    lastForcedAt: -Infinity,
    maybeApplied: [],
    timers: {},
    closing: null,
  };
}

/** True in the phases in which the gateway holds our lease. */
export const holdsLease = (phase: Phase): boolean => phase === 'mapped' || phase === 'renewing' || phase === 'degraded';

/**
 * The transition function: what `event` does to `session`, and what the shell must do for it.
 * Pure: the same arguments give the same result.
 *
 * @example
 * ```ts
 * let { session, effects } = step(initialSession(), { type: 'start', at: 0 }, config);
 * ({ session, effects } = step(session, { type: 'sent', at: 0 }, config));
 * ({ session, effects } = step(session, { type: 'granted', at: 3, grant }, config));
 * session.phase; // 'mapped'
 * ```
 */
export function step(session: Session, event: SessionEvent, config: SessionConfig): Transition {
  const effects: Effect[] = [];
  const next = transition(session, event, config, effects);
  return { session: next, effects };
}

function transition(s: Session, e: SessionEvent, c: SessionConfig, fx: Effect[]): Session {
  if (s.phase === 'closed') return s;
  if (s.phase === 'closing') return whileClosing(s, e, c, fx);
  switch (e.type) {
    case 'start':
      return s.phase === 'idle' ? sendAdd(s, c, fx) : s;
    case 'sent':
      if (s.inFlight === null || s.inFlight.sentAt !== null) return s;
      return { ...s, phase: s.phase === 'queued' ? 'adding' : s.phase, inFlight: { ...s.inFlight, sentAt: e.at } };
    case 'granted':
      if (s.inFlight === null) return s;
      return onGranted(s, e.grant, e.at, c, fx);
    case 'failed':
      if (s.inFlight === null) return s;
      return onFailed(s, e, c, fx);
    case 'timer':
      return onTimer(s, e.name, e.at, c, fx);
    case 'address':
      return onAddress(s, e.ip, e.error, e.at, c, fx);
    case 'reset':
      return onReset(s, e.at, c, fx);
    case 'checked':
      return onChecked(s, e.port, e.present, e.at, c, fx);
    case 'teardown':
    case 'stop':
      return beginClosing(s, e.type === 'stop', e.at, c, fx);
    case 'deleted':
    case 'deleteFailed':
      return s;
  }
}

/** Puts an add (a renewal when a grant is held) in the gateway queue. */
function sendAdd(s: Session, c: SessionConfig, fx: Effect[]): Session {
  const previous = s.grant;
  const port = previous?.externalPort ?? c.request.externalPort;
  const lease = holdsLease(s.phase);
  fx.push({
    type: 'add',
    request: { ...c.request, externalPort: port, ...(previous ? { previous } : {}) },
    priority: lease && s.leaseEndsAt !== null ? s.leaseEndsAt : Infinity,
  });
  return {
    ...s,
    phase: lease ? 'renewing' : 'queued',
    inFlight: { port, previous, sentAt: null },
    timers: without(s.timers, 'renew', 'retry', 'readd', 'check'),
  };
}

/** A reset or an address change: re-add now, or once the add in flight answered, or when the rate limit allows. */
function forceReadd(s: Session, at: number, c: SessionConfig, fx: Effect[]): Session {
  if (s.inFlight !== null) return { ...s, readdPending: true };
  const due = s.lastForcedAt + READD_INTERVAL_MS;
  if (at < due) return { ...s, readdPending: true, timers: { ...s.timers, readd: due } };
  return sendAdd({ ...s, readdPending: false, lastForcedAt: at }, c, fx);
}

function onGranted(s: Session, grant: MappingGrant, at: number, c: SessionConfig, fx: Effect[]): Session {
  const problem = grantProblem(grant, c);
  if (problem) {
    return onFailed(s, { type: 'failed', at, error: problem, applied: true, gatewayGone: false, silent: false, notHere: false, retryAfterMs: 0, jitter: 0.5 }, c, fx);
  }
  const inFlight = s.inFlight!;
  const sentAt = inFlight.sentAt ?? at;
  const leaseEndsAt = grant.lifetimeSeconds === 0 ? Infinity : sentAt + trustedLeaseMs(grant.lifetimeSeconds);
  // A renewal granted on another port leaves the old entry behind on some gateways: delete it at teardown.
  const moved = inFlight.previous !== null && inFlight.previous.externalPort !== grant.externalPort ? [inFlight.previous.externalPort] : [];
  const maybeApplied = union(s.maybeApplied, moved).filter((port) => port !== grant.externalPort);
  const leaseMs = (grant.lifetimeSeconds || c.request.lifetimeSeconds || 60) * 1000;
  const timers: Partial<Record<TimerName, number>> = { renew: at + Math.max(MIN_RENEW_DELAY_MS, leaseMs * c.renewFraction) };
  if (leaseEndsAt !== Infinity) timers.leaseEnd = leaseEndsAt;
  if (s.timers.readd !== undefined) timers.readd = s.timers.readd;
  if (c.checkIntervalMs !== null) timers.check = at + c.checkIntervalMs;
  const externalIp = grant.externalIp ?? s.externalIp;
  let next: Session = {
    ...s,
    phase: leaseEndsAt > at ? 'mapped' : 'unmapped',
    grant,
    leaseEndsAt,
    externalIp,
    // An address the grant names (PCP) is the newest reading: it answers an earlier "not usable".
    addressError: grant.externalIp !== undefined ? null : s.addressError,
    error: leaseEndsAt > at ? null : new LeaseExpiredError(c.gateway, grant.externalPort),
    failures: 0,
    unreachable: 0,
    renewals: s.renewals + (inFlight.previous !== null ? 1 : 0),
    inFlight: null,
    maybeApplied,
    timers: leaseEndsAt > at ? timers : { ...without(timers, 'renew', 'leaseEnd', 'check'), retry: timers.renew! },
  };
  if (next.readdPending) next = forceReadd({ ...next, readdPending: false }, at, c, fx);
  return next;
}

function onFailed(s: Session, e: Extract<SessionEvent, { type: 'failed' }>, c: SessionConfig, fx: Effect[]): Session {
  const inFlight = s.inFlight!;
  const maybeApplied = e.applied ? union(s.maybeApplied, [inFlight.port]) : s.maybeApplied;
  const failures = s.failures + 1;
  const unreachable = e.gatewayGone || e.silent ? s.unreachable + 1 : 0;
  const base: Session = { ...s, inFlight: null, maybeApplied, failures, unreachable, error: e.error, readdPending: false };
  const leaseHolds = holdsLease(s.phase) && s.leaseEndsAt !== null && s.leaseEndsAt > e.at;
  // The protocol will not map here: move to another backend at once. A lease still held is kept
  // (degraded, retried) until it ends: a refused renewal does not take away a working mapping.
  // While an earlier add of ours may exist unanswered, a refusal may be about that entry (PCP
  // answers NOT_AUTHORIZED to a MAP whose nonce is not the entry's): retry, don't move.
  if (e.notHere && !leaseHolds && s.maybeApplied.length === 0) {
    fx.push({ type: 'lost', error: new GatewayLostError(c.gateway, e.error, 'refused') });
    return beginClosing(base, false, e.at, c, fx);
  }
  if (unreachable >= c.maxConsecutiveUnreachable) {
    fx.push({ type: 'lost', error: new GatewayLostError(c.gateway, e.error) });
    return beginClosing(base, false, e.at, c, fx);
  }
  const delay = Math.max(backoffDelayMs(failures, c.retry, () => e.jitter), e.retryAfterMs);
  return {
    ...base,
    phase: leaseHolds ? 'degraded' : 'unmapped',
    timers: { ...without(s.timers, 'readd', 'renew', 'check'), retry: e.at + delay },
  };
}

function onTimer(s: Session, name: TimerName, at: number, c: SessionConfig, fx: Effect[]): Session {
  if (s.timers[name] === undefined) return s;
  const cleared: Session = { ...s, timers: without(s.timers, name) };
  switch (name) {
    case 'renew':
      return s.phase === 'mapped' ? sendAdd(cleared, c, fx) : cleared;
    case 'retry':
      return s.phase === 'degraded' || s.phase === 'unmapped' ? sendAdd(cleared, c, fx) : cleared;
    case 'readd':
      return forceReadd({ ...cleared, readdPending: false }, at, c, fx);
    case 'leaseEnd':
      return endLease(cleared, new LeaseExpiredError(c.gateway, s.grant?.externalPort ?? c.request.externalPort));
    case 'addBound':
      return cleared;
    case 'check':
      // Only a quiet mapping is checked: a request of ours in flight answers the question itself.
      if (s.phase !== 'mapped' || s.grant === null) return cleared;
      fx.push({ type: 'check', target: s.grant });
      return cleared;
  }
}

/** The lease is over on our clock: whatever is in flight continues as an add of a lapsed mapping. */
function endLease(s: Session, reason: Error): Session {
  const error = s.error ?? reason;
  switch (s.phase) {
    case 'mapped': {
      const renewAt = s.timers.renew;
      const timers = without(s.timers, 'renew', 'leaseEnd', 'check');
      return { ...s, phase: 'unmapped', error, timers: renewAt !== undefined ? { ...timers, retry: renewAt } : timers };
    }
    case 'renewing':
      return { ...s, phase: s.inFlight?.sentAt != null ? 'adding' : 'queued', error, timers: without(s.timers, 'leaseEnd') };
    case 'degraded':
      return { ...s, phase: 'unmapped', error, timers: without(s.timers, 'leaseEnd') };
    default:
      return s;
  }
}

function onAddress(s: Session, ip: string | null, error: Error | null, at: number, c: SessionConfig, fx: Effect[]): Session {
  // An IPv6 mapping (a firewall pinhole) is reached at its own address, which its grant names:
  // the gateway-wide reading says nothing about it (another stream's host may be in it).
  if (c.request.family === 'ipv6') return s;
  if (ip === null || !isUsableExternalAddress(ip)) {
    const reason = error ?? new ProtocolError(c.protocol, 'external-address', `the gateway's external address ${JSON.stringify(ip)} is not usable (not connected)`, c.gateway);
    return { ...s, externalIp: null, addressError: reason };
  }
  const changed = s.externalIp !== null && s.externalIp !== ip;
  const next: Session = { ...s, externalIp: ip, addressError: null };
  // Many routers drop their mappings when the WAN address changes: re-add (rate-limited).
  return changed && next.grant !== null && next.phase !== 'idle' ? forceReadd(next, at, c, fx) : next;
}

function onReset(s: Session, at: number, c: SessionConfig, fx: Effect[]): Session {
  if (s.grant === null && s.inFlight === null) return s;
  // The gateway forgot every mapping: ours is gone now, whatever its lease said.
  return forget(s, new GatewayResetError(c.gateway), at, c, fx);
}

/** The gateway no longer holds our lease (reset, or found missing): `unmapped` now, re-added (rate-limited). */
function forget(s: Session, reason: Error, at: number, c: SessionConfig, fx: Effect[]): Session {
  const lapsed = holdsLease(s.phase) ? endLease({ ...s, error: null, leaseEndsAt: at }, reason) : s;
  return forceReadd({ ...lapsed, timers: without(lapsed.timers, 'leaseEnd', 'check') }, at, c, fx);
}

function onChecked(s: Session, port: number, present: boolean | null, at: number, c: SessionConfig, fx: Effect[]): Session {
  // An answer about another grant, or one that came while a request of ours was made, says nothing now.
  if (s.phase !== 'mapped' || s.grant === null || s.grant.externalPort !== port) return s;
  if (present === false) return forget(s, new MappingMissingError(c.gateway, port), at, c, fx);
  return c.checkIntervalMs === null ? s : { ...s, timers: { ...s.timers, check: at + c.checkIntervalMs } };
}

function beginClosing(s: Session, graceful: boolean, at: number, c: SessionConfig, fx: Effect[]): Session {
  const closing: Closing = { from: s.phase, graceful, awaitingAdd: false, pending: [], unconfirmed: [] };
  // The lease clock keeps running while teardown waits: the state must not outlive the lease.
  const leaseTimer = s.timers.leaseEnd !== undefined ? { leaseEnd: s.timers.leaseEnd } : {};
  const base: Session = { ...s, phase: 'closing', timers: leaseTimer, readdPending: false, closing };
  if (s.inFlight !== null && s.inFlight.sentAt === null) {
    // Still waiting in the queue: nothing was sent, nothing of it to delete.
    fx.push({ type: 'cancelAdd' });
    return sendDeletes({ ...base, inFlight: null }, at, c, fx);
  }
  if (s.inFlight !== null) {
    // On the wire: its answer says which port to delete; but no longer than the bound.
    const bound = Math.max(at, (s.inFlight.sentAt ?? at) + c.teardownTimeoutMs);
    return { ...base, closing: { ...closing, awaitingAdd: true }, timers: { ...leaseTimer, addBound: bound } };
  }
  return sendDeletes(base, at, c, fx);
}

function whileClosing(s: Session, e: SessionEvent, c: SessionConfig, fx: Effect[]): Session {
  const closing = s.closing!;
  switch (e.type) {
    case 'teardown':
      return closing.graceful ? { ...s, closing: { ...closing, graceful: false } } : s;
    case 'reset':
      return holdsLease(closing.from) ? lapse(s, new GatewayResetError(c.gateway)) : s;
    case 'granted': {
      if (!closing.awaitingAdd || s.inFlight === null) return s;
      const valid = grantProblem(e.grant, c) === null;
      const grant = valid ? e.grant : s.grant;
      const maybeApplied = valid ? s.maybeApplied : union(s.maybeApplied, [s.inFlight.port]);
      const leaseEndsAt = valid ? (e.grant.lifetimeSeconds === 0 ? Infinity : (s.inFlight.sentAt ?? e.at) + trustedLeaseMs(e.grant.lifetimeSeconds)) : s.leaseEndsAt;
      const moved = valid && s.grant !== null && s.grant.externalPort !== e.grant.externalPort ? [s.grant.externalPort] : [];
      return sendDeletes(
        { ...s, grant, leaseEndsAt, maybeApplied: union(maybeApplied, moved), inFlight: null, timers: without(s.timers, 'addBound'), closing: { ...closing, awaitingAdd: false } },
        e.at,
        c,
        fx,
      );
    }
    case 'failed': {
      if (!closing.awaitingAdd || s.inFlight === null) return s;
      const maybeApplied = e.applied ? union(s.maybeApplied, [s.inFlight.port]) : s.maybeApplied;
      return sendDeletes({ ...s, maybeApplied, inFlight: null, timers: without(s.timers, 'addBound'), closing: { ...closing, awaitingAdd: false } }, e.at, c, fx);
    }
    case 'timer': {
      if (e.name === 'leaseEnd' && s.timers.leaseEnd !== undefined) {
        return lapse({ ...s, timers: without(s.timers, 'leaseEnd') }, new LeaseExpiredError(c.gateway, s.grant?.externalPort ?? c.request.externalPort));
      }
      if (e.name !== 'addBound' || !closing.awaitingAdd || s.inFlight === null) return s;
      // The add never answered: it may have been made; stop waiting and delete what it asked for.
      fx.push({ type: 'cancelAdd' });
      const maybeApplied = union(s.maybeApplied, [s.inFlight.port]);
      return sendDeletes({ ...s, maybeApplied, inFlight: null, timers: without(s.timers, 'addBound'), closing: { ...closing, awaitingAdd: false } }, e.at, c, fx);
    }
    case 'deleted':
    case 'deleteFailed': {
      const target = closing.pending.find((g) => g.externalPort === e.port);
      if (target === undefined) return s;
      const pending = closing.pending.filter((g) => g !== target);
      const unconfirmed =
        e.type === 'deleteFailed'
          ? [
              ...closing.unconfirmed,
              {
                protocol: target.protocol,
                internalPort: target.internalPort,
                externalPort: target.externalPort,
                gateway: c.gateway,
                leaseEndsAtMs: leaseEndOf(s, target, e.at, c),
                error: e.error,
              },
            ]
          : closing.unconfirmed;
      return finishIfDone({ ...s, closing: { ...closing, pending, unconfirmed } }, fx);
    }
    default:
      return s;
  }
}

/** While teardown waits, the lease lapsed (or the gateway forgot it): the state says `unmapped`. */
function lapse(s: Session, reason: Error): Session {
  const closing = s.closing!;
  return { ...s, error: s.error ?? reason, timers: without(s.timers, 'leaseEnd'), closing: { ...closing, from: 'unmapped' } };
}

/** Sends a delete for the last grant and for every port that may have been made. */
function sendDeletes(s: Session, _at: number, c: SessionConfig, fx: Effect[]): Session {
  const targets: MappingGrant[] = [];
  if (s.grant !== null) targets.push(s.grant);
  for (const port of s.maybeApplied) {
    if (!targets.some((t) => t.externalPort === port)) {
      targets.push({ protocol: c.request.protocol, internalPort: c.request.internalPort, externalPort: port, lifetimeSeconds: 0 });
    }
  }
  for (const target of targets) fx.push({ type: 'delete', target });
  return finishIfDone({ ...s, closing: { ...s.closing!, pending: targets } }, fx);
}

function finishIfDone(s: Session, fx: Effect[]): Session {
  const closing = s.closing!;
  if (closing.awaitingAdd || closing.pending.length > 0) return s;
  fx.push({ type: 'closed', unconfirmed: closing.unconfirmed });
  return { ...s, phase: 'closed', timers: {} };
}

/** When an unconfirmed entry goes away by itself at the latest (ms), `null` when never. */
function leaseEndOf(s: Session, target: MappingGrant, at: number, c: SessionConfig): number | null {
  if (s.grant !== null && target.externalPort === s.grant.externalPort && s.leaseEndsAt !== null) {
    return s.leaseEndsAt === Infinity ? null : s.leaseEndsAt + leaseMarginMs(s.grant.lifetimeSeconds);
  }
  // A port that may have been made: the router holds it no longer than what we asked for, from now.
  return c.request.lifetimeSeconds === 0 ? null : at + c.request.lifetimeSeconds * 1000;
}

/**
 * Why a success reply is not a mapping: an external port outside 1-65535, a lifetime that is not
 * whole seconds, an unusable external address, or an answer for another mapping. `null` when valid.
 *
 * @example
 * ```ts
 * grantProblem({ ...grant, externalPort: 0 }, config); // ProtocolError (reason 'external-port')
 * ```
 */
export function grantProblem(grant: MappingGrant, c: SessionConfig): ProtocolError | null {
  const bad = (reason: string, what: string): ProtocolError => new ProtocolError(c.protocol, reason, `the gateway's success reply is not a mapping: ${what}`, c.gateway);
  if (grant === null || typeof grant !== 'object') return bad('grant', 'no grant');
  if (!Number.isInteger(grant.externalPort) || grant.externalPort < 1 || grant.externalPort > 65535) {
    return bad('external-port', `external port ${String(grant.externalPort)}`);
  }
  if (!Number.isInteger(grant.lifetimeSeconds) || grant.lifetimeSeconds < 0 || grant.lifetimeSeconds > 0xffffffff) {
    return bad('lifetime', `lifetime ${String(grant.lifetimeSeconds)}`);
  }
  if (grant.externalIp !== undefined && !isUsableExternalAddress(grant.externalIp)) {
    return bad('external-address', `external address ${JSON.stringify(grant.externalIp)}`);
  }
  if (grant.protocol !== c.request.protocol || grant.internalPort !== c.request.internalPort) {
    return bad('grant', `it answers ${String(grant.protocol)}/${String(grant.internalPort)}`);
  }
  return null;
}

/**
 * What a user sees of the session. In `closing`/`closed` it is the last state a graceful stop
 * reports (`unmapped`, its error the caller's to fill in).
 *
 * @example
 * ```ts
 * view(session, config).status; // 'mapped' only while the lease holds and the address is usable
 * ```
 */
export function view(s: Session, c: SessionConfig): MappingState {
  const { protocol, internalPort } = c.request;
  // While teardown waits, the state is the one it began in, unless the lease lapsed meanwhile.
  const phase = s.phase === 'closing' && s.closing ? s.closing.from : s.phase;
  const usable = holdsLease(phase) && s.grant !== null && s.externalIp !== null && s.addressError === null;
  if (usable) {
    const grant = s.grant!;
    const ip = s.externalIp!;
    return {
      status: s.error ? 'degraded' : 'mapped',
      protocol,
      internalPort,
      externalPort: grant.externalPort,
      externalIp: ip,
      lifetimeSeconds: grant.lifetimeSeconds,
      backend: c.gateway,
      doubleNat: isDoubleNat(ip),
      renewals: s.renewals,
      error: s.error,
    };
  }
  const error = s.error ?? (holdsLease(phase) ? s.addressError : null);
  const status = error !== null || (s.grant !== null && !holdsLease(phase)) ? 'unmapped' : 'mapping';
  return unestablished(protocol, internalPort, status, c.gateway, error, s.renewals);
}

function without<K extends string>(timers: Readonly<Partial<Record<K, number>>>, ...names: K[]): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = { ...timers };
  for (const name of names) delete out[name];
  return out;
}

function union(a: readonly number[], b: readonly number[]): readonly number[] {
  const out = [...a];
  for (const x of b) if (!out.includes(x)) out.push(x);
  return out;
}

/**
 * How much sooner than the router our clock ends a lease, in ms: one second, or a quarter of the
 * lease when that is shorter. Routers keep lease ends in whole seconds (miniupnpd stores
 * `time() + lifetime` and sweeps when `time()` reaches it), so an entry may go up to a second
 * before `send + lifetime`; and a timer fires no earlier than the event loop lets it. Without the
 * margin a state could read `mapped` for that long after the router let the entry go.
 */
export const LEASE_MARGIN_MS = 1000;

/**
 * The margin of a lease of `lifetimeSeconds` (see {@link LEASE_MARGIN_MS}).
 *
 * @example
 * ```ts
 * leaseMarginMs(60); // 1000
 * leaseMarginMs(2); // 500
 * ```
 */
export function leaseMarginMs(lifetimeSeconds: number): number {
  return Math.min(LEASE_MARGIN_MS, lifetimeSeconds * 250);
}

/**
 * How long after its request was sent we trust a lease of `lifetimeSeconds`, in ms.
 *
 * @example
 * ```ts
 * trustedLeaseMs(7200); // 7_199_000
 * ```
 */
export function trustedLeaseMs(lifetimeSeconds: number): number {
  return lifetimeSeconds * 1000 - leaseMarginMs(lifetimeSeconds);
}
