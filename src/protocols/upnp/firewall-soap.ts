/**
 * SOAP codec for UPnP IGDv2 `WANIPv6FirewallControl:1` (IPv6 firewall pinholes): requests,
 * responses and `UPnPError` faults, both directions (the simulator uses the server side). Pure.
 *
 * Written from the WANIPv6FirewallControl:1 service template (UPnP Forum, 2010; ISO/IEC
 * 29341-24-11): seven actions, arguments without the `New` prefix of WANIPConnection (except
 * UpdatePinhole's `NewLeaseTime`), the protocol as an IANA number (6 TCP, 17 UDP, 65535 the
 * wildcard), ports and UniqueID as `ui2` (0 the port wildcard), LeaseTime as `ui4` in 1-86400.
 *
 * @packageDocumentation
 */
import type { MappingProtocol } from '../../core/nat.js';
import { GatewayError, ProtocolError } from '../../errors.js';
import { WAN_IPV6_FIREWALL_CONTROL_1 } from './description.js';
import { encodeSoapFault, encodeSoapRequest, upnpErrorName, type SoapArguments, type SoapFault, type SoapRequest } from './soap.js';

/**
 * The actions of WANIPv6FirewallControl:1.
 *
 * @example
 * ```ts
 * const action: FirewallAction = 'AddPinhole';
 * ```
 */
export type FirewallAction =
  | 'GetFirewallStatus'
  | 'GetOutboundPinholeTimeout'
  | 'AddPinhole'
  | 'UpdatePinhole'
  | 'DeletePinhole'
  | 'GetPinholePackets'
  | 'CheckPinholeWorking';

/**
 * Every {@link FirewallAction}, in the order of the service template.
 *
 * @example
 * ```ts
 * FIREWALL_ACTIONS.includes(action as FirewallAction);
 * ```
 */
export const FIREWALL_ACTIONS: readonly FirewallAction[] = Object.freeze([
  'GetFirewallStatus',
  'GetOutboundPinholeTimeout',
  'AddPinhole',
  'UpdatePinhole',
  'DeletePinhole',
  'GetPinholePackets',
  'CheckPinholeWorking',
]);

/**
 * The error codes of WANIPv6FirewallControl:1 and their names (the 7xx codes are this
 * service's own: WANIPConnection gives 7xx other meanings), so pinhole faults are named from
 * this table, then from the general UPnP one (401, 402, 501…).
 *
 * @example
 * ```ts
 * FIREWALL_ERROR_NAMES[703]; // 'InboundPinholeNotAllowed'
 * ```
 */
export const FIREWALL_ERROR_NAMES: Readonly<Record<number, string>> = Object.freeze({
  606: 'ActionNotAuthorized',
  701: 'PinholeSpaceExhausted',
  702: 'FirewallDisabled',
  703: 'InboundPinholeNotAllowed',
  704: 'NoSuchEntry',
  705: 'ProtocolNotSupported',
  706: 'InternalPortWildcardingNotAllowed',
  707: 'ProtocolWildcardingNotAllowed',
  708: 'WildCardNotPermittedInSrcIP',
  709: 'NoPacketSent',
});

/**
 * The name of a pinhole fault code: {@link FIREWALL_ERROR_NAMES}, else the general UPnP name
 * (`InvalidArgs` for 402), else `UPnPError<code>`.
 *
 * @example
 * ```ts
 * firewallErrorName(701); // 'PinholeSpaceExhausted'
 * firewallErrorName(402); // 'InvalidArgs'
 * ```
 */
export function firewallErrorName(code: number): string {
  return Object.prototype.hasOwnProperty.call(FIREWALL_ERROR_NAMES, code) ? (FIREWALL_ERROR_NAMES[code] as string) : upnpErrorName(code);
}

/**
 * Turns a pinhole fault into the typed {@link GatewayError}: protocol `upnp`, the code, its
 * WANIPv6FirewallControl name, the control URL as gateway.
 *
 * @example
 * ```ts
 * if (decoded.kind === 'fault') throw firewallFaultToError(decoded, controlUrl); // 703 InboundPinholeNotAllowed
 * ```
 */
