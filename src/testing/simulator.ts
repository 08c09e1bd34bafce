/**
 * The gateway simulator: NAT-PMP, PCP and UPnP IGD servers on loopback over one shared
 * {@link MappingTable}, started and stopped together. For rxnat's own tests, its `demo`, and
 * users' tests (`rxnat/testing`).
 *
 * @packageDocumentation
 */
import { isIP } from 'node:net';
import type { DiscoverNatOptions } from '../discover.js';
import type { SsdpTarget } from '../protocols/upnp/ssdp-search.js';
import { Ipv6MappingTable } from './ipv6-table.js';
import { PinholeTable } from './pinhole-table.js';
import { startPmpPcpServer, type PmpPcpServer, type PmpPcpServerOptions } from './pmp-pcp-server.js';
import { MappingTable } from './table.js';
import { startUpnpServer, type UpnpServer, type UpnpServerOptions } from './upnp-server.js';

/**
 * Options of {@link startGatewaySimulator}. Every field is optional.
 *
 * @example
 * ```ts
 * const sim = await startGatewaySimulator({
 *   externalIp: '203.0.113.9',
 *   pmpPcp: { pcpMinLifetimeSeconds: 1 },   // allow short PCP leases (miniupnpd's min_lifetime)
 *   upnp: { igdVersion: 1 },
 * });
 * ```
 */
export interface GatewaySimulatorOptions {
  /**
   * The loopback address every server binds (and the gateway address clients use).
   * Default `127.0.0.1`. Anything that is not an IPv4 loopback address is refused: the
   * simulator never listens on a real network.
   */
  readonly address?: string;
  /** The simulated external (WAN) address. Default `203.0.113.1`. Ignored when `table` is given. */
  readonly externalIp?: string;
  /** A table to serve (for example one with a fake clock). Default: a new {@link MappingTable}. */
  readonly table?: MappingTable;
  /** Options of the NAT-PMP + PCP server (port 0, the default, picks a free one). */
  readonly pmpPcp?: Omit<PmpPcpServerOptions, 'address'>;
  /** Options of the UPnP server (SSDP and HTTP ports 0, the defaults, pick free ones). */
  readonly upnp?: Omit<UpnpServerOptions, 'address'>;
  /**
   * Also be an IPv6 gateway on `::1`: PCP over IPv6 (its firewall is
   * {@link GatewaySimulator.ipv6Table}) and the IGD on `::1` with the same HTTP and SSDP ports,
   * so its WANIPv6FirewallControl:1 service (the pinholes of {@link GatewaySimulator.pinholes})
   * is reached over IPv6, as miniupnpd wants; {@link GatewaySimulator.discoverOptionsIpv6}
   * points IPv6 discovery at them. A loopback address is no address the internet reaches, so
   * both open the stand-in `pmpPcp.ipv6HostAddress` (default `2001:db8::10`): PCP assigns it to
   * `::1`, and the pinholes name it as `InternalClient` (the IGD on `::1` therefore does not
   * require it to be the request's source: `pinholeSecureMode` false unless `upnp` says
   * otherwise). Fails when the host has no `::1`. Default false.
   */
  readonly ipv6?: boolean;
}

/**
 * A running gateway simulator.
 *
 * @example
 * ```ts
 * const sim = await startGatewaySimulator();
 * const nat$ = parseNat('any', sim.discoverOptions);    // PCP, NAT-PMP and UPnP, all on loopback
 * mapPort(nat$, { protocol: 'tcp', internalPort: 8080 }).subscribe(console.log);
 * console.log(sim.table.list());
 * await sim.close();
 * ```
 */
