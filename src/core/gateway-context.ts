import { defer, Observable, ReplaySubject, share, Subscription, type SchedulerLike } from 'rxjs';
import { ProtocolError } from '../errors.js';
import { isUsableExternalAddress } from './address.js';
import { backoffDelayMs } from './backoff.js';
import type { Logger } from './logger.js';
import type { Nat } from './nat.js';

/** Queue priority of a delete: ahead of everything else. */
export const DELETE_PRIORITY = -Infinity;

/** Queue priority of a new add or an address lookup: after every renewal, in arrival order. */
export const ADD_PRIORITY = Infinity;

/**
 * One answer of the external-address watcher: a usable address, or the reason the gateway's
 * answer is not one (`0.0.0.0`: not connected).
 */
export interface AddressReading {
  readonly ip: string | null;
  readonly error: Error | null;
}

/**
 * What every mapping stream on one gateway shares: the request queue, the external-address
 * watcher, and the router entries (one per protocol and internal port).
 */
export interface GatewayContext {
  /**
   * Runs a backend call when one of the gateway's `maxConcurrentRequests` slots is free, the most
   * urgent first: lower `priority` first ({@link DELETE_PRIORITY}, then renewals by the end of the
   * lease they renew, then {@link ADD_PRIORITY}), arrival order among equals. The call is
   * subscribed only when it starts, so a bound put on it inside covers its time on the wire only.
   */
  queue<T>(call: Observable<T>, priority: number): Observable<T>;
  /** The gateway's external address: looked up at once, then every `externalIpCacheMs` (sooner after a failure); only changes. Shared. */
  readonly externalIp$: Observable<AddressReading>;
  /** Router entries shared by streams that ask for the same protocol and internal port (owned by `session-runner`). */
  readonly entries: Map<string, unknown>;
}

/**
 * Options of {@link acquireGatewayContext}. Within one registry, the first user's apply to a
 * context while it lives; a user who wants its own passes its own `registry`.
 */
export interface GatewayContextOptions {
  readonly externalIpCacheMs: number;
  readonly logger: Logger;
  readonly scheduler: SchedulerLike;
  /** Where the context is shared; default the process-wide registry. */
  readonly registry?: GatewayRegistry | undefined;
}

interface Held {
  readonly context: GatewayContext;
  /** The NAT object the address lookups go through: the latest one acquired. */
  nat: Nat;
  users: number;
}

declare const registryBrand: unique symbol;

/**
 * Who shares gateway contexts (request queue, address watcher, router entries). Streams given the
 * same registry share one context per gateway and scheduler, and with it the options of the
 * first of them (logger, `externalIpCacheMs`); streams given different registries share nothing,
 * not even the request limit of a gateway they both use. Without one, `mapPort` uses a
 * process-wide registry. Make one with {@link createGatewayRegistry}.
 *
 * @example
 * ```ts
 * const mine = createGatewayRegistry();
 * mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, { gatewayRegistry: mine, logger });
 * ```
 */
export interface GatewayRegistry {
  readonly [registryBrand]: 'GatewayRegistry';
}

/**
 * Each registry's contexts, per scheduler, then per gateway: streams on a virtual (test) scheduler
 * never share a queue or a lookup with streams on the real one.
 */
const contextsOf = new WeakMap<GatewayRegistry, WeakMap<SchedulerLike, Map<string, Held>>>();

/**
 * Makes a {@link GatewayRegistry} of its own: the streams given it share gateway contexts with
 * each other only. It holds nothing once they have ended.
 *
 * @example
 * ```ts
 * const registry = createGatewayRegistry();
 * const a = mapPort(nat, { protocol: 'udp', internalPort: 4001 }, { gatewayRegistry: registry, logger: quiet });
 * const b = mapPort(nat, { protocol: 'udp', internalPort: 4001 }); // the process-wide registry: another entry
 * ```
 */
export function createGatewayRegistry(): GatewayRegistry {
  const registry = Object.freeze({}) as GatewayRegistry;
  contextsOf.set(registry, new WeakMap());
  return registry;
}

