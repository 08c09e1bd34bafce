import { defer, from, type Observable } from 'rxjs';
import { DefaultGatewayError } from '../errors.js';
import { defaultRoute, machineByteOrder, parseRouteTable, readRouteTable, type ByteOrder } from './route-table.js';

/** The router on this machine's default IPv4 route. */
export interface DefaultGateway {
  /** The router's address, for example `192.168.1.1`. */
  readonly gateway: string;
  /** The interface the route goes out of, where known. */
  readonly interface: string | null;
}

/** How long a looked-up default gateway is reused before the routing table is read again. */
const CACHE_MS = 30_000;
let cached: { readonly at: number; readonly value: DefaultGateway } | undefined;

/**
 * The default IPv4 gateway, cached for 30 s. On Linux it is read from `/proc/net/route` (no
 * child process, nothing loaded); elsewhere, or when that file cannot be read or parsed, the
 * `default-gateway` package asks the system (`ip route`, `netstat`, `wmic`). Its failures
 * become a {@link DefaultGatewayError} whose `reason` says what to do: `no-default-route`,
 * `unsupported-route` (a default route without a router, `default dev tun0`), `ip-missing`.
 *
 * @example
 * ```ts
 * defaultGateway().subscribe(({ gateway }) => console.log('router at', gateway));
 * ```
 */
export function defaultGateway(): Observable<DefaultGateway> {
  return defer(() => {
    if (cached && Date.now() - cached.at < CACHE_MS) return [cached.value];
    return from(
      lookupDefaultGateway().then((value) => {
        cached = { at: Date.now(), value };
        return value;
      }),
    );
  });
}

/** Forgets the cached default gateway (after a network change). */
export function clearDefaultGatewayCache(): void {
  cached = undefined;
}

/** What {@link lookupDefaultGateway} asks; tests pass their own. */
export interface DefaultGatewaySources {
  /** `process.platform`. */
  readonly platform: NodeJS.Platform;
  /** The text of `/proc/net/route`; rejects when it cannot be read. */
  readonly readRouteTable: () => Promise<string>;
  /** The byte order of that text (the machine's). */
  readonly byteOrder: ByteOrder;
  /** The `default-gateway` package's `gateway4async` (loaded only when called). */
  readonly fallback: () => Promise<{ readonly gateway: string; readonly int?: string | null }>;
}

const SYSTEM: DefaultGatewaySources = {
  platform: process.platform,
  readRouteTable: () => readRouteTable(),
  byteOrder: machineByteOrder(),
  fallback: async () => {
    // Loaded on first use: it spawns `ip`/`netstat` and brings execa with most of rxnat's
    // installed packages, so only platforms without /proc/net/route pay for it.
    const { gateway4async } = await import('default-gateway');
    return gateway4async();
  },
};

/**
 * One lookup of the default IPv4 gateway, uncached (see {@link defaultGateway}). On Linux the
 * table in `/proc/net/route` decides when it can be read and parsed: its best default route's
 * router, or `no-default-route` / `unsupported-route`; otherwise `sources.fallback` is asked.
 *
 * @example
 * ```ts
 * const { gateway, interface: iface } = await lookupDefaultGateway();
 * ```
 */
export async function lookupDefaultGateway(sources: DefaultGatewaySources = SYSTEM): Promise<DefaultGateway> {
  if (sources.platform === 'linux') {
    const routes = await sources.readRouteTable().then(
      (text) => parseRouteTable(text, sources.byteOrder),
      () => null,
    );
    if (routes !== null) {
      const route = defaultRoute(routes);
      switch (route.kind) {
        case 'gateway':
          return { gateway: route.gateway, interface: route.interface };
        case 'no-router':
          throw new DefaultGatewayError('unsupported-route', `the default route (dev ${route.interface}) names no router address (VPN or point-to-point link?); pass the gateway address explicitly`);
        case 'no-default-route':
          throw new DefaultGatewayError('no-default-route', 'this machine has no default IPv4 route; pass the gateway address explicitly');
      }
    }
  }
  try {
    const result = await sources.fallback();
    return { gateway: result.gateway, interface: result.int ?? null };
  } catch (error) {
    throw toDefaultGatewayError(error);
  }
}

/** Maps what `default-gateway` throws to a typed error. Exported for tests. */
export function toDefaultGatewayError(error: unknown): DefaultGatewayError {
  const code = (error as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') {
    return new DefaultGatewayError('ip-missing', 'cannot find the default gateway: the `ip` command is not installed; pass the gateway address explicitly', { cause: error });
  }
  if (error instanceof TypeError) {
    // default-gateway 7 throws a TypeError on `default dev tun0` routes (VPN, PPP): no router address.
    return new DefaultGatewayError('unsupported-route', 'the default route names no router address (VPN or point-to-point link?); pass the gateway address explicitly', { cause: error });
  }
  if (error instanceof Error && /Unable to determine default gateway/.test(error.message)) {
    return new DefaultGatewayError('no-default-route', 'this machine has no default IPv4 route; pass the gateway address explicitly', { cause: error });
  }
  return new DefaultGatewayError('failed', `cannot find the default gateway: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}
