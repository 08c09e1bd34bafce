/**
 * NAT-PMP (RFC 6886) messages as bytes and back. Pure: no sockets, no clocks. Decoders never
 * throw: malformed input comes back as a {@link ProtocolError} value whose `reason` says why
 * (`short`, `long`, `version`, `opcode`, `response`, `request`, `reserved`, `result`).
 *
 * Encoders throw a `RangeError` on out-of-range fields (a programming error, not input).
 *
 * @packageDocumentation
 */
import { bytesToIpv4, ipv4ToBytes } from '../../core/address.js';
import type { MappingProtocol } from '../../core/nat.js';
import { ProtocolError } from '../../errors.js';

/**
 * The NAT-PMP version number (the first byte of every message).
 *
 * @example
 * ```ts
 * if (bytes[0] !== PMP_VERSION) console.log('not NAT-PMP');
 * ```
 */
export const PMP_VERSION = 0;

/**
 * The UDP port NAT-PMP and PCP servers listen on (RFC 6886 §3, RFC 6887 §19.1).
 *
 * @example
 * ```ts
 * pmp('192.168.1.1', { port: PMP_SERVER_PORT });
 * ```
 */
export const PMP_SERVER_PORT = 5351;

/**
 * Added to a request's opcode to form its response's opcode.
 *
 * @example
 * ```ts
 * const isResponse = (bytes[1] & PMP_RESPONSE_BIT) !== 0;
 * ```
 */
export const PMP_RESPONSE_BIT = 0x80;

/**
 * NAT-PMP request opcodes (RFC 6886 §3.2, §3.3).
 *
 * @example
 * ```ts
 * const opcode = PmpOpcode.MAP_TCP; // 2
 * ```
 */
export const PmpOpcode = {
  EXTERNAL_ADDRESS: 0,
  MAP_UDP: 1,
  MAP_TCP: 2,
} as const;

/**
 * NAT-PMP result codes (RFC 6886 §3.5).
 *
 * @example
 * ```ts
 * if (response.resultCode === PmpResultCode.NOT_AUTHORIZED) console.log('mapping disabled on the router');
 * ```
 */
export const PmpResultCode = {
  SUCCESS: 0,
  UNSUPPORTED_VERSION: 1,
  NOT_AUTHORIZED: 2,
  NETWORK_FAILURE: 3,
  OUT_OF_RESOURCES: 4,
  UNSUPPORTED_OPCODE: 5,
} as const;

const RESULT_NAMES: readonly string[] = [
  'SUCCESS',
  'UNSUPPORTED_VERSION',
  'NOT_AUTHORIZED',
  'NETWORK_FAILURE',
  'OUT_OF_RESOURCES',
  'UNSUPPORTED_OPCODE',
];

/**
 * The RFC 6886 name of a NAT-PMP result code; `UNKNOWN_<n>` for codes the RFC does not define.
 *
 * @example
 * ```ts
 * pmpResultName(2); // 'NOT_AUTHORIZED'
 * ```
 */
export function pmpResultName(code: number): string {
  return RESULT_NAMES[code] ?? `UNKNOWN_${code}`;
}

/**
 * Request for the gateway's external IPv4 address (opcode 0, 2 bytes).
 *
 * @example
 * ```ts
 * const request: PmpExternalAddressRequest = { op: 'external-address' };
 * ```
 */
export interface PmpExternalAddressRequest {
  readonly op: 'external-address';
}

/**
 * Request to create, renew or (lifetime 0) delete a mapping (opcode 1 UDP, 2 TCP; 12 bytes).
 * A delete sends suggested external port 0 (RFC 6886 §3.4).
 *
 * @example
 * ```ts
 * const remove: PmpMapRequest = { op: 'map', protocol: 'udp', internalPort: 30303, suggestedExternalPort: 0, lifetimeSeconds: 0 };
 * ```
 */
export interface PmpMapRequest {
  readonly op: 'map';
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  readonly suggestedExternalPort: number;
  readonly lifetimeSeconds: number;
}

/**
 * A NAT-PMP request.
 *
 * @example
 * ```ts
 * const requests: PmpRequest[] = [{ op: 'external-address' }];
 * ```
 */
export type PmpRequest = PmpExternalAddressRequest | PmpMapRequest;

/**
 * Answer to {@link PmpExternalAddressRequest} (opcode 128, 12 bytes).
 *
 * @example
 * ```ts
 * if (response.op === 'external-address') console.log(response.externalIp);
 * ```
 */
