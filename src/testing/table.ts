import type { MappingProtocol } from '../core/nat.js';

/**
 * One mapping held by the gateway simulator.
 *
 * @example
 * ```ts
 * sim.table.list().forEach((m) => console.log(m.protocol, m.externalPort, '->', m.internalClient, m.internalPort));
 * ```
 */
export interface SimulatedMapping {
  readonly protocol: MappingProtocol;
  readonly externalPort: number;
  readonly internalClient: string;
  readonly internalPort: number;
  readonly description: string;
  /** Granted lifetime in seconds; 0 = permanent. */
  readonly lifetimeSeconds: number;
  /** When it expires, in the table's clock (ms); `Infinity` when permanent. */
  readonly expiresAtMs: number;
  /** Which protocol created it. */
  readonly via: 'upnp' | 'pmp' | 'pcp';
  /** PCP nonce (hex) of the mapping's owner, where created by PCP. */
  readonly nonce?: string;
}

/** What {@link MappingTable.add} is asked. */
export interface SimulatedAddRequest {
  readonly protocol: MappingProtocol;
  readonly internalClient: string;
  readonly internalPort: number;
  /** Suggested external port; 0 lets the table choose. */
  readonly externalPort: number;
  readonly description?: string;
  readonly lifetimeSeconds: number;
  readonly via: 'upnp' | 'pmp' | 'pcp';
  readonly nonce?: string;
  /** When true (UPnP AddPortMapping), a port held by another client is a conflict instead of moving to a free port. */
  readonly exactPort?: boolean;
}

/** Result of {@link MappingTable.add}. */
export type SimulatedAddResult =
  | { readonly ok: true; readonly mapping: SimulatedMapping }
  | { readonly ok: false; readonly reason: 'conflict' | 'full' };

/**
 * What {@link MappingTable.watch} reports: a reboot (mappings lost, epoch back to 0) or a new
 * external address.
 *
 * @example
 * ```ts
 * table.watch((event: TableEvent) => console.log(event)); // 'reboot' | 'external-ip'
 * ```
 */
export type TableEvent = 'reboot' | 'external-ip';

/** Options of {@link MappingTable}. */
export interface MappingTableOptions {
  /** The simulated external (WAN) address. Default `203.0.113.1`. */
  readonly externalIp?: string;
  /** Clock in ms; default `Date.now`. */
  readonly now?: () => number;
  /** Most mappings the table holds (then `full`). Default 1024. */
  readonly capacity?: number;
  /** Lowest and highest external port the table hands out when it chooses. Default 1024-65535. */
  readonly portRange?: readonly [number, number];
}

/**
 * The gateway simulator's state, shared by its NAT-PMP, PCP and UPnP servers: the mapping table
 * with lifetimes, the external address and the epoch (seconds since the last "boot").
 *
 * @example
 * ```ts
 * const table = new MappingTable({ externalIp: '203.0.113.9' });
 * table.add({ protocol: 'tcp', internalClient: '127.0.0.1', internalPort: 8080, externalPort: 8080, lifetimeSeconds: 60, via: 'pmp' });
 * table.reboot(); // wipes the table, restarts the epoch
 * ```
 */
export class MappingTable {
  /** The external address the servers report. Change it with {@link MappingTable.setExternalIp}. */
  externalIp: string;
  readonly capacity: number;
  private readonly now: () => number;
  private readonly portRange: readonly [number, number];
  private bootedAtMs: number;
  private readonly mappings = new Map<string, SimulatedMapping>();
  private readonly watchers = new Set<(event: TableEvent) => void>();

  constructor(options: MappingTableOptions = {}) {
    this.externalIp = options.externalIp ?? '203.0.113.1';
    this.now = options.now ?? Date.now;
    this.capacity = options.capacity ?? 1024;
    this.portRange = options.portRange ?? [1024, 65535];
    this.bootedAtMs = this.now();
  }

  /** Seconds since the last boot (NAT-PMP/PCP epoch). */
  epochSeconds(): number {
    return Math.floor((this.now() - this.bootedAtMs) / 1000);
  }

  /** Changes the external address (what a test does to simulate an ISP renumbering). */
  setExternalIp(ip: string): void {
    const changed = ip !== this.externalIp;
    this.externalIp = ip;
    if (changed) this.notify('external-ip');
  }

  /** Simulates a reboot: every mapping is lost and the epoch restarts at 0. */
  reboot(): void {
    this.mappings.clear();
    this.bootedAtMs = this.now();
    this.notify('reboot');
  }

