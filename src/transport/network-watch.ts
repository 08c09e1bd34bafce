/**
 * Watches the network this machine is on: the router on the default IPv4 route, the interface
 * it goes out of, and the local address on that interface that faces the router; with `ipv6`,
 * also the router on the default IPv6 route and the global IPv6 addresses of its interface.
 * Polled, and cheap to poll: on Linux one read of `/proc/net/route` (and of
 * `/proc/net/ipv6_route`) and one `os.networkInterfaces()` (`getifaddrs`, a netlink dump) per
 * period, no child process; elsewhere the `default-gateway` package (a child process: `route`,
 * `netstat`, PowerShell; one more for IPv6) at a slower period. Knows no protocol: what to do on
 * a change is the caller's (see `followNetwork`).
 *
 * @packageDocumentation
 */
import { asyncScheduler, catchError, defer, distinctUntilChanged, expand, filter, forkJoin, from, map, type Observable, of, type SchedulerLike, switchMap, take, tap, timeout, timer } from 'rxjs';
import { DefaultGatewayError, InvalidOptionError } from '../errors.js';
import { clearDefaultGatewayCache, lookupDefaultGateway, type DefaultGateway } from './default-gateway.js';
import { clearDefaultIpv6GatewayCache, lookupDefaultIpv6Gateway } from './default-gateway6.js';
import { globalIpv6Addresses } from './local-addresses.js';
import { defaultRoute, machineByteOrder, parseRouteTable, PROC_NET_ROUTE } from './route-table.js';
import { defaultIpv6Route, parseIpv6RouteTable, PROC_NET_IPV6_ROUTE } from './route-table6.js';

/**
 * What the network looks like from this machine at one moment.
 *
 * @example
 * ```ts
 * const snapshot: NetworkSnapshot = { defaultGateway: { gateway: '192.168.1.1', interface: 'eth0' }, localAddress: '192.168.1.20' };
 * ```
 */
export interface NetworkSnapshot {
  /** The router on the default IPv4 route and its interface; `null` without one (offline, or `default dev tun0`). */
  readonly defaultGateway: DefaultGateway | null;
  /**
   * The IPv4 address of that interface that faces the router (the one whose subnet holds the
   * router's address, else the interface's first IPv4 address); `null` when unknown. With a
   * default route that names no router, the interface's first IPv4 address.
   */
  readonly localAddress: string | null;
  /**
   * Only when IPv6 is watched ({@link NetworkWatchOptions.ipv6}): the router on the default IPv6
   * route and its interface, a link-local router with that interface as zone (`fe80::1%eth0`);
   * `null` without one (no IPv6 default route, a default route that names no router, or IPv6
   * off in the kernel).
   */
  readonly defaultIpv6Gateway?: DefaultGateway | null;
  /**
   * Only when IPv6 is watched: the global and unique-local IPv6 addresses of the IPv6 default
   * route's interface (of every interface when it is not known), sorted, each once; link-local
   * and loopback ones left out. Empty without an IPv6 default route. A new prefix from the ISP
   * changes them.
   */
  readonly ipv6Addresses?: readonly string[];
}

/** One address of an interface, as `os.networkInterfaces()` lists it (the fields read here). */
export interface InterfaceAddress {
  readonly address: string;
  readonly netmask: string;
  /** `'IPv4'` or `'IPv6'` (Node 18.0-18.3 said `4` or `6`). */
  readonly family: string | number;
  readonly internal: boolean;
}

/** What {@link networkWatch} asks the system; tests pass their own. */
export interface NetworkReader {
  /** `process.platform`: only `linux` reads the routing table directly. */
  readonly platform: NodeJS.Platform;
  /** The text of `/proc/net/route`, once; errors when it cannot be read. */
  readonly readRouteTable: () => Observable<string>;
  /** The byte order of that text: the machine's, `'LE'` (x86, ARM) or `'BE'` (s390x). */
  readonly byteOrder: 'LE' | 'BE';
  /**
   * The default gateway where the routing table cannot be read (other platforms): one uncached
   * lookup. Errors with a {@link DefaultGatewayError}; `no-default-route` and `unsupported-route`
   * are answers (no router), any other error is a failed reading.
   */
  readonly lookupDefaultGateway: () => Observable<DefaultGateway>;
  /** `os.networkInterfaces()`. */
  readonly networkInterfaces: () => Readonly<Record<string, readonly InterfaceAddress[] | undefined>>;
  /**
   * The text of `/proc/net/ipv6_route`, once (read only when IPv6 is watched); errors when it
   * cannot be read. An error of code `ENOENT` (IPv6 disabled in the kernel) means no IPv6 router.
   */
  readonly readIpv6RouteTable: () => Observable<string>;
  /**
   * The IPv6 default router where its routing table cannot be read (other platforms): one
   * uncached lookup, errors as {@link NetworkReader.lookupDefaultGateway} does.
   */
  readonly lookupDefaultIpv6Gateway: () => Observable<DefaultGateway>;
}

