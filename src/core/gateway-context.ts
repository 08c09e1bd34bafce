import {
  catchError,
  distinctUntilChanged,
  EMPTY,
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

const contexts = new WeakMap<Nat, GatewayContext>();

/**
 * The {@link GatewayContext} of a NAT, made on first use and kept as long as the NAT object
 * lives. The first caller's `externalIpCacheMs` and scheduler apply to all streams on that NAT.
 */
export function gatewayContext(
  nat: Nat,
  options: { readonly externalIpCacheMs: number; readonly logger: Logger; readonly scheduler?: SchedulerLike | undefined },
): GatewayContext {
  let context = contexts.get(nat);
  if (!context) {
    const limit = limiter(nat.maxConcurrentRequests ?? 1);
    // The first lookup starts at subscribe, ahead of the first add, so `mapped` carries the address.
    const externalIp$ = interval(options.externalIpCacheMs, options.scheduler).pipe(
      startWith(-1),
      exhaustMap(() =>
        limit(nat.externalIp()).pipe(
          catchError((error: unknown) => {
            options.logger.debug('rxnat:map', `external address lookup on ${nat.name} failed`, { error });
            return EMPTY;
          }),
        ),
      ),
      distinctUntilChanged(),
      share({ connector: () => new ReplaySubject<string>(1), resetOnRefCountZero: true }),
    );
    context = { limit, externalIp$ };
    contexts.set(nat, context);
  }
  return context;
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