export interface GatewaySimulator {
  /** The table all three protocols share. */
  readonly table: MappingTable;
  /** The NAT-PMP + PCP server (faults, counters, log). */
  readonly pmpPcp: PmpPcpServer;
  /** The UPnP IGD (faults, counters, requests). */
  readonly upnp: UpnpServer;
  /** The loopback address every server listens on: the gateway's address for NAT-PMP/PCP. */
  readonly address: string;
  /** UDP port of NAT-PMP and PCP (one socket serves both, as on real gateways). */
  readonly pmpPort: number;
  /** Same as {@link GatewaySimulator.pmpPort}: PCP shares NAT-PMP's port. */
  readonly pcpPort: number;
  /** Where to send SSDP M-SEARCH (unicast on loopback), for `upnp({ ssdpTargets: [sim.ssdpTarget] })`. */
  readonly ssdpTarget: SsdpTarget;
  /** The UPnP device description URL, for `upnp({ descriptionUrl })` or `parseNat('upnp:' + url)`. Changes after `reboot({ moveControlPort: true })`. */
  readonly descriptionUrl: string;
  /**
   * Options for `parseNat` and `discoverNat` that point every backend at this
   * simulator and nowhere else: gateway, ports, SSDP target and local address all on loopback.
   */
  readonly discoverOptions: DiscoverNatOptions;
  /** With `ipv6`: the PCP server on `::1` (PCP over IPv6; NAT-PMP requests from IPv6 get no answer). */
  readonly pcp6: PmpPcpServer | undefined;
  /** With `ipv6`: the IGD on `::1` (same ports as {@link GatewaySimulator.upnp}, same tables). */
  readonly upnp6: UpnpServer | undefined;
  /** The IPv6 firewall PCP over IPv6 opens (shared by both PCP servers). */
  readonly ipv6Table: Ipv6MappingTable;
  /** The UPnP IPv6 pinholes (shared by both IGDs). */
  readonly pinholes: PinholeTable;
  /**
   * With `ipv6`: options for `discoverNat` and `parseNat` that find this simulator's IPv6
   * firewall and nothing else (`family: 'ipv6'`): PCP at `[::1]`, the IGD found over
   * 127.0.0.1 with its firewall service reached at `[::1]` (`pinhole.controlHost`), and IPv6
   * SSDP to `[::1]` only; pinholes for the stand-in host address (`pinhole.internalClient`).
   * `undefined` without `ipv6`.
   *
   * @example
   * ```ts
   * const sim = await startGatewaySimulator({ ipv6: true });
   * mapPort(discoverNat(sim.discoverOptionsIpv6), { protocol: 'tcp', internalPort: 8080, family: 'ipv6' });
   * ```
   */
  readonly discoverOptionsIpv6: DiscoverNatOptions | undefined;
  /** Changes the external address every protocol reports (an ISP renumbering). */
  setExternalIp(ip: string): void;
  /**
   * Simulates a router reboot: every mapping (and IPv6 opening, and pinhole) is lost and the
   * NAT-PMP/PCP epoch restarts at 0; with `moveControlPort` the UPnP HTTP server also moves to
   * a new port (the old one refuses), the one on `::1` to another.
   */
  reboot(options?: { readonly moveControlPort?: boolean }): Promise<void>;
  /** Stops every server. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts the gateway simulator on loopback: a NAT-PMP + PCP server and a UPnP IGD (SSDP
 * responder and HTTP/SOAP) over one {@link MappingTable}, all on ephemeral ports of
 * `127.0.0.1`. Nothing listens beyond loopback and nothing is sent anywhere but to the clients
 * that ask.
 *
 * @example
 * ```ts
 * import { startGatewaySimulator } from 'rxnat/testing';
 * import { filter, firstValueFrom, Subject } from 'rxjs';
 * import { mapPort, pmp } from 'rxnat';
 *
 * const sim = await startGatewaySimulator();
 * const nat$ = pmp(sim.address, { port: sim.pmpPort, localAddress: sim.address });
 * const stop$ = new Subject<void>();
 * const mapped = await firstValueFrom(mapPort(nat$, { protocol: 'tcp', internalPort: 8080 }, { stop: stop$ })
 *   .pipe(filter((s) => s.status === 'mapped')));
 * assert.equal(sim.table.list().length, 1);
 * stop$.next();
 * await sim.close();
 * ```
 */
export async function startGatewaySimulator(options: GatewaySimulatorOptions = {}): Promise<GatewaySimulator> {
  const address = options.address ?? '127.0.0.1';
  if (isIP(address) !== 4 || !address.startsWith('127.')) {
    throw new RangeError(`the gateway simulator listens on loopback only (127.0.0.0/8), not on ${JSON.stringify(address)}`);
  }
  const table = options.table ?? new MappingTable(options.externalIp !== undefined ? { externalIp: options.externalIp } : {});
  const ipv6Table = options.pmpPcp?.ipv6Table ?? new Ipv6MappingTable();
  const pinholes = options.upnp?.pinholes ?? new PinholeTable();
  const started: { close(): Promise<void> }[] = [];
  try {
    const pmpPcp = await startPmpPcpServer(table, { ...options.pmpPcp, ipv6Table, address });
    started.push(pmpPcp);
    const upnp = await startUpnpServer(table, { ...options.upnp, pinholes, address });
    started.push(upnp);
    let v6: { pcp6: PmpPcpServer; upnp6: UpnpServer } | undefined;
    if (options.ipv6 === true) {
      const pcp6 = await startPmpPcpServer(table, { ...options.pmpPcp, ipv6Table, address: '::1', port: 0 });
      started.push(pcp6);
      // The same ports on ::1, as one dual-stack daemon: the control URL found over IPv4 is
      // reached over IPv6 by changing its host only.
      // Pinholes on loopback are opened for the stand-in of the host's global address (::1 is
      // no external address), which is not the requests' source: no source check by default.
      const upnp6 = await startUpnpServer(table, {
        pinholeSecureMode: false,
        ...options.upnp,
        pinholes,
        address: '::1',
        httpPort: upnp.httpPort,
        ssdpPort: upnp.ssdpPort,
      });
      started.push(upnp6);
      v6 = { pcp6, upnp6 };
    }
    return new Simulator(table, pmpPcp, upnp, address, ipv6Table, pinholes, v6 && { ...v6, hostAddress: options.pmpPcp?.ipv6HostAddress ?? IPV6_HOST_ADDRESS });
  } catch (error) {
    await Promise.allSettled(started.map((server) => server.close()));
    throw error;
  }
}

/** What PCP over IPv6 assigns a client on `::1` by default: the stand-in for a global address. */
const IPV6_HOST_ADDRESS = '2001:db8::10';

class Simulator implements GatewaySimulator {
  readonly pmpPort: number;
  readonly pcpPort: number;
  readonly ssdpTarget: SsdpTarget;
  readonly discoverOptions: DiscoverNatOptions;
  readonly pcp6: PmpPcpServer | undefined;
  readonly upnp6: UpnpServer | undefined;
  readonly discoverOptionsIpv6: DiscoverNatOptions | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    readonly table: MappingTable,
    readonly pmpPcp: PmpPcpServer,
    readonly upnp: UpnpServer,
    readonly address: string,
    readonly ipv6Table: Ipv6MappingTable,
    readonly pinholes: PinholeTable,
    v6: { readonly pcp6: PmpPcpServer; readonly upnp6: UpnpServer; readonly hostAddress: string } | undefined,
  ) {
    this.pmpPort = pmpPcp.port;
    this.pcpPort = pmpPcp.port;
    this.ssdpTarget = Object.freeze({ address, port: upnp.ssdpPort });
    const udp = { port: pmpPcp.port, localAddress: address };
    this.discoverOptions = Object.freeze({
      gateway: address,
      pmp: udp,
      pcp: udp,
      upnp: { ssdpTargets: [this.ssdpTarget], localAddress: address },
    });
    this.pcp6 = v6?.pcp6;
    this.upnp6 = v6?.upnp6;
    this.discoverOptionsIpv6 =
      v6 === undefined
        ? undefined
        : Object.freeze({
            family: 'ipv6',
            gateway: '::1',
            pcp: { port: v6.pcp6.port, localAddress: '::1' },
            upnp: { ssdpTargets: [this.ssdpTarget], localAddress: address },
            pinhole: { controlHost: '::1', localAddress: '::1', internalClient: v6.hostAddress, ssdpTargets: [{ address: '::1', port: v6.upnp6.ssdpPort }] },
          });
  }

  get descriptionUrl(): string {
    return this.upnp.descriptionUrl;
  }

  setExternalIp(ip: string): void {
    this.table.setExternalIp(ip);
  }

  async reboot(options: { readonly moveControlPort?: boolean } = {}): Promise<void> {
    this.table.reboot();
    this.pinholes.clear();
    await this.upnp.reboot({ keepMappings: true, moveControlPort: options.moveControlPort === true });
    // The IPv6 side moves with it (its HTTP port then differs from the IPv4 one's).
    await this.upnp6?.reboot({ keepMappings: true, moveControlPort: options.moveControlPort === true });
  }

  close(): Promise<void> {
    const servers = [this.pmpPcp, this.upnp, ...(this.pcp6 ? [this.pcp6] : []), ...(this.upnp6 ? [this.upnp6] : [])];
    this.closing ??= Promise.allSettled(servers.map((server) => server.close())).then(() => undefined);
    return this.closing;
  }
}