/**
 * Options of {@link networkWatch}.
 *
 * @example
 * ```ts
 * networkWatch({ periodMs: 1000, fallbackPeriodMs: 15_000 });
 * ```
 */
export interface NetworkWatchOptions {
  /**
   * How often the routing table and the addresses are read where that is cheap (Linux). Default
   * 2000 ms: a change is seen within 2 s (1 s on average), at the cost of one read of a
   * procfs file of a few hundred bytes and one `getifaddrs` per period (~100 µs of CPU, 0.005 %
   * of a core), and leaves 2.5 s of the 5 s budget from a new route to a mapping on the new
   * router for the settle time, the discovery and the add.
   */
  readonly periodMs?: number;
  /**
   * How often the default gateway is looked up where each lookup starts a child process (other
   * platforms, or a `/proc/net/route` that cannot be read or parsed). Default 10 000 ms.
   */
  readonly fallbackPeriodMs?: number;
  /**
   * Also watch IPv6: the IPv6 default router and the global IPv6 addresses of its interface
   * ({@link NetworkSnapshot.defaultIpv6Gateway}, {@link NetworkSnapshot.ipv6Addresses}), read at
   * each poll with the IPv4 view and part of {@link snapshotKey}. Default `false`: nothing of
   * IPv6 is read. The IPv4 view is read either way (IPv6 discovery also uses it: the UPnP
   * firewall is reached through the IGD found over IPv4). On Linux it costs one more read of
   * `/proc/net/ipv6_route` per period (no child process; the `getifaddrs` is shared: ~180 µs of
   * CPU per poll instead of ~90 µs, measured on a loaded 2-core x86 VM); elsewhere one more
   * `default-gateway` lookup per fallback period.
   */
  readonly ipv6?: boolean;
  /** A reading that has not answered after this long is a failed one. Default 5000 ms. */
  readonly readTimeoutMs?: number;
  /** Runs the poll timers. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /** The system calls, each replaceable (tests). */
  readonly reader?: Partial<NetworkReader>;
}

/**
 * The system's {@link NetworkReader}: `node:fs` and `node:os`, loaded when first used. The
 * routing table is read synchronously: procfs text is made in memory by the kernel, never waits
 * on a disk, and `readFileSync` of it costs ~25 µs of CPU where `fs.promises.readFile` costs
 * ~700 µs (measured on a Debian 12 x86 VM; a whole poll with `getifaddrs` ~100 µs).
 */
export const systemNetworkReader: NetworkReader = Object.freeze({
  platform: process.platform,
  readRouteTable: () => defer(() => of(process.getBuiltinModule('node:fs').readFileSync(PROC_NET_ROUTE, 'utf8'))),
  byteOrder: machineByteOrder(),
  lookupDefaultGateway: () => defer(() => from(lookupDefaultGateway())),
  networkInterfaces: () => process.getBuiltinModule('node:os').networkInterfaces(),
  readIpv6RouteTable: () => defer(() => of(process.getBuiltinModule('node:fs').readFileSync(PROC_NET_IPV6_ROUTE, 'utf8'))),
  lookupDefaultIpv6Gateway: () => defer(() => from(lookupDefaultIpv6Gateway())),
});

/** The snapshot of a machine without a default route. */
const OFFLINE: NetworkSnapshot = Object.freeze({ defaultGateway: null, localAddress: null });

/** The IPv6 view of a machine without an IPv6 default route (or with IPv6 off). */
const NO_IPV6: Ipv6View = Object.freeze({ defaultIpv6Gateway: null, ipv6Addresses: Object.freeze([]) as readonly string[] });

/** The snapshot of a machine without a default route, when IPv6 is watched. */
const OFFLINE_BOTH: NetworkSnapshot = Object.freeze({ ...OFFLINE, ...NO_IPV6 });

/** The IPv6 half of a snapshot. */
interface Ipv6View {
  readonly defaultIpv6Gateway: DefaultGateway | null;
  readonly ipv6Addresses: readonly string[];
}

