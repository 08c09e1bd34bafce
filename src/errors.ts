/**
 * Typed errors. Every error rxnat produces is an {@link RxnatError}; the ones a gateway causes
 * carry the protocol, the protocol's own code and the gateway that produced them.
 *
 * @packageDocumentation
 */

/** The mechanisms that can produce a gateway error (`stun`: a STUN server asked for the external address). */
export type GatewayProtocol = 'upnp' | 'pmp' | 'pcp' | 'stun';

/**
 * Base class of every error rxnat produces.
 *
 * @example
 * ```ts
 * mapping$.subscribe({ error: (e) => { if (e instanceof RxnatError) console.error(e.code, e.message); } });
 * ```
 */
export class RxnatError extends Error {
  /** A stable machine-readable code, for example `ERR_NO_GATEWAY`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }

  /**
   * What `JSON.stringify` writes for this error: `name`, `code`, `message`, then the error's own
   * fields (`protocol`, `resultCode`, `resultName`, `gateway`, `retryAfterSeconds`, `deletes`,
   * `failures`, …), then `cause`; nested errors (a `cause`, each `deletes[].error`,
   * `failures[].error`) are serialised the same way, plain `Error`s included (see
   * {@link serializeError}). Never throws: a cycle becomes `"[circular Name: message]"`, a bigint
   * its decimal string. The stack is left out.
   *
   * @example
   * ```ts
   * const e = new GatewayError({ protocol: 'pmp', resultCode: 2, resultName: 'NOT_AUTHORIZED', gateway: '192.168.1.1' });
   * JSON.stringify(e);
   * // {"name":"GatewayError","code":"ERR_GATEWAY_REFUSED","message":"pmp gateway 192.168.1.1 refused: 2 NOT_AUTHORIZED",
   * //  "protocol":"pmp","resultCode":2,"resultName":"NOT_AUTHORIZED","gateway":"192.168.1.1"}
   * JSON.stringify(state); // a MappingState: its `error`, when an RxnatError, with all of the above
   * ```
   */
  toJSON(): SerializedError {
    return serializeError(this);
  }
}

/**
 * An error as JSON (see {@link serializeError}): `name`, `message`, `code` when the error has
 * one, its own fields, and `cause` (itself serialised) when it has one.
 *
 * @example
 * ```ts
 * const json: SerializedError = serializeError(new Error('boom')); // { name: 'Error', message: 'boom' }
 * ```
 */
export interface SerializedError {
  readonly name: string;
  /** The error's `code`: rxnat's `ERR_…`, or a Node.js system error's `ECONNREFUSED`. */
  readonly code?: unknown;
  readonly message: string;
  readonly cause?: unknown;
  /** The error's own fields (`protocol`, `gateway`, `deletes`, `errno`, …), serialised. */
  readonly [field: string]: unknown;
}

/** Nesting deeper than this is written as `"[truncated]"` (a cause chain that long is a bug elsewhere). */
const MAX_SERIALIZE_DEPTH = 32;

/**
 * Any error as a JSON-safe object: `name`, `code` (when it has one), `message`, its own
 * enumerable fields (rxnat's `protocol`, `gateway`, `deletes`…; a Node.js system error's
 * `errno`, `syscall`, `address`…), `cause` and an `AggregateError`'s `errors`, nested errors
 * serialised alike. What {@link RxnatError.toJSON} returns; use it for the errors that are not
 * rxnat's (a `MappingState`'s `error` may be a plain `Error`, which `JSON.stringify` writes as
 * `{}`). Never throws: a cycle becomes `"[circular Name: message]"`, a bigint its decimal string,
 * a function is left out, and so is the stack.
 *
 * @example
 * ```ts
 * import { serializeError, type MappingState } from 'rxnat';
 * const line = (s: MappingState): string => JSON.stringify({ ...s, error: s.error && serializeError(s.error) });
 * ```
 */
export function serializeError(error: Error): SerializedError {
  return errorToJson(error, new Set(), 0);
}

function errorToJson(error: Error, ancestors: Set<object>, depth: number): SerializedError {
  ancestors.add(error);
  try {
    const { code, errors } = error as { code?: unknown; errors?: unknown };
    const json: Record<string, unknown> = { name: String(error.name) };
    if (code !== undefined) json.code = jsonValue(code, ancestors, depth + 1);
    json.message = String(error.message);
    for (const [key, value] of Object.entries(error)) {
      if (Object.hasOwn(json, key) || key === 'stack' || key === 'cause' || key === 'errors') continue;
      const field = jsonValue(value, ancestors, depth + 1);
      if (field !== undefined) json[key] = field;
    }
    if (error.cause !== undefined) json.cause = jsonValue(error.cause, ancestors, depth + 1);
    if (Array.isArray(errors)) json.errors = jsonValue(errors, ancestors, depth + 1);
    return json as SerializedError;
  } finally {
    ancestors.delete(error);
  }
}