export function firewallFaultToError(fault: SoapFault, gateway: string, message?: string): GatewayError {
  const name = firewallErrorName(fault.errorCode);
  // miniupnpd writes its own spellings ("InternalPortWilcardingNotAllowed"): kept as the detail.
  const detail = message ?? (fault.errorDescription && fault.errorDescription !== name ? fault.errorDescription : undefined);
  return new GatewayError({ protocol: 'upnp', resultCode: fault.errorCode, resultName: name, gateway, ...(detail ? { message: detail } : {}) });
}

/** The IANA protocol number of TCP in `Protocol`. */
export const PINHOLE_PROTOCOL_TCP = 6;
/** The IANA protocol number of UDP in `Protocol`. */
export const PINHOLE_PROTOCOL_UDP = 17;
/** `Protocol` 65535: any protocol (refused by gateways with 707). */
export const PINHOLE_PROTOCOL_ANY = 65535;
/** Shortest pinhole lease (A_ARG_TYPE_LeaseTime's minimum), in seconds. */
export const PINHOLE_MIN_LEASE_SECONDS = 1;
/** Longest pinhole lease (A_ARG_TYPE_LeaseTime's maximum: one day), in seconds. */
export const PINHOLE_MAX_LEASE_SECONDS = 86_400;

/**
 * The IANA protocol number sent as `Protocol`.
 *
 * @example
 * ```ts
 * pinholeProtocolNumber('udp'); // 17
 * ```
 */
export function pinholeProtocolNumber(protocol: MappingProtocol): number {
  return protocol === 'udp' ? PINHOLE_PROTOCOL_UDP : PINHOLE_PROTOCOL_TCP;
}

/**
 * The lease to ask for a requested lifetime: pinholes have no permanent lease, so 0 (a
 * permanent mapping elsewhere) and anything above a day become 86400; below 1 becomes 1.
 *
 * @example
 * ```ts
 * pinholeLeaseSeconds(0);      // 86400
 * pinholeLeaseSeconds(3600);   // 3600
 * pinholeLeaseSeconds(604800); // 86400
 * ```
 */
export function pinholeLeaseSeconds(lifetimeSeconds: number): number {
  if (!Number.isFinite(lifetimeSeconds) || lifetimeSeconds === 0) return PINHOLE_MAX_LEASE_SECONDS;
  return Math.min(PINHOLE_MAX_LEASE_SECONDS, Math.max(PINHOLE_MIN_LEASE_SECONDS, Math.floor(lifetimeSeconds)));
}

/**
 * Which traffic a pinhole lets in: AddPinhole's and GetOutboundPinholeTimeout's arguments.
 *
 * @example
 * ```ts
 * const hole: PinholeFilter = { internalClient: '2001:db8::10', internalPort: 8080, protocol: 'tcp' };
 * ```
 */
export interface PinholeFilter {
  /** `RemoteHost`: the only remote address let in; empty (the default) is the wildcard. */
  readonly remoteHost?: string;
  /** `RemotePort`: the only remote port let in; 0 (the default) is the wildcard. */
  readonly remotePort?: number;
  /** `InternalClient`: this host's IPv6 address (never a wildcard: 708). */
  readonly internalClient: string;
  /** `InternalPort`, 1-65535 (never the wildcard 0: 706). */
  readonly internalPort: number;
  readonly protocol: MappingProtocol;
}

/**
 * AddPinhole's arguments: the filter and the lease.
 *
 * @example
 * ```ts
 * encodeAddPinhole({ internalClient: '2001:db8::10', internalPort: 8080, protocol: 'udp', leaseTimeSeconds: 3600 });
 * ```
 */
export interface AddPinholeArguments extends PinholeFilter {
  /** `LeaseTime` in seconds, 1-86400 (see {@link pinholeLeaseSeconds}). */
  readonly leaseTimeSeconds: number;
}

const filterArgs = (hole: PinholeFilter): SoapArguments => [
  ['RemoteHost', hole.remoteHost ?? ''],
  ['RemotePort', hole.remotePort ?? 0],
  ['InternalClient', hole.internalClient],
  ['InternalPort', hole.internalPort],
  ['Protocol', pinholeProtocolNumber(hole.protocol)],
];

/**
 * Encodes GetFirewallStatus (no arguments).
 *
 * @example
 * ```ts
 * encodeGetFirewallStatus().headers.SOAPAction; // "urn:schemas-upnp-org:service:WANIPv6FirewallControl:1#GetFirewallStatus"
 * ```
 */