/** One poll: the snapshot (`undefined` when the reading failed) and how it was read. */
interface Reading {
  readonly snapshot: NetworkSnapshot | undefined;
  readonly via: 'route-table' | 'fallback';
}

/** One reading of the IPv6 half: the view (`undefined` when the reading failed) and how it was read. */
interface Ipv6Reading {
  readonly view: Ipv6View | undefined;
  readonly via: 'route-table' | 'fallback';
}

/**
 * What identifies a network for {@link networkWatch}: the router, its interface and the local
 * address facing it; when the snapshot has the IPv6 view, also the IPv6 router, its interface
 * and the global IPv6 addresses. Two snapshots with the same key are the same network.
 *
 * @example
 * ```ts
 * snapshotKey({ defaultGateway: { gateway: '192.168.1.1', interface: 'eth0' }, localAddress: '192.168.1.20' });
 * // '192.168.1.1 eth0 192.168.1.20'
 * snapshotKey({ defaultGateway: null, localAddress: null, defaultIpv6Gateway: { gateway: 'fe80::1%eth0', interface: 'eth0' }, ipv6Addresses: ['2001:db8::20'] });
 * // '- - - fe80::1%eth0 eth0 2001:db8::20'
 * ```
 */
export function snapshotKey(snapshot: NetworkSnapshot): string {
  const ipv4 = `${snapshot.defaultGateway?.gateway ?? '-'} ${snapshot.defaultGateway?.interface ?? '-'} ${snapshot.localAddress ?? '-'}`;
  if (snapshot.defaultIpv6Gateway === undefined && snapshot.ipv6Addresses === undefined) return ipv4;
  const addresses = snapshot.ipv6Addresses ?? [];
  return `${ipv4} ${snapshot.defaultIpv6Gateway?.gateway ?? '-'} ${snapshot.defaultIpv6Gateway?.interface ?? '-'} ${addresses.length > 0 ? addresses.join(',') : '-'}`;
}

/**
 * The network as it changes: a cold Observable that reads the default route and the local
 * addresses at once on subscribe (with `ipv6`, the IPv6 default route and addresses too), then
 * every `periodMs` (Linux, `/proc/net/route`) or `fallbackPeriodMs` (elsewhere, or when either
 * half needed the fallback lookup), and emits the first snapshot and then each one whose
 * {@link snapshotKey} differs from the last emitted. It never errors or completes: a reading
 * that fails (either half) emits nothing (the first one emits the offline snapshot, so that a
 * watcher always hears something). Options out of range error at subscribe
 * ({@link InvalidOptionError}). Each change also forgets the cached default gateways
 * (`clearDefaultGatewayCache`, `clearDefaultIpv6GatewayCache`), so that lookups made because of
 * it see the new route.
 *
 * @example
 * ```ts
 * networkWatch().subscribe(({ defaultGateway, localAddress }) =>
 *   console.log('router', defaultGateway?.gateway ?? 'none', 'from', localAddress));
 * networkWatch({ ipv6: true }).subscribe(({ defaultIpv6Gateway, ipv6Addresses }) =>
 *   console.log('IPv6 router', defaultIpv6Gateway?.gateway ?? 'none', 'for', ipv6Addresses?.join(' ')));
 * ```
 */
export function networkWatch(options: NetworkWatchOptions = {}): Observable<NetworkSnapshot> {
  return defer(() => {
    const periodMs = positive('periodMs', options.periodMs, 2000);
    const fallbackPeriodMs = positive('fallbackPeriodMs', options.fallbackPeriodMs, 10_000);
    const readTimeoutMs = positive('readTimeoutMs', options.readTimeoutMs, 5000);
    const scheduler = options.scheduler ?? asyncScheduler;
    const reader: NetworkReader = { ...systemNetworkReader, ...options.reader };
    const ipv6 = options.ipv6 === true;
    let heard = false;
    const poll = (): Observable<Reading> =>
      !ipv6
        ? readNetwork(reader, readTimeoutMs, scheduler)
        : defer(() => {
          // Both halves of one poll see the same `getifaddrs`, asked once.
          const shared = sharingInterfaces(reader);
          return forkJoin([readNetwork(shared, readTimeoutMs, scheduler), readIpv6(shared, readTimeoutMs, scheduler)]);
        }).pipe(
          map(([four, six]): Reading => ({
            snapshot: four.snapshot !== undefined && six.view !== undefined ? { ...four.snapshot, ...six.view } : undefined,
            via: four.via === 'route-table' && six.via === 'route-table' ? 'route-table' : 'fallback',
          })),
        );
    return poll().pipe(
      // One poll at a time: the next is scheduled when the last has answered.
      expand((reading) => timer(reading.via === 'route-table' ? periodMs : fallbackPeriodMs, scheduler).pipe(switchMap(poll))),
      filter((reading) => reading.snapshot !== undefined || !heard),
      map((reading) => reading.snapshot ?? (ipv6 ? OFFLINE_BOTH : OFFLINE)),
      tap(() => (heard = true)),
      distinctUntilChanged((a, b) => snapshotKey(a) === snapshotKey(b)),
      tap(() => {
        clearDefaultGatewayCache();
        if (ipv6) clearDefaultIpv6GatewayCache();
      }),
    );
  });
}

