import { asyncScheduler, isObservable, type Observable, type SchedulerLike } from 'rxjs';
import { InvalidMappingRequestError, InvalidOptionError } from '../errors.js';
import type { RetryOptions } from './backoff.js';
import { isGatewayRegistry, type GatewayRegistry } from './gateway-context.js';
import { debugLogger, type Logger } from './logger.js';
import { bytesToIp, classifyAddress, ipToBytes, parseIpv6 } from './address.js';
import type { AddressFamily, MappingProtocol, MappingRequest } from './nat.js';

/**
 * A {@link MappingRequest} with every default applied. `family` is present when the request
 * named one or gave an `internalAddress` (absent means `'ipv4'`, so IPv4 requests resolve as
 * they always did); `internalAddress` is present when given, in RFC 5952 text.
 */
export interface ResolvedMappingRequest {
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  readonly externalPort: number;
  readonly description: string;
  readonly lifetimeSeconds: number;
  readonly family?: AddressFamily;
  readonly internalAddress?: string;
}

/** go-libp2p-nat's MappingDuration: the lease asked for when the caller names none. */
export const DEFAULT_LIFETIME_SECONDS = 60;

/** Longest lease rxnat asks for: NAT-PMP/PCP lifetimes are 32-bit, UPnP's a ui4. */
const MAX_LIFETIME_SECONDS = 0xffffffff;

const isPort = (value: unknown): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 65535;

/**
 * Checks a caller's request and applies the defaults (external port = internal port,
 * description `rxnat`, lifetime 60 s). Throws {@link InvalidMappingRequestError}: the only
 * error that ends a mapping stream, because only the caller can fix it.
 *
 * `family` must be `'ipv4'` or `'ipv6'`; an `internalAddress` implies `'ipv6'` and must be an
 * IPv6 unicast address of global or unique-local scope without a zone (`family: 'ipv4'` with one
 * is refused as a contradiction); it is returned in RFC 5952 form.
 *
 * @example
 * ```ts
 * resolveMappingRequest({ protocol: 'tcp', internalPort: 8080 });
 * // { protocol: 'tcp', internalPort: 8080, externalPort: 8080, description: 'rxnat', lifetimeSeconds: 60 }
 * resolveMappingRequest({ protocol: 'tcp', internalPort: 8080, internalAddress: '2001:DB8:0::10' });
 * // { ..., family: 'ipv6', internalAddress: '2001:db8::10' }
 * ```
 */
export function resolveMappingRequest(request: MappingRequest): ResolvedMappingRequest {
  if (request === null || typeof request !== 'object') {
    throw new InvalidMappingRequestError('request', 'a mapping request must be an object');
  }
  const { protocol, internalPort, externalPort = internalPort, description = 'rxnat' } = request;
  const lifetimeSeconds = request.lifetimeSeconds ?? DEFAULT_LIFETIME_SECONDS;
  if (protocol !== 'tcp' && protocol !== 'udp') {
    throw new InvalidMappingRequestError('protocol', `unknown protocol ${JSON.stringify(protocol)}: use 'tcp' or 'udp'`);
  }
  if (!isPort(internalPort)) {
    throw new InvalidMappingRequestError('internalPort', `internal port ${String(internalPort)} is not an integer in 1-65535`);
  }
  if (!isPort(externalPort)) {
    throw new InvalidMappingRequestError('externalPort', `external port ${String(externalPort)} is not an integer in 1-65535`);
  }
  if (typeof lifetimeSeconds !== 'number' || !Number.isInteger(lifetimeSeconds) || lifetimeSeconds < 0 || lifetimeSeconds > MAX_LIFETIME_SECONDS) {
    throw new InvalidMappingRequestError('lifetimeSeconds', `lifetime ${String(lifetimeSeconds)} is not a whole number of seconds >= 0`);
  }
  if (typeof description !== 'string') {
    throw new InvalidMappingRequestError('description', 'the description must be a string');
  }
  const family = resolveFamily(request.family, request.internalAddress);
  return {
    protocol,
    internalPort,
    externalPort,
    description,
    lifetimeSeconds,
    ...(family.family !== undefined ? { family: family.family } : {}),
    ...(family.internalAddress !== undefined ? { internalAddress: family.internalAddress } : {}),
  };
}

