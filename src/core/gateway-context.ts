import {
  catchError,
  distinctUntilChanged,
  EMPTY,
  defer,
  exhaustMap,
  Observable,
  ReplaySubject,
  share,
  startWith,
  interval,
  type SchedulerLike,
} from 'rxjs';
import type { Logger } from './logger.js';
import type { Nat } from './nat.js';

/**
 * What every mapping stream on one {@link Nat} shares: the request limiter and the
 * external-address watcher.
 */
export interface GatewayContext {
  /** Wraps a backend call so that at most `maxConcurrentRequests` run at once on this gateway. */
  limit<T>(call: Observable<T>): Observable<T>;
  /** The gateway's external address, looked up at once and then every `externalIpCacheMs`; only changes. Shared. */
  readonly externalIp$: Observable<string>;
}

/** Options of {@link acquireGatewayContext}; the first user's apply while the context lives. */
export interface GatewayContextOptions {
  readonly externalIpCacheMs: number;
  readonly logger: Logger;
  readonly scheduler?: SchedulerLike | undefined;
}

interface Entry {
  readonly context: GatewayContext;
  /** The NAT object the external-address lookups go through: the latest one acquired. */
  nat: Nat;
  users: number;
}

const contexts = new Map<string, Entry>();

/** Which gateway a NAT object stands for: two objects for one gateway share its context. */
const gatewayKey = (nat: Nat): string => `${nat.kind} ${nat.name} ${nat.endpoint ?? nat.gateway ?? ''}`;

/**
 * Takes a share of a gateway's {@link GatewayContext}: made for the first user, kept while any
 * user holds it, and shared by every stream on the same gateway, even through different NAT
 * objects (each subscription to `discoverNat()` makes its own), so the request limit holds per
 * gateway. `release()` gives the share back (once; later calls do nothing).
 */
export function acquireGatewayContext(nat: Nat, options: GatewayContextOptions): { readonly context: GatewayContext; release(): void } {
  const key = gatewayKey(nat);
  let entry = contexts.get(key);
  if (!entry) {
    const limit = limiter(nat.maxConcurrentRequests ?? 1);
    const created: Entry = { context: { limit, externalIp$: watchExternalIp(() => created.nat, limit, options) }, nat, users: 0 };
    entry = created;
    contexts.set(key, entry);
  }
  const held = entry;
  held.nat = nat;
  held.users++;
  let released = false;
  return {
    context: held.context,
    release() {
      if (released) return;
      released = true;
      held.users--;
      if (held.users === 0 && contexts.get(key) === held) contexts.delete(key);
    },
  };
}

/** External-address lookups: one at subscribe (ahead of the first add, so `mapped` carries the address), then every `externalIpCacheMs`. */
function watchExternalIp(nat: () => Nat, limit: <T>(call: Observable<T>) => Observable<T>, options: GatewayContextOptions): Observable<string> {
  return interval(options.externalIpCacheMs, options.scheduler).pipe(
    startWith(-1),
    exhaustMap(() =>
      limit(defer(() => nat().externalIp())).pipe(
        catchError((error: unknown) => {
          options.logger.debug('rxnat:map', `external address lookup on ${nat().name} failed`, { error });
          return EMPTY;
        }),
      ),
    ),
    distinctUntilChanged(),
    share({ connector: () => new ReplaySubject<string>(1), resetOnRefCountZero: true }),
  );
}

/**
 * A counting semaphore over cold Observables: a call is subscribed only when fewer than
 * `concurrency` calls are running; waiting calls start in order. Unsubscribing a waiting call
 * removes it from the queue; unsubscribing a running one frees its slot.
 *
 * @example
 * ```ts
 * const limit = limiter(1);
 * merge(limit(a$), limit(b$)); // b$ is subscribed only after a$ finished
 * ```
 */
export function limiter(concurrency: number): <T>(call: Observable<T>) => Observable<T> {
  const slots = Math.max(1, Math.floor(concurrency));
  let running = 0;
  const queue: Array<() => void> = [];
  const release = (): void => {
    running--;
    const next = queue.shift();
    if (next) next();
  };
  return <T>(call: Observable<T>) =>
    new Observable<T>((subscriber) => {
      let started = false;
      let finished = false;
      let inner: { unsubscribe(): void } | undefined;
      const start = (): void => {
        started = true;
        running++;
        inner = call.subscribe({
          next: (value) => subscriber.next(value),
          error: (error: unknown) => {
            finish();
            subscriber.error(error);
          },
          complete: () => {
            finish();
            subscriber.complete();
          },
        });
      };
      const finish = (): void => {
        if (started && !finished) {
          finished = true;
          release();
        }
      };
      if (running < slots) start();
      else queue.push(start);
      return () => {
        if (!started) {
          const index = queue.indexOf(start);
          if (index >= 0) queue.splice(index, 1);
          return;
        }
        inner?.unsubscribe();
        finish();
      };
    });
}