/** A JSON-safe copy of `value`: errors serialised, arrays and objects walked, cycles noted. */
function jsonValue(value: unknown, ancestors: Set<object>, depth: number): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (typeof value !== 'object' || value === null) return value;
  if (ancestors.has(value)) return value instanceof Error ? `[circular ${String(value.name)}: ${String(value.message)}]` : '[circular]';
  if (depth > MAX_SERIALIZE_DEPTH) return '[truncated]';
  if (value instanceof Error) return errorToJson(value, ancestors, depth);
  // Dates, Buffers and the like say themselves how they serialise.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => jsonValue(item, ancestors, depth + 1) ?? null);
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const field = jsonValue(item, ancestors, depth + 1);
      if (field !== undefined) copy[key] = field;
    }
    return copy;
  } finally {
    ancestors.delete(value);
  }
}

/**
 * The caller's mapping request is invalid (port outside 1-65535, unknown protocol, negative
 * lifetime). The only error a mapping stream ever ends with, raised at subscribe.
 *
 * @example
 * ```ts
 * mapPort(nat, { protocol: 'tcp', internalPort: 70000 }).subscribe({ error: (e) => e instanceof InvalidMappingRequestError });
 * ```
 */
export class InvalidMappingRequestError extends RxnatError {
  /** The request field at fault. */
  readonly field: string;
  constructor(field: string, message: string) {
    super('ERR_INVALID_MAPPING_REQUEST', message);
    this.field = field;
  }
}

/**
 * `parseNat` was given a spec it does not understand.
 *
 * @example
 * ```ts
 * try { parseNat('carrier-pigeon'); } catch (e) { if (e instanceof NatSpecError) console.error(e.spec); }
 * ```
 */
export class NatSpecError extends RxnatError {
  /** The spec string as given. */
  readonly spec: string;
  constructor(spec: string, message: string) {
    super('ERR_NAT_SPEC', message);
    this.spec = spec;
  }
}

/** One backend's reason for not finding a gateway, as listed by {@link NoGatewayError}. */
export interface BackendFailure {
  /** The backend's name, for example `pmp` or `upnp`. */
  readonly backend: string;
  /** Why it failed (a timeout when it was still probing at the deadline). */
  readonly error: Error;
}

/**
 * Discovery found no gateway: every backend failed, or the deadline passed.
 *
 * @example
 * ```ts
 * discoverNat().subscribe({ error: (e) => e instanceof NoGatewayError && e.failures.forEach((f) => console.error(f.backend, f.error.message)) });
 * ```
 */
export class NoGatewayError extends RxnatError {
  /** Each backend's failure, in the order the backends were given. */
  readonly failures: readonly BackendFailure[];
  constructor(failures: readonly BackendFailure[]) {
    const detail = failures.map((f) => `${f.backend}: ${f.error.message}`).join('; ');
    super('ERR_NO_GATEWAY', `no NAT gateway found${detail ? ` (${detail})` : ''}`);
    this.failures = failures;
  }
}

/**
 * Asked for the external address of a mapping that is not established (go-libp2p-nat's `ErrNoMapping`).
 *
 * @example
 * ```ts
 * try { mapping.externalAddr(); } catch (e) { if (e instanceof NoMappingError) console.log('not yet'); }
 * ```
 */
export class NoMappingError extends RxnatError {
  constructor() {
    super('ERR_NO_MAPPING', 'mapping not established');
  }
}

/**
 * The gateway answered and refused: a UPnP fault, or a NAT-PMP/PCP result code other than success.
 *
 * @example
 * ```ts
 * if (e instanceof GatewayError && e.protocol === 'upnp' && e.resultCode === 718) console.log('port taken');
 * ```
 */
