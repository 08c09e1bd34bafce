/**
 * PCP (RFC 6887) messages as bytes and back: the common request and response headers, the MAP
 * and ANNOUNCE opcodes, options, 96-bit nonces and IPv4-mapped IPv6 addresses. Pure: no
 * sockets, no clocks. Decoders never throw: malformed input comes back as a
 * {@link ProtocolError} value whose `reason` says why (`short`, `long`, `length`, `version`,
 * `request`, `response`, `opcode`, `reserved`, `option`, `address`).
 *
 * Encoders throw a `RangeError` on out-of-range fields (a programming error, not input).
 *
 * @packageDocumentation
 */
import { bytesToIp, ipToBytes } from '../../core/address.js';
import type { MappingProtocol } from '../../core/nat.js';
import { ProtocolError } from '../../errors.js';

/**
 * The PCP version number this codec speaks (RFC 6887 §7).
 *
 * @example
 * ```ts
 * if (bytes[0] === PCP_VERSION) console.log('PCP');
 * ```
 */
export const PCP_VERSION = 2;

/**
 * Size of the common request and response headers.
 *
 * @example
 * ```ts
 * const opcodeData = bytes.subarray(PCP_HEADER_BYTES);
 * ```
 */
export const PCP_HEADER_BYTES = 24;

/**
 * Size of a MAP request or response without options (header + 36 bytes of MAP data).
 *
 * @example
 * ```ts
 * const hasOptions = bytes.length > PCP_MAP_BYTES;
 * ```
 */
export const PCP_MAP_BYTES = 60;

/**
 * Largest PCP message (RFC 6887 §7).
 *
 * @example
 * ```ts
 * if (bytes.length > PCP_MAX_BYTES) console.log('too long');
 * ```
 */
export const PCP_MAX_BYTES = 1100;

/**
 * Size of a mapping nonce (96 bits).
 *
 * @example
 * ```ts
 * const nonce = crypto.getRandomValues(new Uint8Array(PCP_NONCE_BYTES));
 * ```
 */
export const PCP_NONCE_BYTES = 12;

/**
 * The R bit of the opcode byte: set in responses.
 *
 * @example
 * ```ts
 * const isResponse = (bytes[1] & PCP_RESPONSE_BIT) !== 0;
 * ```
 */
export const PCP_RESPONSE_BIT = 0x80;

/**
 * PCP opcodes (RFC 6887 §19.2). This codec encodes and decodes ANNOUNCE and MAP.
 *
 * @example
 * ```ts
 * PcpOpcode.MAP; // 1
 * ```
 */
export const PcpOpcode = {
  ANNOUNCE: 0,
  MAP: 1,
  PEER: 2,
} as const;

/**
 * PCP result codes (RFC 6887 §7.4).
 *
 * @example
 * ```ts
 * if (response.resultCode === PcpResultCode.NOT_AUTHORIZED) console.log('wrong nonce or policy');
 * ```
 */
export const PcpResultCode = {
  SUCCESS: 0,
  UNSUPP_VERSION: 1,
  NOT_AUTHORIZED: 2,
  MALFORMED_REQUEST: 3,
  UNSUPP_OPCODE: 4,
  UNSUPP_OPTION: 5,
  MALFORMED_OPTION: 6,
  NETWORK_FAILURE: 7,
  NO_RESOURCES: 8,
  UNSUPP_PROTOCOL: 9,
  USER_EX_QUOTA: 10,
  CANNOT_PROVIDE_EXTERNAL: 11,
  ADDRESS_MISMATCH: 12,
  EXCESSIVE_REMOTE_PEERS: 13,
} as const;

const RESULT_NAMES: readonly string[] = Object.keys(PcpResultCode);

/**
 * The RFC 6887 name of a PCP result code; `UNKNOWN_<n>` for codes it does not define.
 *
 * @example
 * ```ts
 * pcpResultName(8); // 'NO_RESOURCES'
 * ```
 */
export function pcpResultName(code: number): string {
  return RESULT_NAMES[code] ?? `UNKNOWN_${code}`;
}

/**
 * IANA protocol numbers PCP carries in MAP (0 means "all protocols").
 *
 * @example
 * ```ts
 * PcpProtocolNumber.tcp; // 6
 * ```
 */