export function encodeGetFirewallStatus(serviceType = WAN_IPV6_FIREWALL_CONTROL_1): SoapRequest {
  return encodeSoapRequest(serviceType, 'GetFirewallStatus', []);
}

/**
 * Encodes GetOutboundPinholeTimeout: how long the firewall keeps an outbound flow's return path
 * open without traffic.
 *
 * @example
 * ```ts
 * encodeGetOutboundPinholeTimeout({ internalClient: '2001:db8::10', internalPort: 8080, protocol: 'udp' });
 * ```
 */
export function encodeGetOutboundPinholeTimeout(hole: PinholeFilter, serviceType = WAN_IPV6_FIREWALL_CONTROL_1): SoapRequest {
  return encodeSoapRequest(serviceType, 'GetOutboundPinholeTimeout', filterArgs(hole));
}

/**
 * Encodes AddPinhole; the answer carries the pinhole's `UniqueID` ({@link readUniqueId}).
 *
 * @example
 * ```ts
 * encodeAddPinhole({ internalClient: '2001:db8::10', internalPort: 8080, protocol: 'tcp', leaseTimeSeconds: 60 });
 * ```
 */
export function encodeAddPinhole(args: AddPinholeArguments, serviceType = WAN_IPV6_FIREWALL_CONTROL_1): SoapRequest {
  return encodeSoapRequest(serviceType, 'AddPinhole', [...filterArgs(args), ['LeaseTime', args.leaseTimeSeconds]]);
}

/**
 * Encodes UpdatePinhole: a new lease for the pinhole `uniqueId` (the renewal).
 *
 * @example
 * ```ts
 * encodeUpdatePinhole(7, 3600);
 * ```
 */
export function encodeUpdatePinhole(uniqueId: number, leaseTimeSeconds: number, serviceType = WAN_IPV6_FIREWALL_CONTROL_1): SoapRequest {
  return encodeSoapRequest(serviceType, 'UpdatePinhole', [
    ['UniqueID', uniqueId],
    ['NewLeaseTime', leaseTimeSeconds],
  ]);
}

/**
 * Encodes DeletePinhole.
 *
 * @example
 * ```ts
 * encodeDeletePinhole(7);
 * ```
 */
export function encodeDeletePinhole(uniqueId: number, serviceType = WAN_IPV6_FIREWALL_CONTROL_1): SoapRequest {
  return encodeSoapRequest(serviceType, 'DeletePinhole', [['UniqueID', uniqueId]]);
}

/**
 * Encodes GetPinholePackets (packets that went through the pinhole).
 *
 * @example
 * ```ts
 * encodeGetPinholePackets(7);
 * ```
 */
export function encodeGetPinholePackets(uniqueId: number, serviceType = WAN_IPV6_FIREWALL_CONTROL_1): SoapRequest {
  return encodeSoapRequest(serviceType, 'GetPinholePackets', [['UniqueID', uniqueId]]);
}

/**
 * Encodes CheckPinholeWorking (an optional action: gateways without it answer 401 or 602).
 *
 * @example
 * ```ts
 * encodeCheckPinholeWorking(7);
 * ```
 */
export function encodeCheckPinholeWorking(uniqueId: number, serviceType = WAN_IPV6_FIREWALL_CONTROL_1): SoapRequest {
  return encodeSoapRequest(serviceType, 'CheckPinholeWorking', [['UniqueID', uniqueId]]);
}

/**
 * GetFirewallStatus's answer.
 *
 * @example
 * ```ts
 * if (status.firewallEnabled && !status.inboundPinholeAllowed) console.log('pinholes are off on this router');
 * ```
 */
export interface FirewallStatus {
  /** `FirewallEnabled`: false means the firewall is off (no pinhole needed, AddPinhole answers 702). */
  readonly firewallEnabled: boolean;
  /** `InboundPinholeAllowed`: false means AddPinhole answers 703. */
  readonly inboundPinholeAllowed: boolean;
}

/**
 * Reads a UPnP `boolean` (`0`/`1`, `true`/`false`, `yes`/`no`, any case); `undefined` otherwise.
 *
 * @example
 * ```ts
 * readUpnpBoolean('1'); // true
 * readUpnpBoolean('maybe'); // undefined
 * ```
 */