  /**
   * Calls `listener` after each reboot and each change of the external address (what a
   * gateway announces, RFC 6886 §3.2.1); returns the function that stops it.
   */
  watch(listener: (event: TableEvent) => void): () => void {
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  private notify(event: TableEvent): void {
    for (const listener of [...this.watchers]) {
      try {
        listener(event);
      } catch {
        // a watcher's failure is its own
      }
    }
  }

  /** The live mappings, expired ones dropped. */
  list(): SimulatedMapping[] {
    this.sweep();
    return [...this.mappings.values()];
  }

  /** The live mapping on an external port, if any. */
  get(protocol: MappingProtocol, externalPort: number): SimulatedMapping | undefined {
    this.sweep();
    return this.mappings.get(key(protocol, externalPort));
  }

  /** The live mapping a client holds for one of its internal ports, if any. */
  findByInternal(protocol: MappingProtocol, internalClient: string, internalPort: number): SimulatedMapping | undefined {
    return this.list().find(
      (m) => m.protocol === protocol && m.internalClient === internalClient && m.internalPort === internalPort,
    );
  }

  /**
   * Adds or renews a mapping. NAT-PMP/PCP: one mapping per client and internal port; a client
   * re-requesting a port it already holds renews it; a port held by another client is a
   * conflict when `exactPort`, else the table picks a free port. UPnP: see `addUpnp`.
   */
  add(request: SimulatedAddRequest): SimulatedAddResult {
    this.sweep();
    if (request.via === 'upnp') return this.addUpnp(request);
    const existing = this.findByInternal(request.protocol, request.internalClient, request.internalPort);
    let externalPort = request.externalPort;
    if (externalPort !== 0) {
      const holder = this.mappings.get(key(request.protocol, externalPort));
      const heldByOther =
        holder !== undefined && (holder.internalClient !== request.internalClient || holder.internalPort !== request.internalPort);
      if (heldByOther) {
        if (request.exactPort) return { ok: false, reason: 'conflict' };
        externalPort = existing?.externalPort ?? 0;
      }
    } else if (existing) {
      externalPort = existing.externalPort;
    }
    if (externalPort === 0) {
      const free = this.freePort(request.protocol);
      if (free === undefined) return { ok: false, reason: 'full' };
      externalPort = free;
    }
    if (existing && existing.externalPort !== externalPort) this.mappings.delete(key(existing.protocol, existing.externalPort));
    if (!this.mappings.has(key(request.protocol, externalPort)) && this.mappings.size >= this.capacity) {
      return { ok: false, reason: 'full' };
    }
    return { ok: true, mapping: this.store(request, externalPort) };
  }

  /**
   * UPnP semantics (as miniupnpd): a mapping is identified by its external port, one internal
   * port may have several; the same client asking for a port it holds overwrites it silently.
   */
  private addUpnp(request: SimulatedAddRequest): SimulatedAddResult {
    let externalPort = request.externalPort;
    if (externalPort !== 0) {
      const holder = this.mappings.get(key(request.protocol, externalPort));
      if (holder !== undefined && holder.internalClient !== request.internalClient) {
        if (request.exactPort) return { ok: false, reason: 'conflict' };
        externalPort = 0;
      }
    }
    if (externalPort === 0) {
      const free = this.freePort(request.protocol);
      if (free === undefined) return { ok: false, reason: 'full' };
      externalPort = free;
    }
    if (!this.mappings.has(key(request.protocol, externalPort)) && this.mappings.size >= this.capacity) {
      return { ok: false, reason: 'full' };
    }
    return { ok: true, mapping: this.store(request, externalPort) };
  }

  private store(request: SimulatedAddRequest, externalPort: number): SimulatedMapping {
    const mapping: SimulatedMapping = {
      protocol: request.protocol,
      externalPort,
      internalClient: request.internalClient,
      internalPort: request.internalPort,
      description: request.description ?? '',
      lifetimeSeconds: request.lifetimeSeconds,
      expiresAtMs: request.lifetimeSeconds === 0 ? Infinity : this.now() + request.lifetimeSeconds * 1000,
      via: request.via,
      ...(request.nonce !== undefined ? { nonce: request.nonce } : {}),
    };
    this.mappings.set(key(request.protocol, externalPort), mapping);
    return mapping;
  }

  /** Removes the mapping on an external port; true when there was one. */
  delete(protocol: MappingProtocol, externalPort: number): boolean {
    return this.mappings.delete(key(protocol, externalPort));
  }

  /** Removes every mapping (a test's "flush the rules behind the client's back"). */
  clear(): void {
    this.mappings.clear();
  }

  /** Remaining lifetime of a mapping in whole seconds (0 for permanent). */
  remainingSeconds(mapping: SimulatedMapping): number {
    if (mapping.expiresAtMs === Infinity) return 0;
    return Math.max(0, Math.ceil((mapping.expiresAtMs - this.now()) / 1000));
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, m] of this.mappings) if (m.expiresAtMs <= now) this.mappings.delete(k);
  }

  private freePort(protocol: MappingProtocol): number | undefined {
    const [low, high] = this.portRange;
    for (let port = Math.max(low, 1024); port <= high; port++) {
      if (!this.mappings.has(key(protocol, port))) return port;
    }
    return undefined;
  }
}

const key = (protocol: MappingProtocol, externalPort: number): string => `${protocol}/${externalPort}`;