export const PcpProtocolNumber = {
  tcp: 6,
  udp: 17,
} as const satisfies Record<MappingProtocol, number>;

/**
 * The mapping protocol of an IANA protocol number, `undefined` when it is neither TCP nor UDP.
 *
 * @example
 * ```ts
 * pcpProtocolName(17); // 'udp'
 * ```
 */
export function pcpProtocolName(protocolNumber: number): MappingProtocol | undefined {
  if (protocolNumber === PcpProtocolNumber.tcp) return 'tcp';
  if (protocolNumber === PcpProtocolNumber.udp) return 'udp';
  return undefined;
}

/**
 * One PCP option (RFC 6887 §7.3): a code and its data (unpadded).
 *
 * @example
 * ```ts
 * const preferFailure: PcpOption = { code: 2, data: new Uint8Array(0) };
 * ```
 */
export interface PcpOption {
  readonly code: number;
  readonly data: Uint8Array;
}

/**
 * An ANNOUNCE request (opcode 0): asks nothing, proves the server speaks PCP.
 *
 * @example
 * ```ts
 * encodePcpRequest({ op: 'announce', lifetimeSeconds: 0, clientIp: '192.168.1.10' });
 * ```
 */
export interface PcpAnnounceRequest {
  readonly op: 'announce';
  /** MUST be 0 for ANNOUNCE. */
  readonly lifetimeSeconds: number;
  /** The client's own address (IPv4 text is sent IPv4-mapped). */
  readonly clientIp: string;
  readonly options?: readonly PcpOption[];
}

/**
 * A MAP request (opcode 1): create, renew or (lifetime 0) delete a mapping.
 *
 * @example
 * ```ts
 * const remove: PcpMapRequest = { ...mapRequest, lifetimeSeconds: 0 }; // same nonce deletes
 * ```
 */
export interface PcpMapRequest {
  readonly op: 'map';
  readonly lifetimeSeconds: number;
  readonly clientIp: string;
  /** 12 bytes chosen at random by the client, reused for renewals and the delete. */
  readonly nonce: Uint8Array;
  /** IANA protocol number: 6 TCP, 17 UDP, 0 all. */
  readonly protocol: number;
  readonly internalPort: number;
  readonly suggestedExternalPort: number;
  /** `::ffff:0.0.0.0` (or `0.0.0.0`) means "any IPv4 address". */
  readonly suggestedExternalIp: string;
  readonly options?: readonly PcpOption[];
}

/**
 * A PCP request this codec understands.
 *
 * @example
 * ```ts
 * const request: PcpRequest | ProtocolError = decodePcpRequest(datagram);
 * ```
 */
export type PcpRequest = PcpAnnounceRequest | PcpMapRequest;

/**
 * Fields every PCP response carries.
 *
 * @example
 * ```ts
 * if (response.op !== 'pmp-unsupported-version' && response.resultCode !== 0) console.log('retry in', response.lifetimeSeconds, 's');
 * ```
 */
export interface PcpResponseHeader {
  /** The opcode answered (without the R bit). */
  readonly opcode: number;
  readonly resultCode: number;
  /** Granted lifetime on success; on error, how long the error applies (RFC 6887 §7.2). */
  readonly lifetimeSeconds: number;
  readonly epochSeconds: number;
}

/**
 * The answer to an ANNOUNCE.
 *
 * @example
 * ```ts
 * if (response.op === 'announce') console.log('PCP server, epoch', response.epochSeconds);
 * ```
 */
export interface PcpAnnounceResponse extends PcpResponseHeader {
  readonly op: 'announce';
  readonly options: readonly PcpOption[];
}

/**
 * The answer to a MAP: the assigned external port and address.
 *
 * @example
 * ```ts
 * if (response.op === 'map') console.log(`${response.externalIp}:${response.externalPort}`);
 * ```
 */
export interface PcpMapResponse extends PcpResponseHeader {
  readonly op: 'map';
  readonly nonce: Uint8Array;
  readonly protocol: number;
  readonly internalPort: number;
  readonly externalPort: number;
  /** IPv4 text when the address is IPv4-mapped, else IPv6 text. */
  readonly externalIp: string;
  readonly options: readonly PcpOption[];
}