export interface PmpExternalAddressResponse {
  readonly op: 'external-address';
  readonly resultCode: number;
  readonly epochSeconds: number;
  /** Dotted-quad IPv4 address. */
  readonly externalIp: string;
}

/**
 * Answer to {@link PmpMapRequest} (opcode 129 UDP, 130 TCP; 16 bytes).
 *
 * @example
 * ```ts
 * if (response.op === 'map' && response.resultCode === 0) console.log(response.externalPort, response.lifetimeSeconds);
 * ```
 */
export interface PmpMapResponse {
  readonly op: 'map';
  readonly protocol: MappingProtocol;
  readonly resultCode: number;
  readonly epochSeconds: number;
  readonly internalPort: number;
  readonly externalPort: number;
  readonly lifetimeSeconds: number;
}

/**
 * The 8-byte error form: version, opcode, result code, epoch. Sent for "unsupported version"
 * (opcode 128 per RFC 6886 erratum 3618) and "unsupported opcode"; always a non-zero result.
 *
 * @example
 * ```ts
 * if (response.op === 'short') console.log(pmpResultName(response.resultCode));
 * ```
 */
export interface PmpShortResponse {
  readonly op: 'short';
  /** The raw response opcode byte (128 or more). */
  readonly opcode: number;
  readonly resultCode: number;
  readonly epochSeconds: number;
}

/**
 * A NAT-PMP response.
 *
 * @example
 * ```ts
 * const response: PmpResponse | ProtocolError = decodePmpResponse(datagram);
 * ```
 */
export type PmpResponse = PmpExternalAddressResponse | PmpMapResponse | PmpShortResponse;

/**
 * How strictly a decoder reads fields the RFC reserves.
 *
 * @example
 * ```ts
 * decodePmpRequest(datagram, { reserved: 'ignore' });
 * ```
 */
export interface PmpDecodeOptions {
  /**
   * `'reject'` (default) returns a `reserved` {@link ProtocolError} when a reserved field is not
   * zero; `'ignore'` follows the RFC's "ignore on reception" (clients use this with real routers).
   */
  readonly reserved?: 'reject' | 'ignore';
}

/**
 * Encodes a NAT-PMP request.
 *
 * @example
 * ```ts
 * const bytes = encodePmpRequest({ op: 'map', protocol: 'tcp', internalPort: 8080, suggestedExternalPort: 8080, lifetimeSeconds: 3600 });
 * bytes.length; // 12
 * ```
 */
export function encodePmpRequest(request: PmpRequest): Uint8Array {
  if (request.op === 'external-address') return Uint8Array.of(PMP_VERSION, PmpOpcode.EXTERNAL_ADDRESS);
  const bytes = new Uint8Array(12);
  const view = viewOf(bytes);
  view.setUint8(0, PMP_VERSION);
  view.setUint8(1, mapOpcode(request.protocol));
  view.setUint16(2, 0);
  view.setUint16(4, u16(request.internalPort, 'internalPort'));
  view.setUint16(6, u16(request.suggestedExternalPort, 'suggestedExternalPort'));
  view.setUint32(8, u32(request.lifetimeSeconds, 'lifetimeSeconds'));
  return bytes;
}

/**
 * Decodes a NAT-PMP request (what a server receives). Reasons: `short`, `long`, `version`,
 * `response` (opcode ≥ 128: a response, which servers silently ignore), `opcode` (unknown
 * request opcode: servers answer UNSUPPORTED_OPCODE), `reserved`.
 *
 * @example
 * ```ts
 * const request = decodePmpRequest(Uint8Array.of(0, 0));
 * if (!(request instanceof ProtocolError)) console.log(request.op); // 'external-address'
 * ```
 */
export function decodePmpRequest(bytes: Uint8Array, options: PmpDecodeOptions = {}): PmpRequest | ProtocolError {
  if (bytes.length < 2) return malformed('short', `request of ${bytes.length} bytes`);
  const view = viewOf(bytes);
  const version = view.getUint8(0);
  if (version !== PMP_VERSION) return malformed('version', `request version ${version}, expected ${PMP_VERSION}`);
  const opcode = view.getUint8(1);
  if (opcode >= PMP_RESPONSE_BIT) return malformed('response', `opcode ${opcode} is a response`);
  if (opcode === PmpOpcode.EXTERNAL_ADDRESS) {
    if (bytes.length !== 2) return malformed('long', `external address request of ${bytes.length} bytes, expected 2`);
    return { op: 'external-address' };
  }
  if (opcode !== PmpOpcode.MAP_UDP && opcode !== PmpOpcode.MAP_TCP) return malformed('opcode', `unknown request opcode ${opcode}`);
  const lengthError = exactLength(bytes, 12, 'map request');
  if (lengthError) return lengthError;
  if (options.reserved !== 'ignore' && view.getUint16(2) !== 0) return malformed('reserved', 'reserved field of a map request is not zero');
  return {
    op: 'map',
    protocol: opcode === PmpOpcode.MAP_TCP ? 'tcp' : 'udp',
    internalPort: view.getUint16(4),
    suggestedExternalPort: view.getUint16(6),
    lifetimeSeconds: view.getUint32(8),
  };
}