export function readUpnpBoolean(text: string | undefined): boolean | undefined {
  const value = text?.trim().toLowerCase();
  if (value === '1' || value === 'true' || value === 'yes') return true;
  if (value === '0' || value === 'false' || value === 'no') return false;
  return undefined;
}

/**
 * Reads GetFirewallStatus's output arguments, or a {@link ProtocolError} with reason
 * `bad-firewall-status` when either is missing or not a boolean.
 *
 * @example
 * ```ts
 * readFirewallStatus(new Map([['FirewallEnabled', '1'], ['InboundPinholeAllowed', '1']]));
 * // { firewallEnabled: true, inboundPinholeAllowed: true }
 * ```
 */
export function readFirewallStatus(values: ReadonlyMap<string, string>, gateway?: string): FirewallStatus | ProtocolError {
  const firewallEnabled = readUpnpBoolean(values.get('FirewallEnabled'));
  const inboundPinholeAllowed = readUpnpBoolean(values.get('InboundPinholeAllowed'));
  if (firewallEnabled === undefined || inboundPinholeAllowed === undefined) {
    return new ProtocolError('upnp', 'bad-firewall-status', `GetFirewallStatus answered ${JSON.stringify(Object.fromEntries(values))}`, gateway);
  }
  return { firewallEnabled, inboundPinholeAllowed };
}

/**
 * Reads AddPinhole's `UniqueID` (a `ui2`: 0-65535), or a {@link ProtocolError} with reason
 * `unique-id` when it is missing or not one.
 *
 * @example
 * ```ts
 * readUniqueId(new Map([['UniqueID', '7']])); // 7
 * ```
 */
export function readUniqueId(values: ReadonlyMap<string, string>, gateway?: string): number | ProtocolError {
  const id = readUnsigned(values.get('UniqueID'), 0xffff);
  return id ?? new ProtocolError('upnp', 'unique-id', `AddPinhole answered no valid UniqueID (${JSON.stringify(values.get('UniqueID') ?? null)})`, gateway);
}

/**
 * Reads GetOutboundPinholeTimeout's `OutboundPinholeTimeout` (seconds, a `ui4`), or a
 * {@link ProtocolError} with reason `bad-timeout`.
 *
 * @example
 * ```ts
 * readOutboundPinholeTimeout(new Map([['OutboundPinholeTimeout', '120']])); // 120
 * ```
 */
export function readOutboundPinholeTimeout(values: ReadonlyMap<string, string>, gateway?: string): number | ProtocolError {
  const seconds = readUnsigned(values.get('OutboundPinholeTimeout'), 0xffffffff);
  return (
    seconds ??
    new ProtocolError('upnp', 'bad-timeout', `GetOutboundPinholeTimeout answered ${JSON.stringify(values.get('OutboundPinholeTimeout') ?? null)}`, gateway)
  );
}

/**
 * Reads GetPinholePackets's `PinholePackets` (a `ui4`), or a {@link ProtocolError} with reason
 * `bad-packets`.
 *
 * @example
 * ```ts
 * readPinholePackets(new Map([['PinholePackets', '12']])); // 12
 * ```
 */
export function readPinholePackets(values: ReadonlyMap<string, string>, gateway?: string): number | ProtocolError {
  const packets = readUnsigned(values.get('PinholePackets'), 0xffffffff);
  return packets ?? new ProtocolError('upnp', 'bad-packets', `GetPinholePackets answered ${JSON.stringify(values.get('PinholePackets') ?? null)}`, gateway);
}

/**
 * Reads CheckPinholeWorking's `IsWorking`, or a {@link ProtocolError} with reason `bad-working`.
 *
 * @example
 * ```ts
 * readIsWorking(new Map([['IsWorking', '1']])); // true
 * ```
 */
export function readIsWorking(values: ReadonlyMap<string, string>, gateway?: string): boolean | ProtocolError {
  const working = readUpnpBoolean(values.get('IsWorking'));
  return working ?? new ProtocolError('upnp', 'bad-working', `CheckPinholeWorking answered ${JSON.stringify(values.get('IsWorking') ?? null)}`, gateway);
}

function readUnsigned(text: string | undefined, max: number): number | undefined {
  const value = text?.trim();
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined;
  const n = Number(value);
  return n <= max ? n : undefined;
}

// ---------------------------------------------------------------------------------------------
// Server side (used by the gateway simulator).