/**
 * Reads the network once: on Linux from `/proc/net/route` (falling back when it cannot be read
 * or parsed), elsewhere with `reader.lookupDefaultGateway`. Emits one {@link Reading}, never errors.
 */
/** A default-gateway lookup that answered "no router" (offline, or a route with none) rather than failing. */
function isNoRouteAnswer(error: unknown): boolean {
  return error instanceof DefaultGatewayError && (error.reason === 'no-default-route' || error.reason === 'unsupported-route');
}

function readNetwork(reader: NetworkReader, readTimeoutMs: number, scheduler: SchedulerLike): Observable<Reading> {
  const failed: Reading = { snapshot: undefined, via: 'fallback' };
  const fallback = (): Observable<Reading> =>
    reader.lookupDefaultGateway().pipe(
      take(1),
      map((gateway): Reading => ({ snapshot: withAddress(gateway, reader), via: 'fallback' })),
      catchError((error: unknown) => of<Reading>(isNoRouteAnswer(error) ? { snapshot: OFFLINE, via: 'fallback' } : failed)),
    );
  const read = defer((): Observable<Reading> => {
    if (reader.platform !== 'linux') return fallback();
    return reader.readRouteTable().pipe(
      take(1),
      map((text) => parseRouteTable(text, reader.byteOrder)),
      catchError(() => of(null)),
      switchMap((routes): Observable<Reading> => {
        if (routes === null) return fallback();
        const route = defaultRoute(routes);
        switch (route.kind) {
          case 'gateway':
            return of({ snapshot: withAddress({ gateway: route.gateway, interface: route.interface }, reader), via: 'route-table' });
          case 'no-router':
            return of({ snapshot: { defaultGateway: null, localAddress: localAddressFacing(null, route.interface, interfacesOf(reader)) }, via: 'route-table' });
          case 'no-default-route':
            return of({ snapshot: OFFLINE, via: 'route-table' });
        }
      }),
    );
  });
  return read.pipe(
    timeout({ first: readTimeoutMs, scheduler, with: () => of(failed) }),
    catchError(() => of(failed)),
    take(1),
  );
}

/**
 * Reads the IPv6 half once: on Linux from `/proc/net/ipv6_route` (a missing file is IPv6 off:
 * no router; one that cannot be read otherwise or parsed falls back), elsewhere with
 * `reader.lookupDefaultIpv6Gateway`. Emits one {@link Ipv6Reading}, never errors.
 */
function readIpv6(reader: NetworkReader, readTimeoutMs: number, scheduler: SchedulerLike): Observable<Ipv6Reading> {
  const failed: Ipv6Reading = { view: undefined, via: 'fallback' };
  const fallback = (): Observable<Ipv6Reading> =>
    reader.lookupDefaultIpv6Gateway().pipe(
      take(1),
      map((gateway): Ipv6Reading => ({ view: ipv6View(gateway, gateway.interface ?? zoneOf(gateway.gateway), reader), via: 'fallback' })),
      catchError((error: unknown) => of<Ipv6Reading>(isNoRouteAnswer(error) ? { view: NO_IPV6, via: 'fallback' } : failed)),
    );
  const read = defer((): Observable<Ipv6Reading> => {
    if (reader.platform !== 'linux') return fallback();
    return reader.readIpv6RouteTable().pipe(
      take(1),
      map((text) => parseIpv6RouteTable(text)),
      catchError((error: unknown) => of((error as { code?: unknown } | null)?.code === 'ENOENT' ? ('ipv6-off' as const) : null)),
      switchMap((routes): Observable<Ipv6Reading> => {
        if (routes === 'ipv6-off') return of({ view: NO_IPV6, via: 'route-table' });
        if (routes === null) return fallback();
        const route = defaultIpv6Route(routes);
        switch (route.kind) {
          case 'gateway':
            return of({ view: ipv6View({ gateway: route.gateway, interface: route.interface }, route.interface, reader), via: 'route-table' });
          case 'no-router':
            return of({ view: ipv6View(null, route.interface, reader), via: 'route-table' });
          case 'no-default-route':
            return of({ view: NO_IPV6, via: 'route-table' });
        }
      }),
    );
  });
  return read.pipe(
    timeout({ first: readTimeoutMs, scheduler, with: () => of(failed) }),
    catchError(() => of(failed)),
    take(1),
  );
}

