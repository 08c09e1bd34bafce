/**
 * STUN Binding (RFC 8489) as pure functions: the request a client sends to learn the address
 * and port a server sees it on, and the strict decoding of the server's answer. No I/O.
 *
 * Only what an external-address lookup needs: Binding requests without attributes, success
 * responses carrying XOR-MAPPED-ADDRESS (or the RFC 3489 MAPPED-ADDRESS of old servers), error
 * responses with ERROR-CODE, and FINGERPRINT checked where a server adds it.
 *
 * @packageDocumentation
 */
import { crc32 } from 'node:zlib';
import { ProtocolError } from '../../errors.js';

/** The magic cookie of every RFC 5389/8489 message (§5). */
export const STUN_MAGIC_COOKIE = 0x2112a442;
/** The port STUN servers listen on by default (§9). */
export const STUN_DEFAULT_PORT = 3478;
/** Length of the transaction ID, in bytes (§5). */
export const STUN_TRANSACTION_ID_LENGTH = 12;

const HEADER_LENGTH = 20;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const BINDING_ERROR = 0x0111;
const ATTR_MAPPED_ADDRESS = 0x0001;
const ATTR_ERROR_CODE = 0x0009;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
const ATTR_FINGERPRINT = 0x8028;
const FINGERPRINT_XOR = 0x5354554e;
/**
 * Comprehension-required attributes (below 0x8000) a Binding response may carry that this client
 * knows and ignores: RFC 3489's RESPONSE-ADDRESS, CHANGE-REQUEST, SOURCE-ADDRESS, CHANGED-ADDRESS
 * (sent by RFC 5780 servers), USERNAME, MESSAGE-INTEGRITY (and its SHA256 form), REALM, NONCE,
 * UNKNOWN-ATTRIBUTES, PADDING, RESPONSE-PORT.
 */
const KNOWN_REQUIRED = new Set([0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x0008, 0x001c, 0x0014, 0x0015, 0x000a, 0x0026, 0x0027]);

/**
 * The address a STUN server saw a request come from.
 *
 * @example
 * ```ts
 * const seen: StunMappedAddress = { family: 'ipv4', address: '203.0.113.7', port: 40001 };
 * ```
 */
export interface StunMappedAddress {
  readonly family: 'ipv4' | 'ipv6';
  readonly address: string;
  readonly port: number;
}

/**
 * A decoded Binding answer: the mapped address, or the server's refusal (ERROR-CODE, §14.8).
 *
 * @example
 * ```ts
 * const answer: StunBindingAnswer = { kind: 'error', code: 400, reason: 'Bad Request' };
 * ```
 */
export type StunBindingAnswer =
  | ({ readonly kind: 'success' } & StunMappedAddress)
  | { readonly kind: 'error'; readonly code: number; readonly reason: string };

/**
 * A Binding request (§6.1) with the given 12-byte transaction ID and no attributes.
 *
 * @example
 * ```ts
 * const id = new Uint8Array(12); crypto.getRandomValues(id);
 * socket.send(encodeStunBindingRequest(id), 3478, '192.0.2.1');
 * ```
 */
export function encodeStunBindingRequest(transactionId: Uint8Array): Uint8Array {
  if (transactionId.length !== STUN_TRANSACTION_ID_LENGTH) {
    throw new RangeError(`a STUN transaction ID has ${STUN_TRANSACTION_ID_LENGTH} bytes, got ${transactionId.length}`);
  }
  const message = new Uint8Array(HEADER_LENGTH);
  const view = new DataView(message.buffer);
  view.setUint16(0, BINDING_REQUEST);
  view.setUint16(2, 0);
  view.setUint32(4, STUN_MAGIC_COOKIE);
  message.set(transactionId, 8);
  return message;
}

/**
 * True when `message` looks like a STUN answer to `transactionId` (header only: the two zero
 * bits, the cookie, the ID). A socket uses it to drop unrelated datagrams before decoding.
 *
 * @example
 * ```ts
 * if (isStunAnswerTo(datagram, id)) console.log(decodeStunBindingResponse(datagram, id, server));
 * ```
 */
