/**
 * `rxnat map --nat upnp`'s first M-SEARCH, sent by `main.cjs` before the command's bundle (and
 * rxjs) is loaded: the router's answer takes 50 ms or more (miniupnpd waits 50 ms before it
 * answers any M-SEARCH), loading the command ~20 ms, so the two overlap instead of adding up.
 * The datagram is the one the UPnP search would send first (its lead: one IGD:1 search,
 * unicast to the router on the default route or to the unicast `--ssdp-target`s); the
 * search takes the socket over (`nodeTransportAdopting` in src/transport/transport.ts) and does not send it again.
 *
 * @packageDocumentation
 */
import { encodeMSearch, IGD_LEAD_SEARCH_TARGETS, SSDP_MULTICAST_ADDRESS, SSDP_PORT } from '../protocols/upnp/ssdp.js';
import { sendEarly, type EarlyDatagrams, type OutgoingDatagram } from '../transport/early-datagrams.js';
import { defaultRoute, machineByteOrder, parseRouteTable, PROC_NET_ROUTE } from '../transport/route-table.js';
import type { UdpEndpoint } from '../transport/udp.js';
import type { ParsedArgs } from './args.js';

/** Where the route table is read, and the platform: tests point them elsewhere. */
export interface EarlySearchEnvironment {
  readonly platform: NodeJS.Platform;
  readonly readRouteTable: () => string;
}

const SYSTEM: EarlySearchEnvironment = {
  platform: process.platform,
  readRouteTable: () => process.getBuiltinModule('node:fs').readFileSync(PROC_NET_ROUTE, 'utf8'),
};

/**
 * The lead datagrams `map` would send first, or undefined when this command line does not start
 * with an IPv4 UPnP search whose first datagrams can be told without loading the backends:
 * `map` with `--nat upnp` exactly (no description URL), not `--ipv6`, and either IPv4
 * `--ssdp-target`s (the unicast ones lead, as in the search) or a default route with a router
 * (read from `/proc/net/route`, Linux only).
 *
 * @example
 * ```ts
 * earlySearchDatagrams(parseCliArgs(['map', 'tcp', '8080', '--nat', 'upnp']));
 * ```
 */
export function earlySearchDatagrams(args: ParsedArgs, environment: EarlySearchEnvironment = SYSTEM): readonly OutgoingDatagram[] | undefined {
  if (args.command !== 'map' || args.nat !== 'upnp' || args.ipv6 === true) return undefined;
  // An IPv6 target would put the lead on a socket of the other family: not told here.
  if (args.ssdpTargets.some((t) => t.address.includes(':'))) return undefined;
  const targets = args.ssdpTargets.length > 0 ? args.ssdpTargets.filter((t) => !isIpv4Multicast(t.address)) : defaultGatewayTarget(environment);
  if (targets === undefined || targets.length === 0) return undefined;
  const host = `${SSDP_MULTICAST_ADDRESS}:${SSDP_PORT}`;
  return targets.flatMap((to) => IGD_LEAD_SEARCH_TARGETS.map((searchTarget) => ({ message: encodeMSearch({ searchTarget, mxSeconds: 1, host }), to })));
}

/**
 * Sends {@link earlySearchDatagrams}, if any, from a socket the search will take over.
 *
 * @example
 * ```ts
 * const early = startEarlySearch(args); // then runCommand(args, { ...io, earlySearch: early }, signals)
 * ```
 */
export function startEarlySearch(args: ParsedArgs, environment: EarlySearchEnvironment = SYSTEM): EarlyDatagrams | undefined {
  const datagrams = earlySearchDatagrams(args, environment);
  if (datagrams === undefined || args.command !== 'map') return undefined;
  return sendEarly(datagrams, args.localAddress !== undefined ? { localAddress: args.localAddress } : {});
}

function defaultGatewayTarget(environment: EarlySearchEnvironment): UdpEndpoint[] | undefined {
  if (environment.platform !== 'linux') return undefined;
  let text: string;
  try {
    text = environment.readRouteTable();
  } catch {
    return undefined;
  }
  const routes = parseRouteTable(text, machineByteOrder());
  if (routes === null) return undefined;
  const route = defaultRoute(routes);
  return route.kind === 'gateway' ? [{ address: route.gateway, port: SSDP_PORT }] : undefined;
}

function isIpv4Multicast(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return first >= 224 && first <= 239;
}