export class GatewayError extends RxnatError {
  readonly protocol: GatewayProtocol;
  /** The protocol's own code: UPnP error code (718), NAT-PMP result code (2), PCP result code (8). */
  readonly resultCode: number;
  /** The protocol's name for the code, for example `ConflictInMappingEntry` or `NO_RESOURCES`. */
  readonly resultName: string;
  /** The gateway that answered (address, or control URL for UPnP). */
  readonly gateway: string;
  /** How long the gateway asked us to wait before retrying (PCP error lifetime), in seconds. */
  readonly retryAfterSeconds: number | undefined;
  constructor(init: {
    protocol: GatewayProtocol;
    resultCode: number;
    resultName: string;
    gateway: string;
    message?: string;
    retryAfterSeconds?: number;
  }) {
    super(
      'ERR_GATEWAY_REFUSED',
      `${init.protocol} gateway ${init.gateway} refused: ${init.resultCode} ${init.resultName}${init.message ? ` (${init.message})` : ''}`,
    );
    this.protocol = init.protocol;
    this.resultCode = init.resultCode;
    this.resultName = init.resultName;
    this.gateway = init.gateway;
    this.retryAfterSeconds = init.retryAfterSeconds;
  }

  /**
   * True when the code means "this protocol will not map here" rather than "not this request,
   * not now": the protocol is off, not authorized, or cannot work through what lies between us
   * and the gateway ({@link NOT_HERE_CODES}). A mapping refused so moves to another backend.
   */
  get notHere(): boolean {
    return NOT_HERE_CODES[this.protocol]?.includes(this.resultCode) ?? false;
  }
}

/**
 * Refusals that mean "this protocol will not map on this gateway", per protocol:
 * - NAT-PMP (RFC 6886 §3.5): 2 Not Authorized/Refused (the box has NAT-PMP off or forbids
 *   mappings), 3 Network Failure (no usable external address: miniupnpd answers it when its
 *   WAN address is private), 5 Unsupported opcode.
 * - PCP (RFC 6887 §7.4): 1 UNSUPP_VERSION, 2 NOT_AUTHORIZED, 4 UNSUPP_OPCODE,
 *   12 ADDRESS_MISMATCH (a NAT between us and the server rewrote our address: PCP cannot work
 *   through it), 13 EXCESSIVE_REMOTE_PEERS is not one (a property of the request).
 * - UPnP: 401 Invalid Action and 602 Optional Action Not Implemented (no such action there),
 *   606 Action not authorized (IGD security or "allow UPnP changes" off), 501 Action Failed
 *   (miniupnpd's answer when it cannot forward at all, for example a private WAN address).
 * Codes about the request (a port taken, a lease not supported, a resource exhausted) are not
 * in it: the mapping stays on its gateway and retries.
 */
export const NOT_HERE_CODES: Readonly<Record<GatewayProtocol, readonly number[]>> = {
  pmp: [2, 3, 5],
  pcp: [1, 2, 4, 12],
  upnp: [401, 501, 602, 606],
  stun: [],
};

/**
 * The gateway did not answer in time (after the protocol's retransmissions).
 *
 * @example
 * ```ts
 * if (e instanceof GatewayTimeoutError) console.log(`${e.gateway} silent for ${e.timeoutMs} ms`);
 * ```
 */
export class GatewayTimeoutError extends RxnatError {
  readonly protocol: GatewayProtocol;
  readonly gateway: string;
  readonly timeoutMs: number;
  constructor(protocol: GatewayProtocol, gateway: string, timeoutMs: number) {
    super('ERR_GATEWAY_TIMEOUT', `${protocol} gateway ${gateway} did not answer within ${timeoutMs} ms`);
    this.protocol = protocol;
    this.gateway = gateway;
    this.timeoutMs = timeoutMs;
  }
}

/**
 * The gateway cannot be reached: connection refused (ICMP port unreachable: the protocol is not
 * served there, or the router moved its control port), reset, or no route.
 *
 * @example
 * ```ts
 * if (e instanceof GatewayUnreachableError) console.log('not served at', e.gateway);
 * ```
 */
export class GatewayUnreachableError extends RxnatError {
  readonly protocol: GatewayProtocol;
  readonly gateway: string;
  /** The socket error code behind it (`ECONNREFUSED`, `ECONNRESET`, …), where there was one. */
  readonly socketCode: string | undefined;
  constructor(protocol: GatewayProtocol, gateway: string, reason: string, options?: { cause?: unknown }) {
    super('ERR_GATEWAY_UNREACHABLE', `${protocol} gateway ${gateway} unreachable: ${reason}`, options);
    this.protocol = protocol;
    this.gateway = gateway;
    const code = (options?.cause as { code?: unknown } | undefined)?.code;
    this.socketCode = typeof code === 'string' ? code : undefined;
  }

  /**
   * True when nothing serves the protocol there any more (connection refused, no route), as
   * after a router reboot that moved its control port; false for a reset or an early close,
   * which a flaky but present gateway also produces.
   */
  get gatewayGone(): boolean {
    return this.socketCode === undefined
      ? false
      : ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL'].includes(this.socketCode);
  }
}

