import type { Observable } from 'rxjs';

/** Transport protocol of a port mapping. */
export type MappingProtocol = 'tcp' | 'udp';

/**
 * The address family of a mapping. `'ipv4'` (the default) is a port forwarded through the NAT to
 * this host. `'ipv6'` is an opening in the router's firewall for one of this host's own IPv6
 * addresses (no NAT: the external address is the host's address, the external port its port).
 *
 * @example
 * ```ts
 * const family: AddressFamily = 'ipv6';
 * ```
 */
export type AddressFamily = 'ipv4' | 'ipv6';

/**
 * Which mechanism a {@link Nat} speaks. `upnp-pinhole` is a UPnP IGDv2 WANIPv6FirewallControl
 * pinhole: an IPv6 firewall opening, no address translation (its errors report as `upnp`).
 */
export type BackendKind = 'upnp' | 'upnp-pinhole' | 'pmp' | 'pcp' | 'extip' | 'stun';

/**
 * What a caller asks {@link mapPort} for. Only `protocol` and `internalPort` are required.
 *
 * @example
 * ```ts
 * const request: MappingRequest = { protocol: 'tcp', internalPort: 8080, description: 'my app' };
 * // IPv6: open the router's firewall for this host's IPv6 address, port 8080
 * const v6: MappingRequest = { protocol: 'tcp', internalPort: 8080, family: 'ipv6' };
 * // the same, for one address of several (implies family 'ipv6')
 * const one: MappingRequest = { protocol: 'tcp', internalPort: 8080, internalAddress: '2001:db8::10' };
 * ```
 */
export interface MappingRequest {
  /** `'tcp'` or `'udp'`. */
  readonly protocol: MappingProtocol;
  /** The port on this machine that the mapping forwards to (1-65535). */
  readonly internalPort: number;
  /** The external port to ask for (1-65535). Defaults to `internalPort`. The gateway may grant another. */
  readonly externalPort?: number;
  /** A label shown in the router's table (UPnP only). Defaults to `'rxnat'`. */
  readonly description?: string;
  /** Requested lease in seconds. Defaults to 60 (go-libp2p-nat's MappingDuration); 0 asks for a permanent lease. */
  readonly lifetimeSeconds?: number;
  /**
   * `'ipv6'` asks the router to open its IPv6 firewall for this host (PCP over IPv6, UPnP
   * pinholes) instead of forwarding an IPv4 port. The states are the same; `mapped` carries the
   * address and port the router opened (the host's own global address, without NAT66) and
   * `doubleNat` is false. Default `'ipv4'`, or `'ipv6'` when `internalAddress` is given.
   */
  readonly family?: AddressFamily;
  /**
   * IPv6 only: which of this host's IPv6 addresses to open, in text form without a zone (a
   * global or unique-local unicast address; link-local, loopback and IPv4-mapped are refused).
   * Default: the source address this host uses toward the gateway (for a link-local router such
   * as `fe80::1%eth0`, a global address of that interface).
   */
  readonly internalAddress?: string;
}

/**
 * One add (or renew) request as a backend receives it: every field resolved.
 *
 * @example
 * ```ts
 * nat.addMapping({ protocol: 'udp', internalPort: 30303, externalPort: 30303,
 *   description: 'rxnat', lifetimeSeconds: 60 });
 * ```
 */
export interface NatMappingRequest {
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  /** Suggested external port; never 0 (some routers reject 0). */
  readonly externalPort: number;
  readonly description: string;
  /** Requested lifetime in seconds; 0 means "permanent" for UPnP. Backends never send 0 as a lifetime to NAT-PMP/PCP add requests. */
  readonly lifetimeSeconds: number;
  /** The grant this request renews, if any (PCP reuses its nonce; backends may reuse its state). */
  readonly previous?: MappingGrant;
  /** {@link MappingRequest.family}; absent means `'ipv4'`. A backend that cannot map this family fails the add (a `ProtocolError` of reason `family`). */
  readonly family?: AddressFamily;
  /** {@link MappingRequest.internalAddress} (IPv6, RFC 5952 text); absent: the backend's default source address. */
  readonly internalAddress?: string;
}

