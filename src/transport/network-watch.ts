/**
 * Watches the network this machine is on: the router on the default IPv4 route, the interface
 * it goes out of, and the local address on that interface that faces the router. Polled, and
 * cheap to poll: on Linux one read of `/proc/net/route` and one `os.networkInterfaces()`
 * (`getifaddrs`, a netlink dump) per period, no child process; elsewhere the `default-gateway`
 * package (a child process: `route`, `netstat`, PowerShell) at a slower period. Knows no
 * protocol: what to do on a change is the caller's (see `followNetwork`).
 *
 * @packageDocumentation
 */
import { asyncScheduler, catchError, defer, distinctUntilChanged, expand, filter, from, map, type Observable, of, type SchedulerLike, switchMap, take, tap, timeout, timer } from 'rxjs';
import { DefaultGatewayError, InvalidOptionError } from '../errors.js';
import { clearDefaultGatewayCache, lookupDefaultGateway, type DefaultGateway } from './default-gateway.js';
import { defaultRoute, machineByteOrder, parseRouteTable, PROC_NET_ROUTE } from './route-table.js';

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
});

/** The snapshot of a machine without a default route. */
const OFFLINE: NetworkSnapshot = Object.freeze({ defaultGateway: null, localAddress: null });

/** One poll: the snapshot (`undefined` when the reading failed) and how it was read. */
interface Reading {
  readonly snapshot: NetworkSnapshot | undefined;
  readonly via: 'route-table' | 'fallback';
}

/**
 * What identifies a network for {@link networkWatch}: the router, its interface and the local
 * address facing it. Two snapshots with the same key are the same network.
 *
 * @example
 * ```ts
 * snapshotKey({ defaultGateway: { gateway: '192.168.1.1', interface: 'eth0' }, localAddress: '192.168.1.20' });
 * // '192.168.1.1 eth0 192.168.1.20'
 * ```
 */
export function snapshotKey(snapshot: NetworkSnapshot): string {
  return `${snapshot.defaultGateway?.gateway ?? '-'} ${snapshot.defaultGateway?.interface ?? '-'} ${snapshot.localAddress ?? '-'}`;
}

/**
 * The network as it changes: a cold Observable that reads the default route and the local
 * addresses at once on subscribe, then every `periodMs` (Linux, `/proc/net/route`) or
 * `fallbackPeriodMs` (elsewhere), and emits the first snapshot and then each one whose
 * {@link snapshotKey} differs from the last emitted. It never errors or completes: a reading
 * that fails emits nothing (the first one emits the offline snapshot, so that a watcher always
 * hears something). Options out of range error at subscribe ({@link InvalidOptionError}). Each change also forgets the cached default gateway
 * (`clearDefaultGatewayCache`), so that lookups made because of it see the new route.
 *
 * @example
 * ```ts
 * networkWatch().subscribe(({ defaultGateway, localAddress }) =>
 *   console.log('router', defaultGateway?.gateway ?? 'none', 'from', localAddress));
 * ```
 */
export function networkWatch(options: NetworkWatchOptions = {}): Observable<NetworkSnapshot> {
  return defer(() => {
    const periodMs = positive('periodMs', options.periodMs, 2000);
    const fallbackPeriodMs = positive('fallbackPeriodMs', options.fallbackPeriodMs, 10_000);
    const readTimeoutMs = positive('readTimeoutMs', options.readTimeoutMs, 5000);
    const scheduler = options.scheduler ?? asyncScheduler;
    const reader: NetworkReader = { ...systemNetworkReader, ...options.reader };
    let heard = false;
    const poll = (): Observable<Reading> => readNetwork(reader, readTimeoutMs, scheduler);
    return poll().pipe(
      // One poll at a time: the next is scheduled when the last has answered.
      expand((reading) => timer(reading.via === 'route-table' ? periodMs : fallbackPeriodMs, scheduler).pipe(switchMap(poll))),
      filter((reading) => reading.snapshot !== undefined || !heard),
      map((reading) => reading.snapshot ?? OFFLINE),
      tap(() => (heard = true)),
      distinctUntilChanged((a, b) => snapshotKey(a) === snapshotKey(b)),
      tap(() => clearDefaultGatewayCache()),
    );
  });
}

/**
 * Reads the network once: on Linux from `/proc/net/route` (falling back when it cannot be read
 * or parsed), elsewhere with `reader.lookupDefaultGateway`. Emits one {@link Reading}, never errors.
 */
function readNetwork(reader: NetworkReader, readTimeoutMs: number, scheduler: SchedulerLike): Observable<Reading> {
  const failed: Reading = { snapshot: undefined, via: 'fallback' };
  const fallback = (): Observable<Reading> =>
    reader.lookupDefaultGateway().pipe(
      take(1),
      map((gateway): Reading => ({ snapshot: withAddress(gateway, reader), via: 'fallback' })),
      catchError((error: unknown) =>
        of<Reading>(
          error instanceof DefaultGatewayError && (error.reason === 'no-default-route' || error.reason === 'unsupported-route')
            ? { snapshot: OFFLINE, via: 'fallback' }
            : failed,
        ),
      ),
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