/**
 * An AddPinhole request as a gateway reads it.
 *
 * @example
 * ```ts
 * const parsed = readAddPinholeRequest(request.args);
 * if (typeof parsed !== 'number') console.log(parsed.internalClient, parsed.leaseTimeSeconds);
 * ```
 */
export interface DecodedAddPinhole {
  readonly remoteHost: string;
  readonly remotePort: number;
  readonly internalClient: string;
  readonly internalPort: number;
  readonly protocol: MappingProtocol;
  readonly leaseTimeSeconds: number;
}

/**
 * Checks AddPinhole's arguments (server side) in the order miniupnpd does, and returns them or
 * the fault code: 402 (a malformed protocol, port or lease out of 1-86400), 706 (InternalPort 0),
 * 708 (InternalClient empty or `*`), 707 (Protocol 65535), 705 (not TCP or UDP).
 *
 * @example
 * ```ts
 * readAddPinholeRequest(new Map([['InternalClient', ''], ['InternalPort', '80'], ['Protocol', '6'], ['LeaseTime', '60']])); // 708
 * ```
 */
export function readAddPinholeRequest(args: ReadonlyMap<string, string>): DecodedAddPinhole | number {
  const protocol = readUnsigned(args.get('Protocol'), 0xffff);
  const remotePort = readUnsigned(args.get('RemotePort') ?? '0', 0xffff);
  const internalPort = readUnsigned(args.get('InternalPort') ?? '0', 0xffff);
  if (protocol === undefined || remotePort === undefined || internalPort === undefined) return 402;
  if (internalPort === 0) return 706;
  const internalClient = (args.get('InternalClient') ?? '').trim();
  if (internalClient === '' || internalClient === '*') return 708;
  if (protocol === PINHOLE_PROTOCOL_ANY) return 707;
  if (protocol !== PINHOLE_PROTOCOL_TCP && protocol !== PINHOLE_PROTOCOL_UDP) return 705;
  const lease = readUnsigned(args.get('LeaseTime'), 0xffffffff);
  if (lease === undefined || lease < PINHOLE_MIN_LEASE_SECONDS || lease > PINHOLE_MAX_LEASE_SECONDS) return 402;
  const remoteHost = (args.get('RemoteHost') ?? '').trim();
  return {
    remoteHost: remoteHost === '*' ? '' : remoteHost,
    remotePort,
    internalClient,
    internalPort,
    protocol: protocol === PINHOLE_PROTOCOL_UDP ? 'udp' : 'tcp',
    leaseTimeSeconds: lease,
  };
}

/**
 * Reads the `UniqueID` of UpdatePinhole, DeletePinhole, GetPinholePackets or
 * CheckPinholeWorking (server side), and UpdatePinhole's `NewLeaseTime` when `withLease`; 402
 * when malformed or the lease is out of 1-86400.
 *
 * @example
 * ```ts
 * readPinholeIdRequest(new Map([['UniqueID', '7'], ['NewLeaseTime', '60']]), true); // { uniqueId: 7, leaseTimeSeconds: 60 }
 * ```
 */
export function readPinholeIdRequest(
  args: ReadonlyMap<string, string>,
  withLease: boolean,
): { readonly uniqueId: number; readonly leaseTimeSeconds: number | undefined } | number {
  const uniqueId = readUnsigned(args.get('UniqueID'), 0xffff);
  if (uniqueId === undefined) return 402;
  if (!withLease) return { uniqueId, leaseTimeSeconds: undefined };
  const lease = readUnsigned(args.get('NewLeaseTime'), 0xffffffff);
  if (lease === undefined || lease < PINHOLE_MIN_LEASE_SECONDS || lease > PINHOLE_MAX_LEASE_SECONDS) return 402;
  return { uniqueId, leaseTimeSeconds: lease };
}

/**
 * Encodes a pinhole fault (server side; sent with HTTP 500), named from
 * {@link FIREWALL_ERROR_NAMES}.
 *
 * @example
 * ```ts
 * encodeFirewallFault(704); // ...<errorCode>704</errorCode><errorDescription>NoSuchEntry</errorDescription>...
 * ```
 */
export function encodeFirewallFault(errorCode: number, errorDescription = firewallErrorName(errorCode)): string {
  return encodeSoapFault(errorCode, errorDescription);
}
