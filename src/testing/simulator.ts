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
  /** Changes the external address every protocol reports (an ISP renumbering). */
  setExternalIp(ip: string): void;
  /**
   * Simulates a router reboot: every mapping is lost and the NAT-PMP/PCP epoch restarts at 0;
   * with `moveControlPort` the UPnP HTTP server also moves to a new port (the old one refuses).
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
  const pmpPcp = await startPmpPcpServer(table, { ...options.pmpPcp, address });
  let upnp: UpnpServer;
  try {
    upnp = await startUpnpServer(table, { ...options.upnp, address });
  } catch (error) {
    await pmpPcp.close();
    throw error;
  }
  return new Simulator(table, pmpPcp, upnp, address);
}

class Simulator implements GatewaySimulator {
  readonly pmpPort: number;
  readonly pcpPort: number;
  readonly ssdpTarget: SsdpTarget;
  readonly discoverOptions: DiscoverNatOptions;
  private closing: Promise<void> | undefined;

  constructor(
    readonly table: MappingTable,
    readonly pmpPcp: PmpPcpServer,
    readonly upnp: UpnpServer,
    readonly address: string,
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
  }

  get descriptionUrl(): string {
    return this.upnp.descriptionUrl;
  }

  setExternalIp(ip: string): void {
    this.table.setExternalIp(ip);
  }

  async reboot(options: { readonly moveControlPort?: boolean } = {}): Promise<void> {
    this.table.reboot();
    await this.upnp.reboot({ keepMappings: true, moveControlPort: options.moveControlPort === true });
  }

  close(): Promise<void> {
    this.closing ??= Promise.allSettled([this.pmpPcp.close(), this.upnp.close()]).then(() => undefined);
    return this.closing;
  }
}
