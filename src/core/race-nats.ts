import { catchError, concat, defer, EMPTY, filter, merge, of, take, throwError, timeout, type Observable, type SchedulerLike } from 'rxjs';
import { NoGatewayError, type BackendFailure } from '../errors.js';
import { silentLogger, type Logger } from './logger.js';
import type { Nat } from './nat.js';

/**
 * One contestant of a discovery race: a backend's name and its cold probe, an Observable that
 * emits the NAT it found (and may then complete) or errors with why it found none.
 *
 * @example
 * ```ts
 * const probe: NatProbe = { name: 'pmp', nat$: pmp('192.168.1.1') };
 * ```
 */
export interface NatProbe {
  readonly name: string;
  readonly nat$: Observable<Nat>;
}

/**
 * Races discovery probes: all are subscribed at once, the first NAT found wins and every other
 * probe is unsubscribed at that moment (closing its sockets). A probe that fails does not end
 * the race. A NAT that `unusable` names a reason for (it refused to map there lately) does not
 * win while another probe may still find one; it is the result only when nothing else was found
 * by the end. When every probe failed, or `timeoutMs` passed first, the result errors with a
 * {@link NoGatewayError} that lists each probe's failure (a timeout for those still running).
 *
 * @example
 * ```ts
 * raceNats([{ name: 'pmp', nat$: pmp(gw) }, { name: 'upnp', nat$: upnp() }], 2000)
 *   .subscribe((nat) => console.log('found', nat.name));
 * ```
 */
export function raceNats(
  probes: readonly NatProbe[],
  timeoutMs: number,
  options: {
    readonly scheduler?: SchedulerLike;
    readonly logger?: Logger;
    /** Why a found NAT should not win (a recent "not here" refusal), or `null`. */
    readonly unusable?: (nat: Nat) => Error | null;
  } = {},
): Observable<Nat> {
  const logger = options.logger ?? silentLogger;
  const unusable = options.unusable ?? (() => null);
  return defer(() => {
    const failures = new Map<string, Error>();
    let fallback: Nat | null = null;
    const last = (): Observable<Nat> => (fallback !== null ? of(fallback) : throwError(noGateway));
    const noGateway = (): NoGatewayError => {
      const list: BackendFailure[] = probes.map((probe) => ({
        backend: probe.name,
        error: failures.get(probe.name) ?? new Error(`no answer within ${timeoutMs} ms`),
      }));
      return new NoGatewayError(list);
    };
    const contestants = probes.map((probe) =>
      probe.nat$.pipe(
        take(1),
        filter((nat) => {
          const why = unusable(nat);
          if (why === null) return true;
          logger.debug('rxnat:discover', `${probe.name} found ${nat.name}, which refused to map lately: ${why.message}`);
          failures.set(probe.name, why);
          fallback ??= nat;
          return false;
        }),
        catchError((error: unknown) => {
          const failure = error instanceof Error ? error : new Error(String(error));
          logger.debug('rxnat:discover', `${probe.name} found no gateway: ${failure.message}`);
          failures.set(probe.name, failure);
          return EMPTY;
        }),
      ),
    );
    return concat(merge(...contestants), defer(last)).pipe(
      take(1),
      timeout({ first: timeoutMs, with: last, ...(options.scheduler ? { scheduler: options.scheduler } : {}) }),
    );
  });
}