/**
 * What a gateway granted: the external port and lease it actually gave, which may differ from
 * the request. Renewals and the delete are made from the grant.
 *
 * @example
 * ```ts
 * nat.addMapping(request).subscribe((grant) => console.log(grant.externalPort, grant.lifetimeSeconds));
 * ```
 */
export interface MappingGrant {
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  /** The external port the gateway granted. */
  readonly externalPort: number;
  /** The lease the gateway granted, in seconds; 0 means permanent (no expiry). */
  readonly lifetimeSeconds: number;
  /** The external address, when the protocol's answer carries it (PCP). */
  readonly externalIp?: string;
  /** Backend-private state needed to renew or delete (for example the PCP nonce). */
  readonly token?: unknown;
}

/**
 * An entry of a gateway's port-mapping table, as listed by {@link Nat.listMappings}.
 *
 * @example
 * ```ts
 * nat.listMappings?.().subscribe((entries) => entries.forEach((e) => console.log(e.externalPort)));
 * ```
 */
export interface PortMappingEntry {
  readonly protocol: MappingProtocol;
  readonly externalPort: number;
  readonly internalClient: string;
  readonly internalPort: number;
  readonly description: string;
  /** Remaining lease in seconds (0: permanent). */
  readonly lifetimeSeconds: number;
  readonly enabled: boolean;
}

/**
 * A NAT gateway reached through one mechanism: go-ethereum's `nat.Interface`, made reactive.
 *
 * Every method returns a **cold** Observable: nothing is sent before it is subscribed, and
 * unsubscribing cancels what is in flight (closes the socket, aborts the HTTP request).
 * Errors are the typed errors of `rxnat` ({@link GatewayError} and friends).
 *
 * @example
 * ```ts
 * const nat: Nat = extIp('203.0.113.7');
 * nat.externalIp().subscribe(console.log); // 203.0.113.7
 * ```
 */
export interface Nat {
  /** A name for logs, for example `upnp(192.168.1.1)`, `pmp(10.0.0.1)`, `extip(203.0.113.7)`. */
  readonly name: string;
  /** The mechanism this NAT speaks. */
  readonly kind: BackendKind;
  /** The gateway's address (IP, or description URL for UPnP), `null` for `extip`. */
  readonly gateway: string | null;
  /**
   * Where requests go when `gateway` alone does not say (`192.168.1.1:5351`). Mapping streams on
   * NATs with the same kind, name and endpoint share the request limit and the address lookups.
   * Default: `gateway`.
   */
  readonly endpoint?: string;
  /** The address family this Nat's mappings are in (`'ipv6'`: firewall openings). Default `'ipv4'`. */
  readonly family?: AddressFamily;
  /** Most requests the core sends this gateway at once (routers choke on concurrency). Default 1. */
  readonly maxConcurrentRequests?: number;
  /**
   * True when every grant {@link Nat.addMapping} emits carries the external address (PCP: the
   * MAP response assigns it). Mapping streams then take the first address from the first grant
   * rather than asking {@link Nat.externalIp} ahead of the first add (one exchange fewer before
   * `mapped`); the first lookup queues right behind the adds, then one every `externalIpCacheMs`.
   * Default false.
   */
  readonly grantsCarryExternalIp?: boolean;
  /** Adds (or renews) a mapping; emits the grant once and completes. */
  addMapping(request: NatMappingRequest): Observable<MappingGrant>;
  /** Deletes a mapping made by {@link Nat.addMapping}; emits nothing and completes. */
  deleteMapping(grant: MappingGrant): Observable<void>;
  /** The gateway's external address; emits once and completes. */
  externalIp(): Observable<string>;
  /**
   * Emits whenever the backend learns that the gateway lost its mappings (NAT-PMP/PCP epoch
   * going backwards after a reboot). Mapping streams re-add at once. Hot; never errors.
   */
  readonly resets$?: Observable<unknown>;
  /**
   * Whether the gateway still holds `grant` for us (UPnP: GetSpecificPortMappingEntry): emits
   * `true`, or `false` when the entry is missing or forwards elsewhere, and completes. Mapping
   * streams check every `checkIntervalMs` and re-add a missing entry. Absent: not checked.
   */
  checkMapping?(grant: MappingGrant): Observable<boolean>;
  /** The gateway's mapping table (UPnP), or the mappings this process holds (NAT-PMP/PCP). */
  listMappings?(): Observable<readonly PortMappingEntry[]>;
}
