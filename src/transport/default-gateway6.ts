/**
 * The IPv6 default router: the twin of `default-gateway.ts` for IPv6. On Linux it is read from
 * `/proc/net/ipv6_route` (no child process); elsewhere the `default-gateway` package asks the
 * system.
 *
 * @packageDocumentation
 */
import { defer, from, type Observable } from 'rxjs';
import { DefaultGatewayError } from '../errors.js';
import { toDefaultGatewayError, type DefaultGateway } from './default-gateway.js';
import { defaultIpv6Route, parseIpv6RouteTable, readIpv6RouteTable } from './route-table6.js';

/** How long a looked-up IPv6 default router is reused before the routing table is read again. */
const CACHE_MS = 30_000;
let cached: { readonly at: number; readonly value: DefaultGateway } | undefined;

/**
 * The router on this machine's default IPv6 route, cached for 30 s. A link-local router (the
 * usual case: routers advertise themselves by their link-local address) comes with its
 * interface as zone, `fe80::1%eth0`, which sockets need to reach it. Failures are a
 * {@link DefaultGatewayError}: `no-default-route` (no IPv6 default route, common where the
 * network has no IPv6), `unsupported-route` (a default route without a router), or what the
 * `default-gateway` package reports elsewhere.
 *
 * @example
 * ```ts
 * defaultIpv6Gateway().subscribe(({ gateway }) => console.log('IPv6 router at', gateway)); // fe80::1%eth0
 * ```
 */
export function defaultIpv6Gateway(): Observable<DefaultGateway> {
  return defer(() => {
    if (cached && Date.now() - cached.at < CACHE_MS) return [cached.value];
    return from(
      lookupDefaultIpv6Gateway().then((value) => {
        cached = { at: Date.now(), value };
        return value;
      }),
    );
  });
}

/**
 * Forgets the cached IPv6 default router (after a network change).
 *
 * @example
 * ```ts
 * clearDefaultIpv6GatewayCache();
 * ```
 */
export function clearDefaultIpv6GatewayCache(): void {
  cached = undefined;
}

/**
 * What {@link lookupDefaultIpv6Gateway} asks; tests pass their own.
 *
 * @example
 * ```ts
 * const sources: DefaultIpv6GatewaySources = { platform: 'linux', readRouteTable: async () => text, fallback: () => Promise.reject(new Error('unused')) };
 * ```
 */
export interface DefaultIpv6GatewaySources {
  /** `process.platform`. */
  readonly platform: NodeJS.Platform;
  /** The text of `/proc/net/ipv6_route`; rejects when it cannot be read. */
  readonly readRouteTable: () => Promise<string>;
  /** The `default-gateway` package's `gateway6async` (loaded only when called). */
  readonly fallback: () => Promise<{ readonly gateway: string; readonly int?: string | null }>;
}

const SYSTEM: DefaultIpv6GatewaySources = {
  platform: process.platform,
  readRouteTable: () => readIpv6RouteTable(),
  fallback: async () => {
    const { gateway6async } = await import('default-gateway');
    return gateway6async();
  },
};

/**
 * One lookup of the IPv6 default router, uncached (see {@link defaultIpv6Gateway}). On Linux the
 * table in `/proc/net/ipv6_route` decides when it can be read and parsed; otherwise
 * `sources.fallback` is asked (a link-local answer gets its interface as zone).
 *
 * @example
 * ```ts
 * const { gateway, interface: iface } = await lookupDefaultIpv6Gateway();
 * ```
 */
export async function lookupDefaultIpv6Gateway(sources: DefaultIpv6GatewaySources = SYSTEM): Promise<DefaultGateway> {
  if (sources.platform === 'linux') {
    const routes = await sources.readRouteTable().then(parseIpv6RouteTable, () => null);
    if (routes !== null) {
      const route = defaultIpv6Route(routes);
      switch (route.kind) {
        case 'gateway':
          return { gateway: route.gateway, interface: route.interface };
        case 'no-router':
          throw new DefaultGatewayError('unsupported-route', `the IPv6 default route (dev ${route.interface}) names no router address; pass the gateway address explicitly`);
        case 'no-default-route':
          throw new DefaultGatewayError('no-default-route', 'this machine has no default IPv6 route; pass the gateway address explicitly');
      }
    }
  }
  try {
    const result = await sources.fallback();
    const iface = result.int ?? null;
    const zoned = iface !== null && /^fe[89ab]/i.test(result.gateway) && !result.gateway.includes('%') ? `${result.gateway}%${iface}` : result.gateway;
    return { gateway: zoned, interface: iface };
  } catch (error) {
    const typed = toDefaultGatewayError(error);
    if (typed.reason !== 'no-default-route') throw typed;
    throw new DefaultGatewayError('no-default-route', 'this machine has no default IPv6 route; pass the gateway address explicitly', { cause: error });
  }
}
