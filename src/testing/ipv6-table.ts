import type { MappingProtocol } from '../core/nat.js';

/**
 * One IPv6 firewall opening held by the gateway simulator (made by PCP over IPv6). There is no
 * translation: the mapping lets the internet reach `internalClient` on `internalPort` itself.
 *
 * @example
 * ```ts
 * server.ipv6Table.list().forEach((m) => console.log(m.protocol, `[${m.externalIp}]:${m.internalPort}`));
 * ```
 */
export interface SimulatedIpv6Mapping {
  readonly protocol: MappingProtocol;
  /** The client's source address (what the firewall rule lets traffic reach). */
  readonly internalClient: string;
  readonly internalPort: number;
  /** The address the MAP response assigned: the client's own, or the stand-in for a loopback client. */
  readonly externalIp: string;
  /** Granted lifetime in seconds (never 0: a PCP lifetime of 0 deletes). */
  readonly lifetimeSeconds: number;
  /** When it expires, in the table's clock (ms). */
  readonly expiresAtMs: number;
  /** PCP nonce (hex) of the mapping's owner. */
  readonly nonce: string;
}

/**
 * Options of {@link Ipv6MappingTable}.
 *
 * @example
 * ```ts
 * new Ipv6MappingTable({ now: () => clock.now(), capacity: 8 });
 * ```
 */
export interface Ipv6MappingTableOptions {
  /** Clock in ms; default `Date.now`. */
  readonly now?: () => number;
  /** Most openings the table holds (then `full`). Default 1024. */
  readonly capacity?: number;
}

/**
 * The IPv6 firewall of the gateway simulator: openings keyed by protocol, internal address and
 * internal port, with lifetimes. One client address and port has one opening; asking again
 * renews it.
 *
 * @example
 * ```ts
 * const table = new Ipv6MappingTable();
 * table.add({ protocol: 'tcp', internalClient: '::1', internalPort: 8080, externalIp: '2001:db8::10', lifetimeSeconds: 120, nonce: '00'.repeat(12) });
 * table.list().length; // 1
 * ```
 */
export class Ipv6MappingTable {
  readonly capacity: number;
  private readonly now: () => number;
  private readonly mappings = new Map<string, SimulatedIpv6Mapping>();

  constructor(options: Ipv6MappingTableOptions = {}) {
    this.now = options.now ?? Date.now;
    this.capacity = options.capacity ?? 1024;
  }

  /** The live openings, expired ones dropped. */
  list(): SimulatedIpv6Mapping[] {
    this.sweep();
    return [...this.mappings.values()];
  }

  /** The live opening of a client address and port, if any. */
  get(protocol: MappingProtocol, internalClient: string, internalPort: number): SimulatedIpv6Mapping | undefined {
    this.sweep();
    return this.mappings.get(key(protocol, internalClient, internalPort));
  }

  /** Adds or renews an opening; `undefined` when the table is full. */
  add(request: Omit<SimulatedIpv6Mapping, 'expiresAtMs'>): SimulatedIpv6Mapping | undefined {
    this.sweep();
    const k = key(request.protocol, request.internalClient, request.internalPort);
    if (!this.mappings.has(k) && this.mappings.size >= this.capacity) return undefined;
    const mapping: SimulatedIpv6Mapping = { ...request, expiresAtMs: this.now() + request.lifetimeSeconds * 1000 };
    this.mappings.set(k, mapping);
    return mapping;
  }

  /** Removes an opening; true when there was one. */
  delete(protocol: MappingProtocol, internalClient: string, internalPort: number): boolean {
    return this.mappings.delete(key(protocol, internalClient, internalPort));
  }

  /** Removes every opening (a reboot, or a test flushing the firewall behind the client's back). */
  clear(): void {
    this.mappings.clear();
  }

  /** Remaining lifetime of an opening in whole seconds. */
  remainingSeconds(mapping: SimulatedIpv6Mapping): number {
    return Math.max(0, Math.ceil((mapping.expiresAtMs - this.now()) / 1000));
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, m] of this.mappings) if (m.expiresAtMs <= now) this.mappings.delete(k);
  }
}

const key = (protocol: MappingProtocol, internalClient: string, internalPort: number): string => `${protocol}/[${internalClient.toLowerCase()}]:${internalPort}`;
