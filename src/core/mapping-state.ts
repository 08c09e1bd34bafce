import type { MappingProtocol } from './nat.js';

/**
 * Where a mapping stands:
 * - `mapping`: the first add is under way (or the gateway is being discovered);
 * - `mapped`: the gateway holds the mapping now (its lease has not ended) and it is being renewed;
 * - `degraded`: the last renewal failed, but the lease the gateway granted has not ended: the port still works;
 * - `unmapped`: no mapping is established (the lease ended, the gateway lost it, or it could not be made); still retrying.
 */
export type MappingStatus = 'mapping' | 'mapped' | 'degraded' | 'unmapped';

/**
 * One state of a mapping stream. A new state is emitted only when something in it changed.
 *
 * @example
 * ```ts
 * mapPort(nat, { protocol: 'tcp', internalPort: 8080 }).subscribe((s) =>
 *   console.log(s.status, `${s.externalIp ?? '-'}:${s.externalPort}`));
 * ```
 */
export interface MappingState {
  readonly status: MappingStatus;
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  /** The external port granted; 0 while no mapping is established (go-libp2p-nat's convention). */
  readonly externalPort: number;
  /** The gateway's external address; `null` while no mapping is established. */
  readonly externalIp: string | null;
  /** The lease the gateway granted in seconds (0: permanent); `null` while no mapping is established. */
  readonly lifetimeSeconds: number | null;
  /** The NAT's name, for example `pmp(192.168.1.1)`; `null` before a gateway is known. */
  readonly backend: string | null;
  /** True when the external address is a private or CGNAT IPv4 address: another NAT sits upstream, the port is not reachable from the internet as it stands. Never true for IPv6. */
  readonly doubleNat: boolean;
  /** How many times the mapping was renewed on this gateway. */
  readonly renewals: number;
  /**
   * The last error, while `degraded` or `unmapped`; `null` once mapped. On the last state of a
   * graceful stop: `null` when the gateway confirmed the delete, else an `UnconfirmedDeleteError`.
   */
  readonly error: Error | null;
}

/**
 * A state with nothing established.
 *
 * @example
 * ```ts
 * unestablished('tcp', 8080, 'mapping', null, null).externalPort; // 0
 * ```
 */
export function unestablished(
  protocol: MappingProtocol,
  internalPort: number,
  status: MappingStatus,
  backend: string | null,
  error: Error | null,
  renewals = 0,
): MappingState {
  return { status, protocol, internalPort, externalPort: 0, externalIp: null, lifetimeSeconds: null, backend, doubleNat: false, renewals, error };
}

/**
 * True when two states say the same (errors compared by identity).
 *
 * @example
 * ```ts
 * sameState(a, { ...a }); // true
 * ```
 */
export function sameState(a: MappingState, b: MappingState): boolean {
  return (Object.keys(a) as Array<keyof MappingState>).every((key) => a[key] === b[key]);
}
