/**
 * Semantic checks of a gateway's success answers, shared by the NAT-PMP, PCP and UPnP clients:
 * a success reply is a mapping (or an external address) only when its values can be one. Pure:
 * the codecs decode the bytes, these functions judge what they say.
 *
 * @packageDocumentation
 */
import { ProtocolError, type GatewayProtocol } from '../errors.js';
import { ipToBytes } from '../core/address.js';

/**
 * Why a text cannot be a gateway's external address: the unspecified address (`0.0.0.0`, `::`,
 * `::ffff:0.0.0.0`, or anything in `0.0.0.0/8`: "this network", which NAT-PMP and UPnP use for
 * "not connected"), loopback (`127.0.0.0/8`, `::1`), link-local (`169.254.0.0/16`, `fe80::/10`:
 * a WAN link without a lease), multicast (`224.0.0.0/4`, `ff00::/8`), reserved (`240.0.0.0/4`,
 * the limited broadcast included), or not an IP address at all. The same set the core's
 * `isUsableExternalAddress` refuses.
 *
 * @example
 * ```ts
 * const problem: ExternalAddressProblem = externalAddressProblem('0.0.0.0') ?? 'undecodable'; // 'unspecified'
 * ```
 */
export type ExternalAddressProblem = 'unspecified' | 'loopback' | 'link-local' | 'multicast' | 'reserved' | 'undecodable';

/**
 * Why `ip` cannot be an external address, or `undefined` when it can. IPv4 is dotted-quad text
 * (no leading zeros); IPv6 text (no zone) is judged by its 16 bytes, an IPv4-mapped one
 * (`::ffff:a.b.c.d`) by the IPv4 address it carries. Private and shared ranges (`10/8`,
 * `100.64/10`, `fc00::/7`) are accepted: a gateway behind another NAT has one.
 *
 * @example
 * ```ts
 * externalAddressProblem('203.0.113.7');    // undefined
 * externalAddressProblem('::ffff:0.0.0.0'); // 'unspecified'
 * externalAddressProblem('ff02::1');        // 'multicast'
 * externalAddressProblem('router');         // 'undecodable'
 * ```
 */
export function externalAddressProblem(ip: string): ExternalAddressProblem | undefined {
  const bytes = addressBytes(ip);
  if (bytes === undefined) return 'undecodable';
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) {
    const [a = 0, b = 0] = bytes.subarray(12, 16);
    if (a === 0) return 'unspecified';
    if (a === 127) return 'loopback';
    if (a === 169 && b === 254) return 'link-local';
    if (a >= 224 && a <= 239) return 'multicast';
    if (a >= 240) return 'reserved';
    return undefined;
  }
  const [first = 0, second = 0] = bytes;
  if (bytes.every((b) => b === 0)) return 'unspecified';
  if (bytes.subarray(0, 15).every((b) => b === 0) && bytes[15] === 1) return 'loopback';
  if (first === 0xfe && (second & 0xc0) === 0x80) return 'link-local';
  if (first === 0xff) return 'multicast';
  return undefined;
}

/**
 * A {@link ProtocolError} with reason `external-address` when `ip`, as answered by `gateway`,
 * cannot be an external address ({@link externalAddressProblem}); `undefined` when it can.
 *
 * @example
 * ```ts
 * const error = externalAddressError('pmp', '0.0.0.0', '192.168.1.1', 'external address reply');
 * if (error) throw error; // pmp from 192.168.1.1: external address reply gave 0.0.0.0 (unspecified: not connected)
 * ```
 */
export function externalAddressError(protocol: GatewayProtocol, ip: string, gateway: string | undefined, what: string): ProtocolError | undefined {
  const problem = externalAddressProblem(ip);
  if (problem === undefined) return undefined;
  const detail = problem === 'unspecified' ? 'unspecified: the gateway has no external address, not connected' : problem === 'undecodable' ? 'not an IP address' : problem;
  return new ProtocolError(protocol, 'external-address', `${what} gave external address ${JSON.stringify(ip)} (${detail})`, gateway);
}

/**
 * What a success answer to an add says was granted, as {@link mapAnswerError} checks it.
 *
 * @example
 * ```ts
 * const answer: MapAnswer = { lifetimeSeconds: 7200, externalPort: 8080, externalIp: '203.0.113.7' };
 * ```
 */
export interface MapAnswer {
  /** The granted lease, in seconds. */
  readonly lifetimeSeconds: number;
  /** The assigned external port. */
  readonly externalPort: number;
  /** The assigned external address, where the protocol carries one (PCP). */
  readonly externalIp?: string;
}

/**
 * Why a NAT-PMP or PCP success answer to an add is not a mapping, as a {@link ProtocolError};
 * `undefined` when it is one. In order: lifetime 0 (a delete's answer, not a permanent lease)
 * is reason `lifetime`; an external port outside 1-65535 is `external-port`; an external
 * address that cannot be one ({@link externalAddressProblem}) is `external-address`.
 *
 * @example
 * ```ts
 * mapAnswerError('pmp', '192.168.1.1', { lifetimeSeconds: 0, externalPort: 8080 })?.reason; // 'lifetime'
 * ```
 */
export function mapAnswerError(protocol: GatewayProtocol, gateway: string, answer: MapAnswer): ProtocolError | undefined {
  if (answer.lifetimeSeconds === 0) {
    return new ProtocolError(protocol, 'lifetime', 'success answer to an add with lifetime 0 (a delete answer, not a lease)', gateway);
  }
  if (!isPort(answer.externalPort)) {
    return new ProtocolError(protocol, 'external-port', `success answer to an add assigned external port ${answer.externalPort}`, gateway);
  }
  return answer.externalIp === undefined ? undefined : externalAddressError(protocol, answer.externalIp, gateway, 'success answer to an add');
}

/**
 * Whether `port` is a usable port number: an integer in 1-65535.
 *
 * @example
 * ```ts
 * isPort(0); // false
 * ```
 */
export function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** The 16-byte form of an IP text (IPv4 as IPv4-mapped; a zone refused), `undefined` when it is not one. */
function addressBytes(ip: string): Uint8Array | undefined {
  try {
    return ipToBytes(ip);
  } catch {
    return undefined;
  }
}