/**
 * True for a registry made by {@link createGatewayRegistry}.
 *
 * @example
 * ```ts
 * isGatewayRegistry(createGatewayRegistry()); // true
 * isGatewayRegistry({}); // false
 * ```
 */
export function isGatewayRegistry(value: unknown): value is GatewayRegistry {
  // WeakMap#has answers false for a primitive (and null): no type test needed.
  return contextsOf.has(value as GatewayRegistry);
}

/** The registry of every stream not given one. */
const processWide = createGatewayRegistry();

/** Which gateway a NAT object stands for: two objects for one gateway share its context. */
export const gatewayKey = (nat: Nat): string => `${nat.kind} ${nat.name} ${nat.endpoint ?? nat.gateway ?? ''}`;

/**
 * Takes a share of a gateway's {@link GatewayContext}: made for the first user, kept while any
 * user holds it, and shared by every stream on the same gateway, scheduler and registry, even through
 * different NAT objects (each subscription to `discoverNat()` makes its own), so the request
 * limit holds per gateway. `release()` gives the share back (once; later calls do nothing).
 *
 * @example
 * ```ts
 * const { context, release } = acquireGatewayContext(nat, { externalIpCacheMs: 15_000, logger, scheduler });
 * context.queue(nat.externalIp(), ADD_PRIORITY).subscribe(console.log);
 * release();
 * ```
 */
export function acquireGatewayContext(nat: Nat, options: GatewayContextOptions): { readonly context: GatewayContext; release(): void } {
  // mapPort lets only registries through (validate.ts): every one has its map.
  const perScheduler = contextsOf.get(options.registry ?? processWide)!;
  let contexts = perScheduler.get(options.scheduler);
  if (!contexts) {
    contexts = new Map();
    perScheduler.set(options.scheduler, contexts);
  }
  const registry = contexts;
  const key = gatewayKey(nat);
  let held = registry.get(key);
  if (!held) {
    const queue = priorityQueue(nat.maxConcurrentRequests ?? 1);
    const created: Held = {
      context: { queue, externalIp$: watchExternalIp(() => created.nat, queue, options), entries: new Map() },
      nat,
      users: 0,
    };
    held = created;
    registry.set(key, held);
  }
  const entry = held;
  entry.nat = nat;
  entry.users++;
  let released = false;
  return {
    context: entry.context,
    release() {
      if (released) return;
      released = true;
      entry.users--;
      if (entry.users === 0 && registry.get(key) === entry) registry.delete(key);
    },
  };
}

/**
 * External-address lookups through the gateway's queue: one at subscribe (ahead of the first add,
 * so `mapped` carries the address), or, when the NAT's grants carry the address themselves
 * (`grantsCarryExternalIp`), one scheduled at once, so it queues behind the adds of the streams
 * subscribing now; then every `externalIpCacheMs`. A failed lookup is retried
 * sooner (1 s doubling, never later than the cache time); an answer that is not a usable address
 * is reported as such. Each lookup is scheduled afresh: nothing nests.
 */