/**
 * An error response without MAP or ANNOUNCE data: a bare 24-byte header (the server could not
 * parse the request far enough to copy its opcode data: UNSUPP_VERSION, MALFORMED_REQUEST), or
 * an error answer to an opcode this codec does not parse (UNSUPP_OPCODE to PEER), whose copied
 * data is skipped. Always a non-zero result.
 *
 * @example
 * ```ts
 * if (response.op === 'header') console.log(pcpResultName(response.resultCode));
 * ```
 */
export interface PcpHeaderResponse extends PcpResponseHeader {
  readonly op: 'header';
}

/**
 * A NAT-PMP server's 8-byte "unsupported version" answer to a PCP request (RFC 6886 §3.5,
 * RFC 6887 §9): the gateway speaks NAT-PMP only.
 *
 * @example
 * ```ts
 * if (response.op === 'pmp-unsupported-version') console.log('NAT-PMP only: fall back');
 * ```
 */
export interface PcpPmpUnsupportedVersion {
  readonly op: 'pmp-unsupported-version';
  /** The raw NAT-PMP opcode byte (128, or 128 + the request opcode on some servers). */
  readonly opcode: number;
  readonly resultCode: number;
  readonly epochSeconds: number;
}

/**
 * Anything a PCP client can receive from a PCP (or NAT-PMP-only) server.
 *
 * @example
 * ```ts
 * const response: PcpResponse | ProtocolError = decodePcpResponse(datagram, { reserved: 'ignore' });
 * ```
 */
export type PcpResponse = PcpAnnounceResponse | PcpMapResponse | PcpHeaderResponse | PcpPmpUnsupportedVersion;

/**
 * How strictly a decoder reads fields the RFC reserves.
 *
 * @example
 * ```ts
 * decodePcpResponse(datagram, { reserved: 'ignore' });
 * ```
 */
export interface PcpDecodeOptions {
  /**
   * `'reject'` (default) returns a `reserved` {@link ProtocolError} when a reserved field is not
   * zero; `'ignore'` follows RFC 6887's "MUST be ignored when received" (clients use this).
   */
  readonly reserved?: 'reject' | 'ignore';
}

/**
 * Encodes a PCP ANNOUNCE or MAP request.
 *
 * @example
 * ```ts
 * const bytes = encodePcpRequest({ op: 'map', lifetimeSeconds: 3600, clientIp: '192.168.1.10',
 *   nonce: new Uint8Array(12), protocol: 6, internalPort: 8080, suggestedExternalPort: 8080,
 *   suggestedExternalIp: '0.0.0.0' });
 * bytes.length; // 60
 * ```
 */
export function encodePcpRequest(request: PcpRequest): Uint8Array {
  const body = request.op === 'map' ? PCP_MAP_BYTES - PCP_HEADER_BYTES : 0;
  const options = encodeOptions(request.options ?? []);
  const bytes = new Uint8Array(PCP_HEADER_BYTES + body + options.length);
  checkLength(bytes.length);
  const view = viewOf(bytes);
  view.setUint8(0, PCP_VERSION);
  view.setUint8(1, request.op === 'map' ? PcpOpcode.MAP : PcpOpcode.ANNOUNCE);
  view.setUint32(4, u32(request.lifetimeSeconds, 'lifetimeSeconds'));
  bytes.set(ipToPcpBytes(request.clientIp), 8);
  if (request.op === 'map') writeMapData(bytes, request.nonce, request.protocol, request.internalPort, request.suggestedExternalPort, request.suggestedExternalIp);
  bytes.set(options, PCP_HEADER_BYTES + body);
  return bytes;
}

/**
 * Decodes a PCP request (what a server receives). Reasons: `short`, `long`, `length` (not a
 * multiple of 4), `version`, `response` (R bit set: servers drop it), `opcode`, `reserved`,
 * `option`, `address`.
 *
 * @example
 * ```ts
 * const request = decodePcpRequest(datagram);
 * if (!(request instanceof ProtocolError) && request.op === 'map') console.log(request.internalPort);
 * ```
 */
