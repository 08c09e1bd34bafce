/**
 * The Linux IPv4 routing table as the kernel prints it in `/proc/net/route`, read without a
 * child process (jackpal/gateway, the gateway lookup of Go's NAT-PMP client, reads the same
 * file; go-libp2p asks the kernel through netlink). The parser is pure; {@link readRouteTable}
 * is the only I/O.
 *
 * The file has one header line, then one route per line, tab-separated:
 *
 * ```
 * Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
 * eth0	00000000	0101A8C0	0003	0	0	100	00000000	0	0	0
 * eth0	0001A8C0	00000000	0001	0	0	100	00FFFFFF	0	0	0
 * ```
 *
 * Addresses and masks are the 32-bit value in hexadecimal, in the machine's byte order
 * (little-endian on x86 and ARM: `0101A8C0` is 192.168.1.1; big-endian on s390x); flags are
 * hexadecimal `RTF_*` bits. Only the main table is listed (policy-routing tables are not).
 *
 * @packageDocumentation
 */
/** Where the kernel prints the IPv4 routing table of the reading process's network namespace. */
export const PROC_NET_ROUTE = '/proc/net/route';

/** `RTF_UP`: the route is usable. */
const RTF_UP = 0x0001;
/** `RTF_GATEWAY`: the destination is reached through a router (the `Gateway` column). */
const RTF_GATEWAY = 0x0002;
/** `RTF_REJECT`: `unreachable`, `prohibit` and `blackhole` routes. */
const RTF_REJECT = 0x0200;

/** One route of `/proc/net/route`. */
export interface KernelRoute {
  /** The interface, `*` when the route has none (reject routes). */
  readonly iface: string;
  /** Dotted IPv4 destination, for example `0.0.0.0`. */
  readonly destination: string;
  /** Dotted IPv4 router address, `0.0.0.0` when there is none. */
  readonly gateway: string;
  /** `RTF_*` bits. */
  readonly flags: number;
  readonly metric: number;
  /** Dotted IPv4 mask, for example `255.255.255.0`. */
  readonly mask: string;
}

/** The byte order of the addresses in the table: the machine's (`os.endianness()`). */
export type ByteOrder = 'LE' | 'BE';

/** What the default route of a table says. */
export type DefaultRouteResult =
  | { readonly kind: 'gateway'; readonly gateway: string; readonly interface: string }
  /** The best default route goes out of an interface without a router (`default dev tun0`). */
  | { readonly kind: 'no-router'; readonly interface: string }
  | { readonly kind: 'no-default-route' };

const COLUMNS = ['Iface', 'Destination', 'Gateway', 'Flags', 'Metric', 'Mask'] as const;

/**
 * Parses the text of `/proc/net/route`. Columns are found by their header names, so the
 * order is not assumed. Returns `null` when the text is not such a table (no header with
 * those columns, or a row whose address, flags or metric is not hexadecimal/decimal), so
 * that the caller can fall back to another way of asking. `byteOrder` is the machine's that
 * wrote the text (little-endian unless told).
 *
 * @example
 * ```ts
 * parseRouteTable('Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n' +
 *   'eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\n');
 * // [{ iface: 'eth0', destination: '0.0.0.0', gateway: '192.168.1.1', flags: 3, metric: 100, mask: '0.0.0.0' }]
 * ```
 */