function watchExternalIp(nat: () => Nat, queue: GatewayContext['queue'], options: GatewayContextOptions): Observable<AddressReading> {
  return new Observable<AddressReading>((subscriber) => {
    let failures = 0;
    let last: AddressReading | null = null;
    const running = new Subscription();
    const publish = (reading: AddressReading): void => {
      if (last && last.ip === reading.ip && last.error?.message === reading.error?.message) return;
      last = reading;
      subscriber.next(reading);
    };
    const lookup = (): void => {
      running.add(
        queue(defer(() => nat().externalIp()), ADD_PRIORITY).subscribe({
          next: (ip) => {
            failures = 0;
            publish(
              isUsableExternalAddress(ip)
                ? { ip, error: null }
                : { ip: null, error: new ProtocolError(protocolOf(nat()), 'external-address', `external address ${JSON.stringify(ip)} is not usable (not connected)`, nat().name) },
            );
          },
          error: (error: unknown) => {
            if (error instanceof ProtocolError && error.reason === 'external-address') {
              failures = 0;
              publish({ ip: null, error });
            } else {
              failures++;
              options.logger.debug('rxnat:map', `external address lookup on ${nat().name} failed`, { error });
            }
            next();
          },
          complete: next,
        }),
      );
    };
    // A fired action is not unsubscribed by rxjs: each timer lives in a holder that leaves
    // `running` when it fires, so a watch that lives for months keeps no timer per lookup.
    const lookupIn = (delay: number): void => {
      const holder = new Subscription();
      running.add(holder);
      holder.add(
        options.scheduler.schedule(() => {
          running.remove(holder);
          lookup();
        }, delay),
      );
    };
    const next = (): void =>
      lookupIn(failures === 0 ? options.externalIpCacheMs : Math.min(options.externalIpCacheMs, backoffDelayMs(failures, {}, () => 0.5)));
    // Grants that carry the address need no lookup ahead of the add, but one right behind it:
    // scheduled, the lookup queues after the adds of the streams subscribing now.
    if (nat().grantsCarryExternalIp === true) lookupIn(0);
    else lookup();
    return () => running.unsubscribe();
  }).pipe(share({ connector: () => new ReplaySubject<AddressReading>(1), resetOnRefCountZero: true }));
}

/**
 * The protocol a NAT's errors are reported under (`extip` never fails; it reports as `pmp`;
 * a `upnp-pinhole` speaks UPnP SOAP and reports as `upnp`).
 *
 * @example
 * ```ts
 * protocolOf(extIp('203.0.113.7')); // 'pmp'
 * ```
 */
export function protocolOf(nat: Nat): 'upnp' | 'pmp' | 'pcp' | 'stun' {
  return nat.kind === 'extip' ? 'pmp' : nat.kind === 'upnp-pinhole' ? 'upnp' : nat.kind;
}

/**
 * A counting semaphore over cold Observables that serves the lowest priority first (arrival
 * order among equals): a call is subscribed only when fewer than `concurrency` calls run.
 * Unsubscribing a waiting call removes it from the queue; unsubscribing a running one frees its
 * slot.
 *
 * @example
 * ```ts
 * const queue = priorityQueue(1);
 * merge(queue(add$, Infinity), queue(delete$, -Infinity)); // while add$ runs, delete$ goes next
 * ```
 */
export function priorityQueue(concurrency: number): <T>(call: Observable<T>, priority: number) => Observable<T> {
  const slots = Math.max(1, Math.floor(concurrency));
  let running = 0;
  let arrivals = 0;
  const waiting: Array<{ readonly priority: number; readonly order: number; readonly start: () => void }> = [];
  let draining = false;
  // A loop, not recursion: calls that finish synchronously never grow the stack.
  const drain = (): void => {
    if (draining) return;
    draining = true;
    while (running < slots && waiting.length > 0) waiting.shift()!.start();
    draining = false;
  };
  const release = (): void => {
    running--;
    drain();
  };
  const enqueue = (item: (typeof waiting)[number]): void => {
    // Binary search for the first waiting call that goes after this one.
    let lo = 0;
    let hi = waiting.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const other = waiting[mid]!;
      if (other.priority < item.priority || (other.priority === item.priority && other.order < item.order)) lo = mid + 1;
      else hi = mid;
    }
    waiting.splice(lo, 0, item);
  };
  return <T>(call: Observable<T>, priority: number) =>
    new Observable<T>((subscriber) => {
      let started = false;
      let finished = false;
      let inner: Subscription | undefined;
      const finish = (): void => {
        if (started && !finished) {
          finished = true;
          release();
        }
      };
      const item = {
        priority: Number.isNaN(priority) ? ADD_PRIORITY : priority,
        order: arrivals++,
        start: (): void => {
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
        },
      };
      if (running < slots) item.start();
      else enqueue(item);
      return () => {
        if (!started) {
          const index = waiting.indexOf(item);
          if (index >= 0) waiting.splice(index, 1);
          return;
        }
        inner?.unsubscribe();
        finish();
      };
    });
}