/** The request's family and internal address, checked; each `undefined` when not given. */
function resolveFamily(given: unknown, address: unknown): { family?: AddressFamily; internalAddress?: string } {
  if (given !== undefined && given !== 'ipv4' && given !== 'ipv6') {
    throw new InvalidMappingRequestError('family', `unknown family ${JSON.stringify(given)}: use 'ipv4' or 'ipv6'`);
  }
  if (address === undefined) return given === undefined ? {} : { family: given };
  if (typeof address !== 'string') throw new InvalidMappingRequestError('internalAddress', 'the internal address must be a string');
  if (given === 'ipv4') {
    throw new InvalidMappingRequestError('internalAddress', `an internal address is for IPv6 requests; family 'ipv4' maps the address this host uses toward the gateway`);
  }
  const shown = JSON.stringify(address);
  if (address.includes('%')) {
    throw new InvalidMappingRequestError('internalAddress', `internal address ${shown} has a zone: only a link-local address has one, and the internet cannot reach it`);
  }
  if (parseIpv6(address) === undefined) throw new InvalidMappingRequestError('internalAddress', `internal address ${shown} is not an IPv6 address`);
  const bytes = ipToBytes(address);
  const kind = classifyAddress(address);
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped || (kind !== 'public' && kind !== 'private')) {
    const what = mapped ? 'IPv4-mapped' : kind === 'reserved' ? 'multicast' : kind;
    throw new InvalidMappingRequestError('internalAddress', `internal address ${shown} is ${what}: use one of this host's global (or unique-local) IPv6 addresses`);
  }
  return { family: 'ipv6', internalAddress: bytesToIp(bytes) };
}

/** The floors and ranges {@link resolveMapPortOptions} enforces, so that no option can make rxnat flood a gateway. */
export const OPTION_LIMITS = {
  /** `externalIpCacheMs` at least this. */
  minExternalIpCacheMs: 250,
  /** `retry.initialDelayMs` at least this. */
  minInitialDelayMs: 50,
  /** `retry.maxDelayMs` at least this (and at least `initialDelayMs`). */
  minMaxDelayMs: 500,
  /** `checkIntervalMs` at least this. */
  minCheckIntervalMs: 1000,
  /** Longest delay or bound any option may name (what a timer can wait). */
  maxDelayMs: 2 ** 31 - 1,
} as const;

/** Every option of `mapPort`, checked, with its default applied. */
export interface ResolvedMapPortOptions {
  readonly renewFraction: number;
  readonly externalIpCacheMs: number;
  readonly retry: { readonly initialDelayMs: number; readonly maxDelayMs: number; readonly jitter: number };
  readonly maxConsecutiveUnreachable: number;
  readonly teardownTimeoutMs: number;
  readonly checkIntervalMs: number;
  readonly stop: Observable<unknown> | undefined;
  readonly logger: Logger;
  readonly random: () => number;
  readonly scheduler: SchedulerLike;
  readonly gatewayRegistry: GatewayRegistry | undefined;
}

/**
 * Options of `mapPort`. Every one has a default; each is checked at subscribe
 * ({@link InvalidOptionError} for one out of range), so no option can make rxnat flood a gateway.
 *
 * @example
 * ```ts
 * mapPort(nat, request, { externalIpCacheMs: 30_000, retry: { maxDelayMs: 10_000 } });
 * ```
 */
export interface MapPortOptions {
  /** Renew when this fraction of the granted lease has passed; in (0, 1). Default 1/3 (go-libp2p-nat). Never sooner than 1 s after a grant. */
  readonly renewFraction?: number;
  /** How long the gateway's external address is trusted before it is asked again; at least 250 ms. Default 15 000 ms (go-libp2p-nat's CacheTime). */
  readonly externalIpCacheMs?: number;
  /** Backoff for failed adds and renewals, and for rediscovery (`initialDelayMs` ≥ 50, `maxDelayMs` ≥ 500, `jitter` in [0, 0.5]). */
  readonly retry?: RetryOptions;
  /**
   * After this many failed adds in a row that got no answer (connection refused, no route, or no
   * reply after the retransmissions), the gateway is taken as lost and rediscovered. Default 3
   * (go-libp2p-nat counts refusals the same way).
   */
  readonly maxConsecutiveUnreachable?: number;
  /**
   * Bound on each request of teardown on the wire (each delete, and an add still in flight then),
   * counted from when it is sent, never while it waits in the gateway's queue. Default 10 000 ms.
   */
  readonly teardownTimeoutMs?: number;
  /**
   * How often a mapping is checked in the gateway's table where the protocol can list it (UPnP
   * GetSpecificPortMappingEntry, through the gateway's queue), whatever the lease: an entry the
   * router dropped is re-added then. At least 1000 ms. Default 30 000 ms.
   */
  readonly checkIntervalMs?: number;
  /**
   * A graceful stop: when it emits, the mapping is deleted, a last `unmapped` state is emitted
   * (its `error` an `UnconfirmedDeleteError` when the gateway did not confirm the delete) and the
   * stream completes. (Unsubscribing also deletes, but nobody can wait for that.)
   */
  readonly stop?: Observable<unknown>;
  /** Where to log; default `debugLogger` (`DEBUG=rxnat:*`). */
  readonly logger?: Logger;
  /** Source of jitter in [0, 1); default `Math.random`. */
  readonly random?: () => number;
  /** Scheduler for every timer; default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /**
   * Who this stream shares gateways with (request queue, address lookups, router entries, and the
   * first stream's logger and `externalIpCacheMs`): a registry from `createGatewayRegistry()`.
   * Default: the process-wide registry.
   */
  readonly gatewayRegistry?: GatewayRegistry;
}

