import { EMPTY, of } from 'rxjs';
import { InvalidMappingRequestError } from '../errors.js';
import { isIpAddress } from './address.js';
import type { Nat } from './nat.js';

/**
 * A NAT that does nothing: this machine is reachable on `ip` and any port forwarding was set up
 * by hand (go-ethereum's `ExtIP`). Adds succeed at once and grant the requested port and
 * lifetime; deletes succeed; the external address is `ip`. No I/O at all.
 *
 * @example
 * ```ts
 * mapPort(extIp('203.0.113.7'), { protocol: 'udp', internalPort: 30303 }).subscribe(console.log);
 * // { status: 'mapped', externalIp: '203.0.113.7', externalPort: 30303, ... }
 * ```
 */
export function extIp(ip: string): Nat {
  if (typeof ip !== 'string' || !isIpAddress(ip)) {
    throw new InvalidMappingRequestError('ip', `extIp needs an IP address, got ${JSON.stringify(ip)}`);
  }
  return {
    name: `extip(${ip})`,
    kind: 'extip',
    gateway: null,
    maxConcurrentRequests: Infinity,
    addMapping: (request) =>
      of({
        protocol: request.protocol,
        internalPort: request.internalPort,
        externalPort: request.externalPort,
        lifetimeSeconds: request.lifetimeSeconds,
        externalIp: ip,
      }),
    deleteMapping: () => EMPTY,
    externalIp: () => of(ip),
  };
}