export function decodePcpRequest(bytes: Uint8Array, options: PcpDecodeOptions = {}): PcpRequest | ProtocolError {
  if (bytes.length < 2) return malformed('short', `request of ${bytes.length} bytes`);
  const view = viewOf(bytes);
  const version = view.getUint8(0);
  if (version !== PCP_VERSION) return malformed('version', `request version ${version}, expected ${PCP_VERSION}`);
  const opcodeByte = view.getUint8(1);
  if (opcodeByte & PCP_RESPONSE_BIT) return malformed('response', 'R bit set: a response, not a request');
  const framing = checkFraming(bytes);
  if (framing) return framing;
  const strict = options.reserved !== 'ignore';
  if (strict && view.getUint16(2) !== 0) return malformed('reserved', 'reserved header field is not zero');
  const lifetimeSeconds = view.getUint32(4);
  const clientIp = pcpBytesToIp(bytes.subarray(8, 24));
  const opcode = opcodeByte & 0x7f;
  if (opcode === PcpOpcode.ANNOUNCE) {
    const parsed = decodeOptions(bytes, PCP_HEADER_BYTES);
    if (parsed instanceof ProtocolError) return parsed;
    return { op: 'announce', lifetimeSeconds, clientIp, options: parsed };
  }
  if (opcode !== PcpOpcode.MAP) return malformed('opcode', `unsupported request opcode ${opcode}`);
  if (bytes.length < PCP_MAP_BYTES) return malformed('short', `MAP request of ${bytes.length} bytes, expected at least ${PCP_MAP_BYTES}`);
  if (strict && (view.getUint8(37) !== 0 || view.getUint16(38) !== 0)) return malformed('reserved', 'reserved MAP field is not zero');
  const parsed = decodeOptions(bytes, PCP_MAP_BYTES);
  if (parsed instanceof ProtocolError) return parsed;
  return {
    op: 'map',
    lifetimeSeconds,
    clientIp,
    nonce: bytes.slice(24, 36),
    protocol: view.getUint8(36),
    internalPort: view.getUint16(40),
    suggestedExternalPort: view.getUint16(42),
    suggestedExternalIp: pcpBytesToIp(bytes.subarray(44, 60)),
    options: parsed,
  };
}

/**
 * Encodes a PCP response (what a server sends); a {@link PcpPmpUnsupportedVersion} is encoded
 * in its 8-byte NAT-PMP form.
 *
 * @example
 * ```ts
 * encodePcpResponse({ op: 'announce', opcode: 0, resultCode: 0, lifetimeSeconds: 0, epochSeconds: 42, options: [] }).length; // 24
 * ```
 */
export function encodePcpResponse(response: PcpResponse): Uint8Array {
  if (response.op === 'pmp-unsupported-version') {
    const bytes = new Uint8Array(8);
    const view = viewOf(bytes);
    view.setUint8(1, u8(response.opcode, 'opcode'));
    view.setUint16(2, u16(response.resultCode, 'resultCode'));
    view.setUint32(4, u32(response.epochSeconds, 'epochSeconds'));
    return bytes;
  }
  const body = response.op === 'map' ? PCP_MAP_BYTES - PCP_HEADER_BYTES : 0;
  const options = response.op === 'header' ? new Uint8Array(0) : encodeOptions(response.options);
  const bytes = new Uint8Array(PCP_HEADER_BYTES + body + options.length);
  checkLength(bytes.length);
  const opcode = response.op === 'map' ? PcpOpcode.MAP : response.op === 'announce' ? PcpOpcode.ANNOUNCE : response.opcode;
  writeResponseHeader(bytes, { ...response, opcode });
  if (response.op === 'map') writeMapData(bytes, response.nonce, response.protocol, response.internalPort, response.externalPort, response.externalIp);
  bytes.set(options, PCP_HEADER_BYTES + body);
  return bytes;
}

/**
 * An error response built as RFC 6887 §8.3 describes: the response header, then the request's
 * opcode data and options copied verbatim (up to 1100 bytes, cut to a multiple of 4), so the
 * client can match it by nonce. A request shorter than the header gets the bare header.
 *
 * @example
 * ```ts
 * const reply = encodePcpErrorResponse(requestBytes, { resultCode: PcpResultCode.NOT_AUTHORIZED, lifetimeSeconds: 30, epochSeconds: 99 });
 * ```
 */