export function isStunAnswerTo(message: Uint8Array, transactionId: Uint8Array): boolean {
  if (message.length < HEADER_LENGTH || (message[0]! & 0xc0) !== 0) return false;
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  if (view.getUint32(4) !== STUN_MAGIC_COOKIE) return false;
  for (let i = 0; i < STUN_TRANSACTION_ID_LENGTH; i++) if (message[8 + i] !== transactionId[i]) return false;
  return true;
}

/**
 * Decodes the answer to a Binding request sent with `transactionId`. Every malformed message
 * gives a {@link ProtocolError} (protocol `stun`, `server` as its gateway) whose `reason` says
 * what was wrong: `short`, `header`, `length`, `cookie`, `transaction`, `type`, `attribute`,
 * `fingerprint`, `unknown-attribute`, `no-address`, `family`, `error-code`.
 *
 * @example
 * ```ts
 * const answer = decodeStunBindingResponse(datagram, id, '192.0.2.1:3478');
 * if (!(answer instanceof ProtocolError) && answer.kind === 'success') console.log(answer.address);
 * ```
 */
export function decodeStunBindingResponse(message: Uint8Array, transactionId: Uint8Array, server: string): StunBindingAnswer | ProtocolError {
  const fail = (reason: string, text: string): ProtocolError => new ProtocolError('stun', reason, text, server);
  if (message.length < HEADER_LENGTH) return fail('short', `${message.length} bytes, a STUN header has 20`);
  const view = new DataView(message.buffer, message.byteOffset, message.byteLength);
  const type = view.getUint16(0);
  if ((type & 0xc000) !== 0) return fail('header', 'the first two bits of a STUN message are zero');
  const length = view.getUint16(2);
  if (length % 4 !== 0 || HEADER_LENGTH + length !== message.length) {
    return fail('length', `the header says ${length} bytes of attributes, the datagram carries ${message.length - HEADER_LENGTH}`);
  }
  if (view.getUint32(4) !== STUN_MAGIC_COOKIE) return fail('cookie', 'no magic cookie: not an RFC 5389/8489 message');
  for (let i = 0; i < STUN_TRANSACTION_ID_LENGTH; i++) {
    if (message[8 + i] !== transactionId[i]) return fail('transaction', 'the answer is to another transaction');
  }
  if (type !== BINDING_SUCCESS && type !== BINDING_ERROR) return fail('type', `message type 0x${type.toString(16).padStart(4, '0')} is not a Binding response`);

  let xorMapped: StunMappedAddress | ProtocolError | undefined;
  let mapped: StunMappedAddress | ProtocolError | undefined;
  let errorCode: { code: number; reason: string } | ProtocolError | undefined;
  let offset = HEADER_LENGTH;
  while (offset < message.length) {
    if (offset + 4 > message.length) return fail('attribute', 'an attribute header runs past the end');
    const attrType = view.getUint16(offset);
    const attrLength = view.getUint16(offset + 2);
    const valueAt = offset + 4;
    const padded = Math.ceil(attrLength / 4) * 4;
    if (valueAt + padded > message.length) return fail('attribute', `attribute 0x${attrType.toString(16)} runs past the end`);
    const value = message.subarray(valueAt, valueAt + attrLength);
    if (attrType === ATTR_FINGERPRINT) {
      // §14.7: the last attribute, CRC-32 of everything before it (with the length covering it).
      if (attrLength !== 4 || valueAt + 4 !== message.length) return fail('fingerprint', 'FINGERPRINT must be the last attribute, 4 bytes');
      const expected = (crc32(message.subarray(0, offset)) ^ FINGERPRINT_XOR) >>> 0;
      if (view.getUint32(valueAt) !== expected) return fail('fingerprint', 'FINGERPRINT does not match the message');
    } else if (attrType === ATTR_XOR_MAPPED_ADDRESS) {
      xorMapped ??= readAddress(value, message.subarray(4, HEADER_LENGTH), fail);
    } else if (attrType === ATTR_MAPPED_ADDRESS) {
      mapped ??= readAddress(value, null, fail);
    } else if (attrType === ATTR_ERROR_CODE) {
      errorCode ??= readErrorCode(value, fail);
    } else if (attrType < 0x8000 && !KNOWN_REQUIRED.has(attrType)) {
      // §6.3.3: a response with an unknown comprehension-required attribute is discarded.
      return fail('unknown-attribute', `unknown comprehension-required attribute 0x${attrType.toString(16).padStart(4, '0')}`);
    }
    offset = valueAt + padded;
  }
  if (type === BINDING_ERROR) {
    if (errorCode === undefined) return fail('error-code', 'an error response without ERROR-CODE');
    if (errorCode instanceof ProtocolError) return errorCode;
    return { kind: 'error', ...errorCode };
  }
  // A malformed address attribute spoils the answer even when the other one reads well.
  if (xorMapped instanceof ProtocolError) return xorMapped;
  if (mapped instanceof ProtocolError) return mapped;
  const address = xorMapped ?? mapped;
  if (address === undefined) return fail('no-address', 'a success response without XOR-MAPPED-ADDRESS or MAPPED-ADDRESS');
  return { kind: 'success', ...address };
}

