/**
 * `rxnat map`'s first request, sent by `main.cjs` before the command's bundle (and rxjs) is
 * loaded, so that the gateway's answer is on its way while the command loads (~20 ms) instead of
 * being asked for only after it: `--nat any` and `--nat pcp` start with the PCP ANNOUNCE probe,
 * `--nat pmp` with NAT-PMP's external address request, `--nat upnp` with the search's lead (one
 * IGD:1 M-SEARCH, unicast to the router on the default route or to the unicast
 * `--ssdp-target`s; miniupnpd waits 50 ms before it answers any M-SEARCH). The backend's
 * exchange takes the socket over (`nodeTransportAdopting` in src/transport/transport.ts) and
 * does not send the datagram again. The codecs are imported only for the request sent, so that
 * `map --nat pmp:IP` loads no UPnP or PCP code.
 *
 * @packageDocumentation
 */
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
 * What `map` sends first and how: the UPnP search's lead datagrams (sent from an unconnected
 * socket), or one probe on a socket connected to the gateway (PCP, NAT-PMP).
 *
 * @example
 * ```ts
 * const first: EarlyRequest = { kind: 'pcp', to: { address: '192.168.1.1', port: 5351 } };
 * ```
 */
export type EarlyRequest = { readonly kind: 'ssdp'; readonly to: readonly UdpEndpoint[] } | { readonly kind: 'pcp' | 'pmp'; readonly to: UdpEndpoint };

/**
 * The first request of this command line when it can be told without loading the backends:
 * `map` over IPv4 (not `--ipv6`), with `--nat any`, `pcp`, `pcp:IP`, `pmp`, `pmp:IP` (the
 * gateway from the spec, `--gateway`, or the default route) or `upnp` (unicast IPv4
 * `--ssdp-target`s, or the default route's router); the default route is read from
 * `/proc/net/route` (Linux only). Undefined otherwise: the command sends it, as before.
 *
 * @example
 * ```ts
 * earlyRequest(parseCliArgs(['map', 'tcp', '8080', '--nat', 'pmp:192.168.1.1'])); // { kind: 'pmp', to: { address: '192.168.1.1', port: 5351 } }
 * ```
 */
export function earlyRequest(args: ParsedArgs, environment: EarlySearchEnvironment = SYSTEM): EarlyRequest | undefined {
  if (args.command !== 'map' || args.ipv6 === true) return undefined;
  const nat = args.nat.trim().toLowerCase();
  const colon = nat.indexOf(':');
  const mechanism = colon < 0 ? nat : nat.slice(0, colon);
  const argument = colon < 0 ? undefined : args.nat.trim().slice(colon + 1);
  if (mechanism === 'upnp') {
    if (argument !== undefined) return undefined;
    // An IPv6 target would put the lead on a socket of the other family: not told here.
    if (args.ssdpTargets.some((t) => t.address.includes(':'))) return undefined;
    const targets = args.ssdpTargets.length > 0 ? args.ssdpTargets.filter((t) => !isIpv4Multicast(t.address)) : defaultGateway(environment);
    return targets === undefined || targets.length === 0 ? undefined : { kind: 'ssdp', to: targets.map((t) => ({ address: t.address, port: args.ssdpTargets.length > 0 ? t.port : SSDP_PORT })) };
  }
  const kind = mechanism === 'any' || mechanism === 'pcp' ? 'pcp' : mechanism === 'pmp' || mechanism === 'natpmp' || mechanism === 'nat-pmp' ? 'pmp' : undefined;
  if (kind === undefined || (mechanism === 'any' && argument !== undefined)) return undefined;
  const gateway = argument ?? args.gateway ?? defaultGateway(environment)?.[0]?.address;
  if (gateway === undefined || !isIpv4Literal(gateway)) return undefined;
  const port = kind === 'pcp' ? (args.pcpPort ?? PORT_CONTROL_PORT) : (args.pmpPort ?? PORT_CONTROL_PORT);
  return { kind, to: { address: gateway, port } };
}

/**
 * Sends {@link earlyRequest}, if any, from a socket the backend will take over; resolves once it
 * has left (`node:dgram` sends in a later tick: loading the command first would hold it back).
 *
 * @example
 * ```ts
 * const early = await startEarlySearch(args); // then runCommand(args, { ...io, earlySearch: early }, signals)
 * ```
 */
export async function startEarlySearch(args: ParsedArgs, environment: EarlySearchEnvironment = SYSTEM): Promise<EarlyDatagrams | undefined> {
  const request = earlyRequest(args, environment);
  if (request === undefined || args.command !== 'map') return undefined;
  const datagrams = await earlyDatagrams(request);
  const early = sendEarly(datagrams, { ...(args.localAddress !== undefined ? { localAddress: args.localAddress } : {}), connect: request.kind !== 'ssdp' });
  await new Promise<void>((resolve) => early.whenSent(resolve));
  return early;
}

/**
 * The datagrams of an {@link EarlyRequest}: exactly what the backend would send first (a PCP
 * ANNOUNCE names the socket's local address, so it is built once the socket is connected).
 *
 * @example
 * ```ts
 * const [probe] = await earlyDatagrams({ kind: 'pmp', to: { address: '192.168.1.1', port: 5351 } });
 * ```
 */
export async function earlyDatagrams(request: EarlyRequest): Promise<readonly OutgoingDatagram[]> {
  switch (request.kind) {
    case 'ssdp': {
      const { encodeMSearch, IGD_LEAD_SEARCH_TARGETS, SSDP_MULTICAST_ADDRESS } = await import('../protocols/upnp/ssdp.js');
      const host = `${SSDP_MULTICAST_ADDRESS}:${SSDP_PORT}`;
      return request.to.flatMap((to) => IGD_LEAD_SEARCH_TARGETS.map((searchTarget) => ({ message: encodeMSearch({ searchTarget, mxSeconds: 1, host }), to })));
    }
    case 'pcp': {
      const { encodePcpRequest } = await import('../protocols/pcp/codec.js');
      return [{ message: (local: UdpEndpoint) => encodePcpRequest({ op: 'announce', lifetimeSeconds: 0, clientIp: local.address }), to: request.to }];
    }
    case 'pmp': {
      const { encodePmpRequest } = await import('../protocols/pmp/codec.js');
      return [{ message: encodePmpRequest({ op: 'external-address' }), to: request.to }];
    }
  }
}

/** UPnP's SSDP port and NAT-PMP/PCP's server port (the codecs have them too; repeated so that this module imports no protocol code). */
const SSDP_PORT = 1900;
const PORT_CONTROL_PORT = 5351;

function defaultGateway(environment: EarlySearchEnvironment): UdpEndpoint[] | undefined {
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

function isIpv4Literal(address: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(address);
}

function isIpv4Multicast(address: string): boolean {
  const first = Number(address.split('.')[0]);
  return first >= 224 && first <= 239;
}
