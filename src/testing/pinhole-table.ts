import type { MappingProtocol } from '../core/nat.js';

/**
 * One IPv6 firewall pinhole held by the simulated IGD (WANIPv6FirewallControl:1).
 *
 * @example
 * ```ts
 * server.pinholes.list().forEach((p) => console.log(p.uniqueId, p.protocol, `[${p.internalClient}]:${p.internalPort}`));
 * ```
 */
export interface SimulatedPinhole {
  /** The `UniqueID` AddPinhole answered (1-65535). */
  readonly uniqueId: number;
  /** `RemoteHost`; empty: any. */
  readonly remoteHost: string;
  /** `RemotePort`; 0: any. */
  readonly remotePort: number;
  readonly internalClient: string;
  readonly internalPort: number;
  readonly protocol: MappingProtocol;
  /** The lease last granted (AddPinhole or UpdatePinhole), in seconds. */
  readonly leaseTimeSeconds: number;
  /** When it expires, in the table's clock (ms). */
  readonly expiresAtMs: number;
  /** Packets "let through" (what GetPinholePackets answers; set by {@link PinholeTable.recordPackets}). */
  readonly packets: number;
}

/**
 * What {@link PinholeTable.add} is asked.
 *
 * @example
 * ```ts
 * const request: SimulatedPinholeRequest = { remoteHost: '', remotePort: 0, internalClient: '2001:db8::10', internalPort: 8080, protocol: 'tcp', leaseTimeSeconds: 60 };
 * ```
 */
export interface SimulatedPinholeRequest {
  readonly remoteHost: string;
  readonly remotePort: number;
  readonly internalClient: string;
  readonly internalPort: number;
  readonly protocol: MappingProtocol;
  readonly leaseTimeSeconds: number;
}

/**
 * Options of {@link PinholeTable}.
 *
 * @example
 * ```ts
 * new PinholeTable({ capacity: 1, now: () => clockMs });
 * ```
 */
export interface PinholeTableOptions {
  /** Clock in ms; default `Date.now`. */
  readonly now?: () => number;
  /** Most pinholes held at once (then AddPinhole answers 701 PinholeSpaceExhausted). Default 128. */
  readonly capacity?: number;
}

/**
 * The simulated IGD's pinhole table, apart from the port mappings (a pinhole translates
 * nothing). As miniupnpd: an AddPinhole for the same filter (remote host and port, internal
 * client and port, protocol) extends the existing pinhole and answers its UniqueID; UniqueIDs
 * count up from 1 and skip the ones in use.
 *
 * @example
 * ```ts
 * const table = new PinholeTable({ capacity: 2 });
 * const added = table.add({ remoteHost: '', remotePort: 0, internalClient: '2001:db8::10', internalPort: 8080, protocol: 'udp', leaseTimeSeconds: 60 });
 * if (added.ok) table.update(added.pinhole.uniqueId, 120);
 * table.clear(); // the router forgets them: UpdatePinhole now answers 704
 * ```
 */
export class PinholeTable {
  readonly capacity: number;
  private readonly now: () => number;
  private readonly pinholes = new Map<number, SimulatedPinhole>();
  private nextId = 1;

  constructor(options: PinholeTableOptions = {}) {
    this.now = options.now ?? Date.now;
    this.capacity = Math.max(0, Math.floor(options.capacity ?? 128));
  }

  /** The live pinholes, expired ones dropped, by UniqueID. */
  list(): SimulatedPinhole[] {
    this.sweep();
    return [...this.pinholes.values()].sort((a, b) => a.uniqueId - b.uniqueId);
  }

  /** The live pinhole with this UniqueID, if any. */
  get(uniqueId: number): SimulatedPinhole | undefined {
    this.sweep();
    return this.pinholes.get(uniqueId);
  }

  /** Opens a pinhole, or extends the one with the same filter; `full` at capacity. */
  add(request: SimulatedPinholeRequest): { readonly ok: true; readonly pinhole: SimulatedPinhole } | { readonly ok: false; readonly reason: 'full' } {
    this.sweep();
    const same = [...this.pinholes.values()].find(
      (p) =>
        p.remoteHost === request.remoteHost &&
        p.remotePort === request.remotePort &&
        p.internalClient === request.internalClient &&
        p.internalPort === request.internalPort &&
        p.protocol === request.protocol,
    );
    if (same) return { ok: true, pinhole: this.store({ ...same, leaseTimeSeconds: request.leaseTimeSeconds }) };
    if (this.pinholes.size >= this.capacity || this.pinholes.size >= 0xffff) return { ok: false, reason: 'full' };
    while (this.pinholes.has(this.nextId)) this.nextId = (this.nextId % 0xffff) + 1;
    const uniqueId = this.nextId;
    this.nextId = (this.nextId % 0xffff) + 1;
    return { ok: true, pinhole: this.store({ ...request, uniqueId, packets: 0 }) };
  }

  /** A new lease for a live pinhole; `undefined` when there is none with this UniqueID. */
  update(uniqueId: number, leaseTimeSeconds: number): SimulatedPinhole | undefined {
    const pinhole = this.get(uniqueId);
    return pinhole ? this.store({ ...pinhole, leaseTimeSeconds }) : undefined;
  }

  /** Removes a pinhole; true when there was one. */
  delete(uniqueId: number): boolean {
    this.sweep();
    return this.pinholes.delete(uniqueId);
  }

  /** Adds to a pinhole's packet count (so CheckPinholeWorking answers 1 instead of 709). */
  recordPackets(uniqueId: number, packets = 1): void {
    const pinhole = this.get(uniqueId);
    if (pinhole) this.pinholes.set(uniqueId, { ...pinhole, packets: pinhole.packets + packets });
  }

  /** Forgets every pinhole (a reboot, or rules flushed behind the client's back). */
  clear(): void {
    this.pinholes.clear();
  }

  /** Remaining lease of a pinhole in whole seconds. */
  remainingSeconds(pinhole: SimulatedPinhole): number {
    return Math.max(0, Math.ceil((pinhole.expiresAtMs - this.now()) / 1000));
  }

  private store(pinhole: Omit<SimulatedPinhole, 'expiresAtMs'>): SimulatedPinhole {
    const stored: SimulatedPinhole = { ...pinhole, expiresAtMs: this.now() + pinhole.leaseTimeSeconds * 1000 };
    this.pinholes.set(stored.uniqueId, stored);
    return stored;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, p] of this.pinholes) if (p.expiresAtMs <= now) this.pinholes.delete(id);
  }
}