export function parseRouteTable(text: string, byteOrder: ByteOrder = 'LE'): KernelRoute[] | null {
  const lines = text.split('\n').filter((line) => line.trim() !== '');
  const header = lines[0]?.trim().split(/\s+/);
  if (header === undefined) return null;
  const index = Object.fromEntries(COLUMNS.map((name) => [name, header.indexOf(name)])) as Record<(typeof COLUMNS)[number], number>;
  if (Object.values(index).some((i) => i < 0)) return null;
  const routes: KernelRoute[] = [];
  for (const line of lines.slice(1)) {
    const fields = line.trim().split(/\s+/);
    const field = (name: (typeof COLUMNS)[number]): string => fields[index[name]] ?? '';
    const destination = hexAddress(field('Destination'), byteOrder);
    const gateway = hexAddress(field('Gateway'), byteOrder);
    const mask = hexAddress(field('Mask'), byteOrder);
    const flags = /^[0-9a-f]{1,8}$/i.test(field('Flags')) ? parseInt(field('Flags'), 16) : NaN;
    const metric = /^\d{1,10}$/.test(field('Metric')) ? Number(field('Metric')) : NaN;
    if (destination === null || gateway === null || mask === null || Number.isNaN(flags) || Number.isNaN(metric) || field('Iface') === '') return null;
    routes.push({ iface: field('Iface'), destination, gateway, flags, metric, mask });
  }
  return routes;
}

/**
 * The route the kernel takes for an address no other route covers: among the usable default
 * routes (destination and mask 0.0.0.0, `RTF_UP`, on an interface: not `unreachable`,
 * `prohibit` or `blackhole`, which the kernel lists with the interface `*`), the one with the
 * lowest metric, the first listed on a tie (the kernel lists them by metric, as `ip route` does).
 *
 * @example
 * ```ts
 * const routes = parseRouteTable(text);
 * if (routes) console.log(defaultRoute(routes)); // { kind: 'gateway', gateway: '192.168.1.1', interface: 'eth0' }
 * ```
 */
export function defaultRoute(routes: readonly KernelRoute[]): DefaultRouteResult {
  let best: KernelRoute | undefined;
  for (const route of routes) {
    if (route.destination !== '0.0.0.0' || route.mask !== '0.0.0.0') continue;
    if ((route.flags & RTF_UP) === 0 || (route.flags & RTF_REJECT) !== 0 || route.iface === '*') continue;
    if (best === undefined || route.metric < best.metric) best = route;
  }
  if (best === undefined) return { kind: 'no-default-route' };
  if ((best.flags & RTF_GATEWAY) === 0 || best.gateway === '0.0.0.0') return { kind: 'no-router', interface: best.iface };
  return { kind: 'gateway', gateway: best.gateway, interface: best.iface };
}

/**
 * Reads `/proc/net/route` (of this process's network namespace). Rejects as `readFile` does
 * (`ENOENT` off Linux or without /proc, `EACCES`). `node:fs` is taken with
 * `process.getBuiltinModule` when called: an ES import of it would be evaluated by everyone who
 * loads rxnat, where most never read the table. The file is read synchronously, as
 * `networkWatch` reads it: procfs text is made in memory by the kernel and never waits on a
 * disk, and `fs.promises` would cost `rxnat map --nat upnp` ~2 ms of module loading plus four
 * thread-pool round trips before its first M-SEARCH.
 *
 * @example
 * ```ts
 * const routes = parseRouteTable(await readRouteTable());
 * ```
 */
export function readRouteTable(path: string = PROC_NET_ROUTE): Promise<string> {
  try {
    return Promise.resolve(process.getBuiltinModule('node:fs').readFileSync(path, 'utf8'));
  } catch (error) {
    return Promise.reject(error as Error);
  }
}

/**
 * This machine's byte order, the one the kernel writes `/proc/net/route` in (what
 * `os.endianness()` says, without loading `node:os`).
 *
 * @example
 * ```ts
 * parseRouteTable(text, machineByteOrder());
 * ```
 */
export function machineByteOrder(): ByteOrder {
  return new Uint8Array(Uint16Array.of(1).buffer)[0] === 1 ? 'LE' : 'BE';
}

/** `0101A8C0` → `192.168.1.1` on a little-endian machine, `1.1.168.192` on a big-endian one. */
function hexAddress(hex: string, byteOrder: ByteOrder): string | null {
  if (!/^[0-9a-f]{8}$/i.test(hex)) return null;
  const value = parseInt(hex, 16);
  const bytes = [value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
  return (byteOrder === 'LE' ? bytes.reverse() : bytes).join('.');
}