export function encodePcpErrorResponse(
  request: Uint8Array,
  init: { readonly resultCode: number; readonly lifetimeSeconds: number; readonly epochSeconds: number },
): Uint8Array {
  const copied = request.length > PCP_HEADER_BYTES ? request.subarray(PCP_HEADER_BYTES, Math.min(request.length, PCP_MAX_BYTES)) : new Uint8Array(0);
  const body = copied.subarray(0, copied.length - (copied.length % 4));
  const bytes = new Uint8Array(PCP_HEADER_BYTES + body.length);
  writeResponseHeader(bytes, { opcode: (request[1] ?? 0) & 0x7f, ...init });
  bytes.set(body, PCP_HEADER_BYTES);
  return bytes;
}

/**
 * Decodes what a PCP client receives: a MAP or ANNOUNCE response, a bare error header, or a
 * NAT-PMP server's 8-byte UNSUPPORTED_VERSION answer. Reasons: `short`, `long`, `length`,
 * `version`, `request` (R bit clear), `opcode`, `reserved`, `option`, `result`.
 *
 * @example
 * ```ts
 * const response = decodePcpResponse(datagram, { reserved: 'ignore' });
 * if (!(response instanceof ProtocolError) && response.op === 'map') console.log(response.externalPort);
 * ```
 */
export function decodePcpResponse(bytes: Uint8Array, options: PcpDecodeOptions = {}): PcpResponse | ProtocolError {
  if (bytes.length < 2) return malformed('short', `response of ${bytes.length} bytes`);
  const view = viewOf(bytes);
  const version = view.getUint8(0);
  const opcodeByte = view.getUint8(1);
  if (version === 0) {
    // NAT-PMP (version 0) answering a PCP request: only its "unsupported version" form makes sense.
    if (bytes.length !== 8) return malformed('version', `NAT-PMP (version 0) response of ${bytes.length} bytes`);
    const resultCode = view.getUint16(2);
    if (opcodeByte < PCP_RESPONSE_BIT) return malformed('request', `NAT-PMP opcode ${opcodeByte} is a request`);
    if (resultCode !== 1) return malformed('result', `NAT-PMP response with result ${resultCode} to a PCP request`);
    return { op: 'pmp-unsupported-version', opcode: opcodeByte, resultCode, epochSeconds: view.getUint32(4) };
  }
  if (version !== PCP_VERSION) return malformed('version', `response version ${version}, expected ${PCP_VERSION}`);
  if (!(opcodeByte & PCP_RESPONSE_BIT)) return malformed('request', 'R bit clear: a request, not a response');
  const framing = checkFraming(bytes);
  if (framing) return framing;
  const strict = options.reserved !== 'ignore';
  if (strict && (view.getUint8(2) !== 0 || !isZero(bytes.subarray(12, 24)))) return malformed('reserved', 'reserved header field is not zero');
  const header: PcpResponseHeader = {
    opcode: opcodeByte & 0x7f,
    resultCode: view.getUint8(3),
    lifetimeSeconds: view.getUint32(4),
    epochSeconds: view.getUint32(8),
  };
  // An error the server raised before (or without) reading the opcode data: a bare header, or
  // an error answer to an opcode this codec does not parse (PEER): its copied data is skipped.
  const parsedOpcode = header.opcode === PcpOpcode.ANNOUNCE || header.opcode === PcpOpcode.MAP;
  if (header.resultCode !== PcpResultCode.SUCCESS && (!parsedOpcode || (header.opcode === PcpOpcode.MAP && bytes.length === PCP_HEADER_BYTES))) {
    return { op: 'header', ...header };
  }
  // An error answer copies the request's options, malformed ones included: they are skipped.
  const responseOptions = (from: number): PcpOption[] | ProtocolError => {
    const parsed = decodeOptions(bytes, from);
    return parsed instanceof ProtocolError && header.resultCode !== PcpResultCode.SUCCESS ? [] : parsed;
  };
  if (header.opcode === PcpOpcode.ANNOUNCE) {
    const parsed = responseOptions(PCP_HEADER_BYTES);
    if (parsed instanceof ProtocolError) return parsed;
    return { op: 'announce', ...header, options: parsed };
  }
  if (header.opcode !== PcpOpcode.MAP) return malformed('opcode', `unsupported response opcode ${header.opcode}`);
  if (bytes.length < PCP_MAP_BYTES) return malformed('short', `MAP response of ${bytes.length} bytes, expected at least ${PCP_MAP_BYTES}`);
  if (strict && (view.getUint8(37) !== 0 || view.getUint16(38) !== 0)) return malformed('reserved', 'reserved MAP field is not zero');
  const parsed = responseOptions(PCP_MAP_BYTES);
  if (parsed instanceof ProtocolError) return parsed;
  return {
    op: 'map',
    ...header,
    nonce: bytes.slice(24, 36),
    protocol: view.getUint8(36),
    internalPort: view.getUint16(40),
    externalPort: view.getUint16(42),
    externalIp: pcpBytesToIp(bytes.subarray(44, 60)),
    options: parsed,
  };
}