/**
 * A message could not be decoded (wrong length, version, opcode, malformed XML), or a gateway
 * answered something the protocol forbids (a LOCATION on another host, an oversized body).
 *
 * @example
 * ```ts
 * const decoded = decodePmpResponse(bytes); if (decoded instanceof ProtocolError) console.log(decoded.reason);
 * ```
 */
export class ProtocolError extends RxnatError {
  readonly protocol: GatewayProtocol | 'ssdp';
  /** The gateway that sent it, where known. */
  readonly gateway: string | undefined;
  /** A short machine-readable reason, for example `short`, `version`, `opcode`, `doctype`. */
  readonly reason: string;
  constructor(protocol: GatewayProtocol | 'ssdp', reason: string, message: string, gateway?: string) {
    super('ERR_PROTOCOL', `${protocol}${gateway ? ` from ${gateway}` : ''}: ${message}`);
    this.protocol = protocol;
    this.reason = reason;
    this.gateway = gateway;
  }
}

/**
 * A mapping stream gave up on a gateway: it kept refusing connections or stopped answering (the
 * router rebooted and moved its control port, or went away), or it refused the mapping with a
 * code that means the protocol will not map there. The stream rediscovers (skipping a backend
 * that refused, for a while) and maps again. Seen on the
 * mapping state's `error` while that happens.
 *
 * @example
 * ```ts
 * if (state.error instanceof GatewayLostError) console.log('rediscovering after', state.error.cause);
 * ```
 */
export class GatewayLostError extends RxnatError {
  /** The NAT's name, for example `upnp(192.168.1.1)`. */
  readonly gateway: string;
  /**
   * Why: `unreachable` (connections refused, no route, or no answer to several requests in a
   * row), or `refused` (the gateway said this protocol will not map here: {@link GatewayError.notHere}).
   */
  readonly reason: 'unreachable' | 'refused';
  constructor(gateway: string, cause: unknown, reason: 'unreachable' | 'refused' = 'unreachable') {
    super('ERR_GATEWAY_LOST', `${reason === 'refused' ? `${gateway} will not map here` : `lost gateway ${gateway}`}; rediscovering`, { cause });
    this.gateway = gateway;
    this.reason = reason;
  }
}

/**
 * The default gateway could not be determined (no default route, `ip` missing, a route form
 * such as `default dev tun0` that names no router address).
 *
 * @example
 * ```ts
 * if (e instanceof DefaultGatewayError && e.reason === 'no-default-route') console.log('pass a gateway address');
 * ```
 */
export class DefaultGatewayError extends RxnatError {
  readonly reason: 'no-default-route' | 'ip-missing' | 'unsupported-route' | 'failed';
  constructor(reason: DefaultGatewayError['reason'], message: string, options?: { cause?: unknown }) {
    super('ERR_DEFAULT_GATEWAY', message, options);
    this.reason = reason;
  }
}

/**
 * An option of `mapPort` (or of a facade built on it) is out of its range: a renew fraction
 * that is not in (0, 1), a delay below its floor, a scheduler that is not one. Raised at
 * subscribe, like {@link InvalidMappingRequestError}, before the gateway hears anything.
 *
 * @example
 * ```ts
 * mapPort(nat, request, { renewFraction: 0 }).subscribe({ error: (e) => e instanceof InvalidOptionError && console.error(e.option) });
 * ```
 */
export class InvalidOptionError extends RxnatError {
  /** The option at fault, for example `renewFraction` or `retry.initialDelayMs`. */
  readonly option: string;
  constructor(option: string, message: string) {
    super('ERR_INVALID_OPTION', message);
    this.option = option;
  }
}

/** One delete the gateway did not confirm at teardown, as listed by {@link UnconfirmedDeleteError}. */
export interface UnconfirmedDelete {
  readonly protocol: 'tcp' | 'udp';
  readonly internalPort: number;
  /** The external port that may still be mapped. */
  readonly externalPort: number;
  /** The NAT's name, for example `upnp(192.168.1.1)`. */
  readonly gateway: string;
  /**
   * When the router drops it by itself at the latest, in ms on the scheduler's clock
   * (`Date.now()` for the default scheduler); `null` for a permanent lease.
   */
  readonly leaseEndsAtMs: number | null;
  /** Why the delete was not confirmed (timeout, refusal, unreachable). */
  readonly error: Error;
}