/**
 * Encodes a NAT-PMP response (what a server sends).
 *
 * @example
 * ```ts
 * encodePmpResponse({ op: 'external-address', resultCode: 0, epochSeconds: 1200, externalIp: '203.0.113.1' }).length; // 12
 * ```
 */
export function encodePmpResponse(response: PmpResponse): Uint8Array {
  const length = response.op === 'external-address' ? 12 : response.op === 'map' ? 16 : 8;
  const bytes = new Uint8Array(length);
  const view = viewOf(bytes);
  view.setUint8(0, PMP_VERSION);
  const opcode =
    response.op === 'external-address'
      ? PMP_RESPONSE_BIT | PmpOpcode.EXTERNAL_ADDRESS
      : response.op === 'map'
        ? PMP_RESPONSE_BIT | mapOpcode(response.protocol)
        : u8(response.opcode, 'opcode');
  view.setUint8(1, opcode);
  view.setUint16(2, u16(response.resultCode, 'resultCode'));
  view.setUint32(4, u32(response.epochSeconds, 'epochSeconds'));
  if (response.op === 'external-address') {
    bytes.set(ipv4ToBytes(response.externalIp), 8);
  } else if (response.op === 'map') {
    view.setUint16(8, u16(response.internalPort, 'internalPort'));
    view.setUint16(10, u16(response.externalPort, 'externalPort'));
    view.setUint32(12, u32(response.lifetimeSeconds, 'lifetimeSeconds'));
  }
  return bytes;
}

/**
 * Decodes a NAT-PMP response (what a client receives). The exact length is enforced: 12 bytes
 * for opcode 128, 16 for 129/130, or the 8-byte error form when the result is not SUCCESS.
 * Reasons: `short`, `long`, `version`, `request` (opcode < 128), `opcode`, `result`.
 *
 * @example
 * ```ts
 * const response = decodePmpResponse(datagram);
 * if (response instanceof ProtocolError) console.warn(response.reason);
 * else if (response.op === 'external-address') console.log(response.externalIp);
 * ```
 */
export function decodePmpResponse(bytes: Uint8Array): PmpResponse | ProtocolError {
  if (bytes.length < 2) return malformed('short', `response of ${bytes.length} bytes`);
  const view = viewOf(bytes);
  const version = view.getUint8(0);
  if (version !== PMP_VERSION) return malformed('version', `response version ${version}, expected ${PMP_VERSION}`);
  const opcode = view.getUint8(1);
  if (opcode < PMP_RESPONSE_BIT) return malformed('request', `opcode ${opcode} is a request`);
  if (bytes.length < 8) return malformed('short', `response of ${bytes.length} bytes`);
  const resultCode = view.getUint16(2);
  const epochSeconds = view.getUint32(4);
  if (bytes.length === 8) {
    if (resultCode === PmpResultCode.SUCCESS) return malformed('short', `successful response with opcode ${opcode} of 8 bytes`);
    return { op: 'short', opcode, resultCode, epochSeconds };
  }
  if (opcode === (PMP_RESPONSE_BIT | PmpOpcode.EXTERNAL_ADDRESS)) {
    const lengthError = exactLength(bytes, 12, 'external address response');
    if (lengthError) return lengthError;
    return { op: 'external-address', resultCode, epochSeconds, externalIp: bytesToIpv4(bytes.subarray(8, 12)) };
  }
  if (opcode === (PMP_RESPONSE_BIT | PmpOpcode.MAP_UDP) || opcode === (PMP_RESPONSE_BIT | PmpOpcode.MAP_TCP)) {
    const lengthError = exactLength(bytes, 16, 'map response');
    if (lengthError) return lengthError;
    return {
      op: 'map',
      protocol: opcode === (PMP_RESPONSE_BIT | PmpOpcode.MAP_TCP) ? 'tcp' : 'udp',
      resultCode,
      epochSeconds,
      internalPort: view.getUint16(8),
      externalPort: view.getUint16(10),
      lifetimeSeconds: view.getUint32(12),
    };
  }
  return malformed('opcode', `unknown response opcode ${opcode} of ${bytes.length} bytes`);
}

