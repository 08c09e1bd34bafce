/**
 * Which backends refused to map on which gateway, for a while: a mapping refused with a "not
 * here" code (`GatewayError.notHere`) marks its NAT, and discovery skips a marked NAT for
 * {@link UNUSABLE_FOR_MS} unless nothing else can be found. Memory is per gateway registry and
 * per scheduler (instants are the scheduler's clock), like the gateway contexts.
 *
 * @packageDocumentation
 */
import type { SchedulerLike } from 'rxjs';
import { gatewayKey, type GatewayRegistry } from './gateway-context.js';
import type { Nat } from './nat.js';

/** How long a NAT that refused with a "not here" code is skipped by discovery. */
export const UNUSABLE_FOR_MS = 300_000;

/** Most NATs remembered per registry and scheduler; the oldest mark goes first. */
export const MAX_REMEMBERED_UNUSABLE = 64;

/** Where a mark is kept: the registry the streams share (default: the process-wide one) and the scheduler whose clock it uses. */
export interface UnusableScope {
  readonly registry?: GatewayRegistry | undefined;
  readonly scheduler: SchedulerLike;
}

interface Mark {
  readonly until: number;
  readonly error: Error;
}

/** Stands for the process-wide registry (streams given none). */
const processWide = {};
const marksOf = new WeakMap<object, WeakMap<SchedulerLike, Map<string, Mark>>>();

function marks(scope: UnusableScope): Map<string, Mark> {
  const owner: object = scope.registry ?? processWide;
  let perScheduler = marksOf.get(owner);
  if (!perScheduler) {
    perScheduler = new WeakMap();
    marksOf.set(owner, perScheduler);
  }
  let map = perScheduler.get(scope.scheduler);
  if (!map) {
    map = new Map();
    perScheduler.set(scope.scheduler, map);
  }
  return map;
}

/**
 * Marks `nat` as unable to map on its gateway for {@link UNUSABLE_FOR_MS}, because of `error`.
 * Returns true when it was not marked already (a fresh mark: worth switching at once).
 *
 * @example
 * ```ts
 * markUnusable(nat, refusal, { scheduler: asyncScheduler }); // true
 * markUnusable(nat, refusal, { scheduler: asyncScheduler }); // false: already marked
 * ```
 */
export function markUnusable(nat: Nat, error: Error, scope: UnusableScope): boolean {
  const map = marks(scope);
  const now = scope.scheduler.now();
  const key = gatewayKey(nat);
  const fresh = unusableReason(nat, scope) === null;
  map.delete(key);
  map.set(key, { until: now + UNUSABLE_FOR_MS, error });
  for (const [old, mark] of map) {
    if (map.size <= MAX_REMEMBERED_UNUSABLE && mark.until > now) break;
    map.delete(old);
  }
  return fresh;
}

/**
 * Why `nat` is marked unusable now (the refusal), or `null`.
 *
 * @example
 * ```ts
 * unusableReason(nat, { scheduler: asyncScheduler })?.message; // 'pcp gateway 192.168.1.1 refused: 2 NOT_AUTHORIZED'
 * ```
 */
export function unusableReason(nat: Nat, scope: UnusableScope): Error | null {
  const map = marks(scope);
  const key = gatewayKey(nat);
  const mark = map.get(key);
  if (mark === undefined) return null;
  if (mark.until <= scope.scheduler.now()) {
    map.delete(key);
    return null;
  }
  return mark.error;
}
