import { InvalidMappingRequestError } from '../errors.js';
import type { MappingProtocol, MappingRequest } from './nat.js';

/** A {@link MappingRequest} with every default applied. */
export interface ResolvedMappingRequest {
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  readonly externalPort: number;
  readonly description: string;
  readonly lifetimeSeconds: number;
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
 * @example
 * ```ts
 * resolveMappingRequest({ protocol: 'tcp', internalPort: 8080 });
 * // { protocol: 'tcp', internalPort: 8080, externalPort: 8080, description: 'rxnat', lifetimeSeconds: 60 }
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
  return { protocol, internalPort, externalPort, description, lifetimeSeconds };
}
