/**
 * Semantic checks of a gateway's success answers, shared by the NAT-PMP, PCP and UPnP clients:
 * a success reply is a mapping (or an external address) only when its values can be one. Pure:
 * the codecs decode the bytes, these functions judge what they say.
 *
 * @packageDocumentation
 */
import { ProtocolError, type GatewayProtocol } from '../errors.js';
import { externalAddressProblem } from '../core/address.js';

// The address classification lives in the core's address module; re-exported where it always was.
export { externalAddressProblem, type ExternalAddressProblem } from '../core/address.js';

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