/**
 * RFC 6887 §8.5: true when a PCP server's epoch shows it lost state between two replies: the
 * epoch went back by more than 1 s, or the server's and client's elapsed times disagree by more
 * than 2 s plus 1/16 of the elapsed time, in either direction.
 *
 * @example
 * ```ts
 * pcpEpochLost({ epochSeconds: 3600, localMs: 0 }, { epochSeconds: 0, localMs: 1000 }); // true
 * ```
 */
export function pcpEpochLost(
  previous: { readonly epochSeconds: number; readonly localMs: number },
  current: { readonly epochSeconds: number; readonly localMs: number },
): boolean {
  if (current.epochSeconds + 1 < previous.epochSeconds) return true;
  const clientDelta = Math.max(0, current.localMs - previous.localMs) / 1000;
  const serverDelta = current.epochSeconds - previous.epochSeconds;
  return clientDelta + 2 < serverDelta - serverDelta / 16 || serverDelta + 2 < clientDelta - clientDelta / 16;
}

/**
 * The 16-byte PCP form of an address: IPv4 text becomes IPv4-mapped IPv6 (`::ffff:a.b.c.d`),
 * IPv6 text is parsed (a zone dropped: the wire has no room for it), both by the core's address
 * rules (`ipToBytes`: no leading zeros in IPv4). A `RangeError` when the text is neither.
 *
 * @example
 * ```ts
 * ipToPcpBytes('192.0.2.1'); // 00…00 ff ff c0 00 02 01
 * ```
 */
export function ipToPcpBytes(ip: string): Uint8Array {
  // A link-local socket address may carry a zone (`fe80::1%eth0`): the wire has no room for it.
  return ipToBytes(ip.includes(':') ? ip.replace(/%.*$/, '') : ip);
}

/**
 * The text of a 16-byte PCP address: dotted IPv4 when IPv4-mapped, else compressed IPv6
 * (RFC 5952), as the core's `bytesToIp` writes it.
 *
 * @example
 * ```ts
 * pcpBytesToIp(ipToPcpBytes('203.0.113.1')); // '203.0.113.1'
 * ```
 */
export function pcpBytesToIp(bytes: Uint8Array): string {
  return bytesToIp(bytes);
}

/**
 * The lowercase hex of a nonce (how the simulator's table stores it).
 *
 * @example
 * ```ts
 * nonceToHex(new Uint8Array(12)); // '000000000000000000000000'
 * ```
 */
export function nonceToHex(nonce: Uint8Array): string {
  return Array.from(nonce, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The nonce of a 24-digit hex string, `undefined` when it is not one.
 *
 * @example
 * ```ts
 * hexToNonce('0102030405060708090a0b0c')?.length; // 12
 * ```
 */
export function hexToNonce(hex: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F]{24}$/.test(hex)) return undefined;
  return Uint8Array.from({ length: PCP_NONCE_BYTES }, (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16));
}

function writeResponseHeader(bytes: Uint8Array, header: PcpResponseHeader): void {
  const view = viewOf(bytes);
  view.setUint8(0, PCP_VERSION);
  view.setUint8(1, PCP_RESPONSE_BIT | (u8(header.opcode, 'opcode') & 0x7f));
  view.setUint8(3, u8(header.resultCode, 'resultCode'));
  view.setUint32(4, u32(header.lifetimeSeconds, 'lifetimeSeconds'));
  view.setUint32(8, u32(header.epochSeconds, 'epochSeconds'));
}

