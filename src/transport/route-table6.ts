/**
 * The Linux IPv6 routing table as the kernel prints it in `/proc/net/ipv6_route`, read without a
 * child process: the IPv6 twin of `route-table.ts`. The parser is pure; {@link readIpv6RouteTable}
 * is the only I/O.
 *
 * The file has no header; each line is one route, ten fields separated by spaces:
 *
 * ```
 * 00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0
 * ```
 *
 * destination (32 hex digits, network byte order), its prefix length (2 hex digits), source and
 * its prefix length (source routing), next hop, metric (8 hex digits), reference count, use
 * count, `RTF_*` flags (8 hex digits), interface. Only the main table is listed.
 *
 * @packageDocumentation
 */
import type { DefaultRouteResult } from './route-table.js';

/** Where the kernel prints the IPv6 routing table of the reading process's network namespace. */
export const PROC_NET_IPV6_ROUTE = '/proc/net/ipv6_route';

/** `RTF_UP`: the route is usable. */
const RTF_UP = 0x0001;
/** `RTF_GATEWAY`: the destination is reached through a router (the next-hop field). */
const RTF_GATEWAY = 0x0002;
/** `RTF_REJECT`: `unreachable`, `prohibit` and `blackhole` routes (and the kernel's own `lo` catch-all). */
const RTF_REJECT = 0x0200;

/**
 * One route of `/proc/net/ipv6_route`.
 *
 * @example
 * ```ts
 * const route: KernelIpv6Route = { destination: '::', prefixLength: 0, nextHop: 'fe80::1', metric: 1024, flags: 3, iface: 'eth0' };
 * ```
 */
export interface KernelIpv6Route {
  /** RFC 5952 text of the destination prefix, for example `::` or `2001:db8::`. */
  readonly destination: string;
  readonly prefixLength: number;
  /** RFC 5952 text of the next hop, `::` when there is none; without zone. */
  readonly nextHop: string;
  readonly metric: number;
  /** `RTF_*` bits. */
  readonly flags: number;
  readonly iface: string;
}

const HEX_ADDRESS = /^[0-9a-f]{32}$/i;

/**
 * Parses the text of `/proc/net/ipv6_route`. Returns `null` when the text is not such a table
 * (a non-empty line without ten fields, or a field that is not the hexadecimal the kernel
 * writes), so that the caller can fall back to another way of asking.
 *
 * @example
 * ```ts
 * parseIpv6RouteTable('00000000000000000000000000000000 00 00000000000000000000000000000000 00 ' +
 *   'fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n');
 * // [{ destination: '::', prefixLength: 0, nextHop: 'fe80::1', metric: 1024, flags: 3, iface: 'eth0' }]
 * ```
 */
export function parseIpv6RouteTable(text: string): KernelIpv6Route[] | null {
  const routes: KernelIpv6Route[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.trim().split(/\s+/);
    if (fields.length !== 10) return null;
    const [destination, prefix, , , nextHop, metric, , , flags, iface] = fields as [string, string, string, string, string, string, string, string, string, string];
    if (!HEX_ADDRESS.test(destination) || !HEX_ADDRESS.test(nextHop)) return null;
    if (!/^[0-9a-f]{2}$/i.test(prefix) || !/^[0-9a-f]{8}$/i.test(metric) || !/^[0-9a-f]{8}$/i.test(flags)) return null;
    const prefixLength = parseInt(prefix, 16);
    if (prefixLength > 128) return null;
    routes.push({ destination: hexToIpv6(destination), prefixLength, nextHop: hexToIpv6(nextHop), metric: parseInt(metric, 16), flags: parseInt(flags, 16), iface });
  }
  return routes;
}

/**
 * The route the kernel takes for an IPv6 address no other route covers: among the usable default
 * routes (`::/0`, `RTF_UP`, not a reject route: `unreachable`, `prohibit`, `blackhole` and the
 * kernel's own catch-all on `lo`), the one with the lowest metric, the first listed on a tie.
 * A link-local router (what router advertisements install) comes with its interface as zone,
 * `fe80::1%eth0`: without it the address names no link.
 *
 * @example
 * ```ts
 * const routes = parseIpv6RouteTable(text);
 * if (routes) console.log(defaultIpv6Route(routes)); // { kind: 'gateway', gateway: 'fe80::1%eth0', interface: 'eth0' }
 * ```
 */
export function defaultIpv6Route(routes: readonly KernelIpv6Route[]): DefaultRouteResult {
  let best: KernelIpv6Route | undefined;
  for (const route of routes) {
    if (route.destination !== '::' || route.prefixLength !== 0) continue;
    if ((route.flags & RTF_UP) === 0 || (route.flags & RTF_REJECT) !== 0) continue;
    if (best === undefined || route.metric < best.metric) best = route;
  }
  if (best === undefined) return { kind: 'no-default-route' };
  if ((best.flags & RTF_GATEWAY) === 0 || best.nextHop === '::') return { kind: 'no-router', interface: best.iface };
  const linkLocal = (firstGroup(best.nextHop) & 0xffc0) === 0xfe80;
  return { kind: 'gateway', gateway: linkLocal ? `${best.nextHop}%${best.iface}` : best.nextHop, interface: best.iface };
}

/**
 * Reads `/proc/net/ipv6_route` (of this process's network namespace). Rejects as `readFile`
 * does (`ENOENT` off Linux, without /proc, or with IPv6 disabled in the kernel). `node:fs` is
 * taken with `process.getBuiltinModule` when called, as for the IPv4 table.
 *
 * @example
 * ```ts
 * const routes = parseIpv6RouteTable(await readIpv6RouteTable());
 * ```
 */
export function readIpv6RouteTable(path: string = PROC_NET_IPV6_ROUTE): Promise<string> {
  return process.getBuiltinModule('node:fs').promises.readFile(path, 'utf8');
}

/** 32 hex digits in network byte order → RFC 5952 text (lowercase, the first longest run of two or more zero groups as `::`). */
function hexToIpv6(hex: string): string {
  const groups = Array.from({ length: 8 }, (_, i) => parseInt(hex.slice(i * 4, i * 4 + 4), 16));
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const text = groups.map((g) => g.toString(16));
  if (bestStart < 0) return text.join(':');
  return `${text.slice(0, bestStart).join(':')}::${text.slice(bestStart + bestLength).join(':')}`;
}

/** The first 16-bit group of IPv6 text (0 when it starts with `::`). */
function firstGroup(text: string): number {
  return text.startsWith('::') ? 0 : parseInt(text.split(':')[0] ?? '0', 16);
}