/** `reader` whose `networkInterfaces` is asked at most once (until it answers). */
function sharingInterfaces(reader: NetworkReader): NetworkReader {
  let interfaces: ReturnType<NetworkReader['networkInterfaces']> | undefined;
  return { ...reader, networkInterfaces: () => (interfaces ??= reader.networkInterfaces()) };
}

function ipv6View(gateway: DefaultGateway | null, iface: string | null, reader: NetworkReader): Ipv6View {
  return { defaultIpv6Gateway: gateway, ipv6Addresses: ipv6AddressesOn(iface, interfacesOf(reader)) };
}

/** The zone of `fe80::1%eth0`, `null` without one. */
function zoneOf(address: string): string | null {
  const at = address.indexOf('%');
  return at < 0 ? null : address.slice(at + 1);
}

/**
 * The global and unique-local IPv6 addresses of `iface` (of every interface when `iface` is
 * `null` or not listed), sorted, each once; link-local, loopback and internal ones left out
 * (see `globalIpv6Addresses`).
 */
function ipv6AddressesOn(iface: string | null, interfaces: Readonly<Record<string, readonly InterfaceAddress[] | undefined>>): string[] {
  const names = iface !== null && interfaces[iface] !== undefined ? [iface] : Object.keys(interfaces);
  return [...new Set(names.flatMap((name) => globalIpv6Addresses(interfaces, name)))].sort();
}

function withAddress(gateway: DefaultGateway, reader: NetworkReader): NetworkSnapshot {
  return { defaultGateway: gateway, localAddress: localAddressFacing(gateway.gateway, gateway.interface, interfacesOf(reader)) };
}

function interfacesOf(reader: NetworkReader): Readonly<Record<string, readonly InterfaceAddress[] | undefined>> {
  try {
    return reader.networkInterfaces();
  } catch {
    return {};
  }
}

/**
 * The local IPv4 address that faces `gateway`: among the non-internal IPv4 addresses of
 * `iface` (of every interface when `iface` is `null` or not listed), the first whose subnet
 * holds `gateway`; else the first IPv4 address of `iface` (none of another interface: it does
 * not face the router); `null` when there is none. `gateway` `null` (a default route without a
 * router) gives the first IPv4 address of `iface`.
 *
 * @example
 * ```ts
 * localAddressFacing('192.168.78.1', 'eth0', {
 *   eth0: [{ address: '192.168.77.10', netmask: '255.255.255.0', family: 'IPv4', internal: false },
 *          { address: '192.168.78.10', netmask: '255.255.255.0', family: 'IPv4', internal: false }],
 * }); // '192.168.78.10'
 * ```
 */
export function localAddressFacing(
  gateway: string | null,
  iface: string | null,
  interfaces: Readonly<Record<string, readonly InterfaceAddress[] | undefined>>,
): string | null {
  const listed = iface !== null ? interfaces[iface] : undefined;
  const pool = listed ?? Object.values(interfaces).flatMap((addresses) => addresses ?? []);
  const candidates = pool.filter((a) => (a.family === 'IPv4' || a.family === 4) && !a.internal && ipv4Value(a.address) !== null);
  const target = gateway === null ? null : ipv4Value(gateway);
  if (target !== null) {
    const facing = candidates.find((a) => {
      const address = ipv4Value(a.address);
      const mask = ipv4Value(a.netmask);
      return address !== null && mask !== null && mask !== 0 && ((address & mask) >>> 0) === ((target & mask) >>> 0);
    });
    if (facing) return facing.address;
  }
  // Only the route's own interface may stand in: another interface's address does not face it.
  return listed !== undefined ? (candidates[0]?.address ?? null) : null;
}

function ipv4Value(address: string): number | null {
  const parts = address.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  return parts.reduce((value, part) => ((value << 8) | Number(part)) >>> 0, 0);
}

function positive(option: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new InvalidOptionError(option, `${option} must be a positive number of milliseconds (got ${String(value)})`);
  return value;
}