/**
 * Checks `mapPort`'s options and applies the defaults. Throws {@link InvalidOptionError} naming
 * the option: a renew fraction outside (0, 1), a delay below its floor ({@link OPTION_LIMITS}) or
 * not finite, a count that is not a whole number ≥ 1, a scheduler, logger or random source that
 * is not one.
 *
 * @example
 * ```ts
 * resolveMapPortOptions({ renewFraction: 0.5 }).renewFraction; // 0.5
 * resolveMapPortOptions({ renewFraction: 0 });                 // throws InvalidOptionError
 * ```
 */
export function resolveMapPortOptions(options: MapPortOptions | undefined | null): ResolvedMapPortOptions {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object') throw new InvalidOptionError('options', 'the options must be an object');
  const number = (name: string, value: unknown, fallback: number, min: number, max: number, exclusive = false): number => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (exclusive && (value === min || value === max))) {
      const range = exclusive ? `in (${min}, ${max})` : `in [${min}, ${max}]`;
      throw new InvalidOptionError(name, `${name} must be a finite number ${range}, not ${String(value)}`);
    }
    return value;
  };
  const { maxDelayMs: longest, minExternalIpCacheMs, minInitialDelayMs, minMaxDelayMs } = OPTION_LIMITS;
  const renewFraction = number('renewFraction', options.renewFraction, 1 / 3, 0, 1, true);
  const externalIpCacheMs = number('externalIpCacheMs', options.externalIpCacheMs, 15_000, minExternalIpCacheMs, longest);
  const retry = options.retry === undefined ? {} : options.retry;
  if (typeof retry !== 'object' || retry === null) throw new InvalidOptionError('retry', 'retry must be an object');
  const initialDelayMs = number('retry.initialDelayMs', retry.initialDelayMs, 1000, minInitialDelayMs, longest);
  const maxDelayMs = number('retry.maxDelayMs', retry.maxDelayMs, Math.max(60_000, initialDelayMs), Math.max(minMaxDelayMs, initialDelayMs), longest);
  const jitter = number('retry.jitter', retry.jitter, 0.2, 0, 0.5);
  const maxConsecutiveUnreachable = number('maxConsecutiveUnreachable', options.maxConsecutiveUnreachable, 3, 1, 1_000_000);
  if (!Number.isInteger(maxConsecutiveUnreachable)) {
    throw new InvalidOptionError('maxConsecutiveUnreachable', `maxConsecutiveUnreachable must be a whole number, not ${maxConsecutiveUnreachable}`);
  }
  const teardownTimeoutMs = number('teardownTimeoutMs', options.teardownTimeoutMs, 10_000, 1, longest);
  const checkIntervalMs = number('checkIntervalMs', options.checkIntervalMs, 30_000, OPTION_LIMITS.minCheckIntervalMs, longest);
  if (options.stop !== undefined && !isObservable(options.stop)) throw new InvalidOptionError('stop', 'stop must be an Observable');
  const logger = options.logger === undefined ? debugLogger : options.logger;
  if (logger === null || typeof logger !== 'object' || typeof logger.debug !== 'function') {
    throw new InvalidOptionError('logger', 'logger must be an object with a debug(namespace, message, data) method');
  }
  const random = options.random === undefined ? Math.random : options.random;
  if (typeof random !== 'function') throw new InvalidOptionError('random', 'random must be a function returning a number in [0, 1)');
  const scheduler = options.scheduler === undefined ? asyncScheduler : options.scheduler;
  if (scheduler === null || typeof scheduler !== 'object' || typeof scheduler.now !== 'function' || typeof scheduler.schedule !== 'function') {
    throw new InvalidOptionError('scheduler', 'scheduler must be an rxjs SchedulerLike (with now() and schedule())');
  }
  if (options.gatewayRegistry !== undefined && !isGatewayRegistry(options.gatewayRegistry)) {
    throw new InvalidOptionError('gatewayRegistry', 'gatewayRegistry must be made by createGatewayRegistry()');
  }
  const checkedRandom = (): number => {
    const value = random();
    return typeof value === 'number' && value >= 0 && value < 1 ? value : 0.5;
  };
  return {
    renewFraction,
    externalIpCacheMs,
    retry: { initialDelayMs, maxDelayMs, jitter },
    maxConsecutiveUnreachable,
    teardownTimeoutMs,
    checkIntervalMs,
    stop: options.stop,
    logger,
    random: checkedRandom,
    scheduler,
    gatewayRegistry: options.gatewayRegistry,
  };
}