function writeMapData(bytes: Uint8Array, nonce: Uint8Array, protocol: number, internalPort: number, externalPort: number, externalIp: string): void {
  if (nonce.length !== PCP_NONCE_BYTES) throw new RangeError(`nonce must be ${PCP_NONCE_BYTES} bytes, got ${nonce.length}`);
  const view = viewOf(bytes);
  bytes.set(nonce, 24);
  view.setUint8(36, u8(protocol, 'protocol'));
  view.setUint16(40, u16(internalPort, 'internalPort'));
  view.setUint16(42, u16(externalPort, 'externalPort'));
  bytes.set(ipToPcpBytes(externalIp), 44);
}

function encodeOptions(options: readonly PcpOption[]): Uint8Array {
  const size = options.reduce((sum, o) => sum + 4 + padded(o.data.length), 0);
  const bytes = new Uint8Array(size);
  const view = viewOf(bytes);
  let at = 0;
  for (const option of options) {
    view.setUint8(at, u8(option.code, 'option code'));
    view.setUint16(at + 2, u16(option.data.length, 'option length'));
    bytes.set(option.data, at + 4);
    at += 4 + padded(option.data.length);
  }
  return bytes;
}

function decodeOptions(bytes: Uint8Array, from: number): PcpOption[] | ProtocolError {
  const view = viewOf(bytes);
  const options: PcpOption[] = [];
  let at = from;
  while (at < bytes.length) {
    if (at + 4 > bytes.length) return malformed('option', `truncated option header at byte ${at}`);
    const code = view.getUint8(at);
    const length = view.getUint16(at + 2);
    if (code === 0) return malformed('option', `option code 0 (reserved) at byte ${at}`);
    if (at + 4 + padded(length) > bytes.length) return malformed('option', `option ${code} of ${length} bytes overruns the message`);
    options.push({ code, data: bytes.slice(at + 4, at + 4 + length) });
    at += 4 + padded(length);
  }
  return options;
}

function checkFraming(bytes: Uint8Array): ProtocolError | undefined {
  if (bytes.length < PCP_HEADER_BYTES) return malformed('short', `message of ${bytes.length} bytes, shorter than the ${PCP_HEADER_BYTES}-byte header`);
  if (bytes.length > PCP_MAX_BYTES) return malformed('long', `message of ${bytes.length} bytes, longer than ${PCP_MAX_BYTES}`);
  if (bytes.length % 4 !== 0) return malformed('length', `message of ${bytes.length} bytes is not a multiple of 4`);
  return undefined;
}

function checkLength(length: number): void {
  if (length > PCP_MAX_BYTES) throw new RangeError(`PCP message of ${length} bytes exceeds ${PCP_MAX_BYTES}`);
}

const padded = (length: number): number => (length + 3) & ~3;

function isZero(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function malformed(reason: string, message: string): ProtocolError {
  return new ProtocolError('pcp', reason, message);
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
 * What a PCP server announces, unsolicited, after it restarts or loses state (RFC 6887
 * §14.1.3): an ANNOUNCE response with result SUCCESS, multicast to 224.0.0.1:5350 (ff02::1
 * for IPv6) or unicast to a client.
 *
 * @example
 * ```ts
 * const announcement: PcpAnnouncement = { epochSeconds: 0 };
 * ```
 */
export interface PcpAnnouncement {
  readonly epochSeconds: number;
}

/**
 * Decodes a PCP announcement (RFC 6887 §14.1.3): an ANNOUNCE response (reserved fields
 * ignored, options allowed) with result SUCCESS. Anything else is a {@link ProtocolError}: the
 * {@link decodePcpResponse} reasons, or `announcement` for another response or a non-success
 * result.
 *
 * @example
 * ```ts
 * const announced = decodePcpAnnouncement(datagram);
 * if (!(announced instanceof ProtocolError)) console.log('server epoch', announced.epochSeconds);
 * ```
 */
export function decodePcpAnnouncement(bytes: Uint8Array): PcpAnnouncement | ProtocolError {
  const response = decodePcpResponse(bytes, { reserved: 'ignore' });
  if (response instanceof ProtocolError) return response;
  if (response.op !== 'announce') return malformed('announcement', `a ${response.op} response is not an announcement`);
  if (response.resultCode !== PcpResultCode.SUCCESS) return malformed('announcement', `an announcement with result ${response.resultCode}`);
  return { epochSeconds: response.epochSeconds };
}