/**
 * Teardown could not confirm that every mapping is gone: the gateway did not answer a delete,
 * or refused it. Carried by the last `unmapped` state of a graceful stop; `natService().close()`
 * and `natMap` reject with it.
 *
 * @example
 * ```ts
 * try { await service.close(); } catch (e) {
 *   if (e instanceof UnconfirmedDeleteError) for (const d of e.deletes) console.error(d.protocol, d.externalPort, d.gateway);
 * }
 * ```
 */
export class UnconfirmedDeleteError extends RxnatError {
  /** Every delete that was not confirmed. */
  readonly deletes: readonly UnconfirmedDelete[];
  constructor(deletes: readonly UnconfirmedDelete[]) {
    const list = deletes.map((d) => `${d.protocol} ${d.externalPort} → ${d.internalPort} on ${d.gateway}`).join(', ');
    super('ERR_DELETE_UNCONFIRMED', `the gateway did not confirm the delete of ${list}`);
    this.deletes = deletes;
  }
}

/**
 * The gateway said it lost its mappings (a NAT-PMP/PCP epoch that went backwards: a reboot).
 * Seen on an `unmapped` state until the mapping is re-added.
 *
 * @example
 * ```ts
 * if (state.error instanceof GatewayResetError) console.log(`${state.error.gateway} restarted; re-adding`);
 * ```
 */
export class GatewayResetError extends RxnatError {
  /** The NAT's name, for example `pmp(192.168.1.1)`. */
  readonly gateway: string;
  constructor(gateway: string) {
    super('ERR_GATEWAY_RESET', `${gateway} restarted and lost its mappings; re-adding`);
    this.gateway = gateway;
  }
}

/**
 * A lease ended before its renewal was granted: the gateway no longer holds the mapping, so the
 * state turned `unmapped` at that moment. Seen on the state's `error` until the mapping is back.
 *
 * @example
 * ```ts
 * if (state.error instanceof LeaseExpiredError) console.log(`port ${state.error.externalPort} lapsed on ${state.error.gateway}`);
 * ```
 */
export class LeaseExpiredError extends RxnatError {
  /** The NAT's name, for example `upnp(192.168.1.1)`. */
  readonly gateway: string;
  /** The external port whose lease ended. */
  readonly externalPort: number;
  constructor(gateway: string, externalPort: number) {
    super('ERR_LEASE_EXPIRED', `the lease of external port ${externalPort} on ${gateway} ended before a renewal was granted`);
    this.gateway = gateway;
    this.externalPort = externalPort;
  }
}

/**
 * The gateway no longer holds a mapping whose lease had not ended: a check of its table (UPnP
 * GetSpecificPortMappingEntry) found it missing or pointing elsewhere (routers that clean their
 * table, a reboot). Seen on an `unmapped` state until the mapping is re-added.
 *
 * @example
 * ```ts
 * if (state.error instanceof MappingMissingError) console.log(`${state.error.gateway} dropped port ${state.error.externalPort}`);
 * ```
 */
export class MappingMissingError extends RxnatError {
  /** The NAT's name, for example `upnp(192.168.1.1)`. */
  readonly gateway: string;
  /** The external port the gateway no longer holds for us. */
  readonly externalPort: number;
  constructor(gateway: string, externalPort: number) {
    super('ERR_MAPPING_MISSING', `${gateway} no longer holds external port ${externalPort} for us; re-adding`);
    this.gateway = gateway;
    this.externalPort = externalPort;
  }
}

/**
 * A local UDP port could not be listened on: the address or port is taken (`EADDRINUSE`),
 * privileged (`EACCES`), or not this host's (`EADDRNOTAVAIL`). What the transport's
 * `udpListen` fails with; the NAT-PMP/PCP backends catch it and fall back to reading the
 * epoch of their replies.
 *
 * @example
 * ```ts
 * if (e instanceof ListenError && e.socketCode === 'EADDRINUSE') console.log(`${e.address}:${e.port} is taken`);
 * ```
 */
export class ListenError extends RxnatError {
  /** The local address asked for. */
  readonly address: string;
  /** The local port asked for. */
  readonly port: number;
  /** The socket error code (`EADDRINUSE`, `EACCES`, …), where there was one. */
  readonly socketCode: string | undefined;
  constructor(address: string, port: number, reason: string, options?: { cause?: unknown }) {
    super('ERR_LISTEN', `cannot listen on ${address.includes(':') ? `[${address}]` : address}:${port}: ${reason}`, options);
    this.address = address;
    this.port = port;
    const code = (options?.cause as { code?: unknown } | undefined)?.code;
    this.socketCode = typeof code === 'string' ? code : undefined;
  }
}