/**
 * The response opcode a request's answer carries (request opcode + 128).
 *
 * @example
 * ```ts
 * pmpResponseOpcode({ op: 'external-address' }); // 128
 * ```
 */
export function pmpResponseOpcode(request: PmpRequest): number {
  return PMP_RESPONSE_BIT | (request.op === 'external-address' ? PmpOpcode.EXTERNAL_ADDRESS : mapOpcode(request.protocol));
}

/**
 * One reading of a gateway's epoch: its "seconds since start of epoch" and the local clock then.
 *
 * @example
 * ```ts
 * const seen: EpochObservation = { epochSeconds: response.epochSeconds, localMs: scheduler.now() };
 * ```
 */
export interface EpochObservation {
  /** The gateway's epoch field, in seconds. */
  readonly epochSeconds: number;
  /** The client's clock when the packet arrived, in ms (`scheduler.now()`). */
  readonly localMs: number;
}

/**
 * RFC 6886 §3.6: true when a NAT-PMP gateway lost its mappings between two replies. The client
 * expects the epoch to have advanced by at least 7/8 of its own elapsed time; an epoch more than
 * 2 s behind that estimate means the gateway rebooted (or otherwise lost state).
 *
 * @example
 * ```ts
 * pmpEpochLost({ epochSeconds: 3600, localMs: 0 }, { epochSeconds: 5, localMs: 60_000 }); // true
 * ```
 */
export function pmpEpochLost(previous: EpochObservation, current: EpochObservation): boolean {
  const elapsedSeconds = Math.max(0, current.localMs - previous.localMs) / 1000;
  const expected = previous.epochSeconds + (elapsedSeconds * 7) / 8;
  return current.epochSeconds < expected - 2;
}

function mapOpcode(protocol: MappingProtocol): number {
  if (protocol === 'tcp') return PmpOpcode.MAP_TCP;
  if (protocol === 'udp') return PmpOpcode.MAP_UDP;
  throw new RangeError(`unknown protocol ${String(protocol)}`);
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function exactLength(bytes: Uint8Array, expected: number, what: string): ProtocolError | undefined {
  if (bytes.length < expected) return malformed('short', `${what} of ${bytes.length} bytes, expected ${expected}`);
  if (bytes.length > expected) return malformed('long', `${what} of ${bytes.length} bytes, expected ${expected}`);
  return undefined;
}

function malformed(reason: string, message: string): ProtocolError {
  return new ProtocolError('pmp', reason, message);
}

function u8(value: number, field: string): number {
  return checkInt(value, 0xff, field);
}

function u16(value: number, field: string): number {
  return checkInt(value, 0xffff, field);
}

function u32(value: number, field: string): number {
  return checkInt(value, 0xffffffff, field);
}

function checkInt(value: number, max: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${field} must be an integer in 0-${max}, got ${value}`);
  return value;
}

/**
 * What a NAT-PMP gateway announces, unsolicited, to 224.0.0.1:5350 after it boots, reboots or
 * gets a new external address (RFC 6886 §3.2.1): the external address response's form.
 *
 * @example
 * ```ts
 * const announcement: PmpAnnouncement = { epochSeconds: 0, externalIp: '203.0.113.1' };
 * ```
 */
export interface PmpAnnouncement {
  readonly epochSeconds: number;
  /** Dotted-quad IPv4 address. */
  readonly externalIp: string;
}

/**
 * Decodes a NAT-PMP announcement (RFC 6886 §3.2.1): a 12-byte external address response with
 * result SUCCESS. Anything else is a {@link ProtocolError}: the {@link decodePmpResponse}
 * reasons, or `announcement` for another response or a non-success result.
 *
 * @example
 * ```ts
 * const announced = decodePmpAnnouncement(datagram);
 * if (!(announced instanceof ProtocolError)) console.log('gateway epoch', announced.epochSeconds);
 * ```
 */
export function decodePmpAnnouncement(bytes: Uint8Array): PmpAnnouncement | ProtocolError {
  const response = decodePmpResponse(bytes);
  if (response instanceof ProtocolError) return response;
  if (response.op !== 'external-address') return malformed('announcement', `a ${response.op} response is not an announcement`);
  if (response.resultCode !== PmpResultCode.SUCCESS) return malformed('announcement', `an announcement with result ${response.resultCode}`);
  return { epochSeconds: response.epochSeconds, externalIp: response.externalIp };
}
