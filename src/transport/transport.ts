/**
 * Everything a backend needs from the outside world, as one object it receives: UDP exchanges,
 * multicast collection, a UDP listener, HTTP, the default route, and the scheduler its timers run on. The
 * backends (`pmp()`, `pcp()`, `upnp()`) take it as `options.transport`, defaulting to
 * {@link nodeTransport}; a test passes a fake one and runs the client in virtual time, the way
 * redux-observable injects an epic's dependencies.
 *
 * @packageDocumentation
 */
import { asyncScheduler, type Observable, type SchedulerLike } from 'rxjs';
import { defaultGateway, type DefaultGateway } from './default-gateway.js';
import { defaultIpv6Gateway } from './default-gateway6.js';
import { listGlobalIpv6Addresses } from './local-addresses.js';
import { http, type HttpRequest, type HttpResponse } from './http.js';
import { adoptingOpen, type EarlyDatagrams } from './early-datagrams.js';
import {
  createUdpCollect,
  createUdpExchange,
  openNodeDatagramSocket,
  udpCollect,
  udpExchange,
  udpListen,
  type UdpCollectOptions,
  type UdpDatagram,
  type UdpExchangeOptions,
  type UdpListenOptions,
  type UdpReply,
} from './udp.js';

/**
 * The I/O of a backend. Every member returns a cold Observable; the backends pass `scheduler`
 * (unless their own `scheduler` option overrides it) to every exchange and request they make.
 *
 * @example
 * ```ts
 * const transport: Transport = createTransport({ scheduler: testScheduler, udpExchange: fakeExchange });
 * pmp('192.168.1.1', { transport }).subscribe((nat) => console.log(nat.name));
 * ```
 */
export interface Transport {
  /** One request/response over UDP (NAT-PMP, PCP). See {@link udpExchange}. */
  readonly udpExchange: (options: UdpExchangeOptions) => Observable<UdpReply>;
  /** Datagrams to several destinations, every answer collected for a window (SSDP search). See {@link udpCollect}. */
  readonly udpCollect: (options: UdpCollectOptions) => Observable<UdpReply>;
  /**
   * Every datagram arriving on a local port (NAT-PMP/PCP announcements). See {@link udpListen}.
   * Optional: without it the backends learn of gateway reboots from their replies' epochs only.
   */
  readonly udpListen?: (options: UdpListenOptions) => Observable<UdpDatagram>;
  /** One HTTP request (UPnP description and SOAP). See {@link http}. */
  readonly http: (request: HttpRequest) => Observable<HttpResponse>;
  /** The router on the default route, for backends given no gateway address. See {@link defaultGateway}. */
  readonly defaultGateway: () => Observable<DefaultGateway>;
  /** The router on the default IPv6 route (a link-local one with its zone). See {@link defaultIpv6Gateway}. Absent: IPv6 backends need the gateway given. */
  readonly defaultIpv6Gateway?: () => Observable<DefaultGateway>;
  /** This host's global, then unique-local, IPv6 addresses on an interface. See {@link listGlobalIpv6Addresses}. */
  readonly globalIpv6Addresses?: (iface: string) => Observable<readonly string[]>;
  /** The clock and timers of the backend and of its exchanges. */
  readonly scheduler: SchedulerLike;
}

/**
 * The real transport: `node:dgram`, `node:http`, the system's default route, `asyncScheduler`.
 *
 * @example
 * ```ts
 * pmp(undefined, { transport: nodeTransport }); // the same as pmp()
 * ```
 */
export const nodeTransport: Transport = Object.freeze({
  udpExchange,
  udpCollect,
  udpListen,
  http,
  defaultGateway,
  defaultIpv6Gateway,
  globalIpv6Addresses: listGlobalIpv6Addresses,
  scheduler: asyncScheduler,
});

/**
 * {@link nodeTransport} whose first IPv4 exchange or collection (the PCP or NAT-PMP probe, the
 * SSDP search) takes over `early`'s socket: the datagrams sent before the code was loaded count
 * as its first sends, and what the socket received meanwhile as its answers. (The CLI's `map`:
 * src/cli/early-search.ts.)
 *
 * @example
 * ```ts
 * upnp({ transport: nodeTransportAdopting(sendEarly([{ message, to }])) });
 * ```
 */
export function nodeTransportAdopting(early: EarlyDatagrams): Transport {
  const open = adoptingOpen(early, openNodeDatagramSocket);
  return Object.freeze({ ...nodeTransport, udpExchange: createUdpExchange(open), udpCollect: createUdpCollect(open) });
}

/**
 * A {@link Transport}: {@link nodeTransport} with the given members replaced.
 *
 * @example
 * ```ts
 * const transport = createTransport({ defaultGateway: () => of({ gateway: '192.168.1.1', interface: 'eth0' }) });
 * ```
 */
export function createTransport(overrides: Partial<Transport> = {}): Transport {
  return Object.freeze({ ...nodeTransport, ...overrides });
}