/** MAPPED-ADDRESS (§14.1) or, with `xorKey` (cookie + transaction ID), XOR-MAPPED-ADDRESS (§14.2). */
function readAddress(
  value: Uint8Array,
  xorKey: Uint8Array | null,
  fail: (reason: string, text: string) => ProtocolError,
): StunMappedAddress | ProtocolError {
  if (value.length < 4) return fail('attribute', 'an address attribute shorter than 4 bytes');
  const familyByte = value[1]!;
  const size = familyByte === 0x01 ? 4 : familyByte === 0x02 ? 16 : 0;
  if (size === 0) return fail('family', `address family 0x${familyByte.toString(16)} is neither IPv4 nor IPv6`);
  if (value.length !== 4 + size) return fail('attribute', `an ${size === 4 ? 'IPv4' : 'IPv6'} address attribute has ${4 + size} bytes, got ${value.length}`);
  const port = ((value[2]! << 8) | value[3]!) ^ (xorKey ? (xorKey[0]! << 8) | xorKey[1]! : 0);
  const bytes = value.slice(4, 4 + size);
  if (xorKey) for (let i = 0; i < size; i++) bytes[i] = bytes[i]! ^ xorKey[i]!;
  if (size === 4) return { family: 'ipv4', address: Array.from(bytes).join('.'), port };
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return { family: 'ipv6', address: compressIpv6(groups), port };
}

/** ERROR-CODE (§14.8): class × 100 + number, 300-699, and the reason phrase. */
function readErrorCode(value: Uint8Array, fail: (reason: string, text: string) => ProtocolError): { code: number; reason: string } | ProtocolError {
  if (value.length < 4) return fail('error-code', 'ERROR-CODE shorter than 4 bytes');
  const code = (value[2]! & 0x07) * 100 + value[3]!;
  if (code < 300 || code > 699 || value[3]! > 99) return fail('error-code', `error code ${code} is outside 300-699`);
  const reason = new TextDecoder('utf-8', { fatal: false }).decode(value.subarray(4)).slice(0, 128);
  return { code, reason };
}

/** RFC 5952 text for eight hex groups: the longest run of two or more zero groups becomes `::`. */
function compressIpv6(groups: readonly string[]): string {
  let bestAt = -1;
  let bestLength = 1;
  for (let i = 0; i < groups.length; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < groups.length && groups[j] === '0') j++;
    if (j - i > bestLength) {
      bestAt = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestAt < 0) return groups.join(':');
  return `${groups.slice(0, bestAt).join(':')}::${groups.slice(bestAt + bestLength).join(':')}`;
}
