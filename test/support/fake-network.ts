/**
 * An in-memory network for client tests in virtual time: the real UDP exchange, UDP collection
 * and HTTP code of src/transport run over fake sockets and a fake HTTP server, every timer on the
 * test's scheduler. Nothing touches a real socket.
 */
import { defer, finalize, map, NEVER, of, timer, type Observable, type SchedulerLike } from 'rxjs';
import type { DefaultGateway } from '../../src/transport/default-gateway.js';
import { createHttp, type HttpRequest, type HttpResponse } from '../../src/transport/http.js';
import { createTransport, type Transport } from '../../src/transport/transport.js';
import { createUdpCollect, createUdpExchange, createUdpListen, type DatagramSocket, type UdpEndpoint } from '../../src/transport/udp.js';

/** One datagram a client socket sent, when (virtual ms) and where. */
export interface SentDatagram {
  readonly at: number;
  readonly from: UdpEndpoint;
  readonly to: UdpEndpoint;
  readonly data: Uint8Array;
}

/** What a fake UDP server sees, and how it answers. */
export interface Arrival {
  readonly data: Uint8Array;
  readonly from: UdpEndpoint;
  /** Sends `bytes` back to the sender after `delayMs` (virtual), from `source` (default: the server's endpoint). */
  reply(bytes: Uint8Array, delayMs?: number, source?: UdpEndpoint): void;
}

/** One HTTP request the fake server received. */
export interface HttpArrival {
  readonly at: number;
  readonly request: HttpRequest;
  readonly url: URL;
}

/** What the fake HTTP server answers: a response after `delayMs`, or nothing at all (`silent`). */
export type HttpAnswer = { readonly status: number; readonly body: string; readonly delayMs?: number } | 'silent';

const key = (e: UdpEndpoint): string => `${e.address}:${e.port}`;

/** The fake network. `clientAddress` is the address every client socket gets unless it binds one. */
export class FakeNetwork {
  /** Every datagram client sockets sent, in order. */
  readonly sent: SentDatagram[] = [];
  /** Every HTTP request, in order. */
  readonly httpLog: HttpArrival[] = [];
  /** Client sockets open now. */
  openSockets = 0;
  /** Every multicast group a socket joined, with the interface asked for, in order. */
  readonly joined: Array<{ readonly group: string; readonly interfaceAddress: string | undefined; readonly local: UdpEndpoint }> = [];
  /** HTTP requests in flight now, and the most ever in flight at once. */
  httpInFlight = 0;
  httpMaxInFlight = 0;
  private readonly servers = new Map<string, (arrival: Arrival) => void>();
  private readonly sockets = new Map<string, (data: Uint8Array, from: UdpEndpoint) => void>();
  private nextPort = 40000;
  private httpHandler: (request: HttpRequest, url: URL) => HttpAnswer = () => ({ status: 404, body: '' });

  constructor(
    readonly scheduler: SchedulerLike,
    readonly clientAddress = '192.168.77.10',
  ) {}

  /** Serves UDP at `endpoint`: `handler` sees each datagram sent there. */
  udp(endpoint: UdpEndpoint, handler: (arrival: Arrival) => void): void {
    this.servers.set(key(endpoint), handler);
  }

  /** Serves HTTP: `handler` answers each request. */
  http(handler: (request: HttpRequest, url: URL) => HttpAnswer): void {
    this.httpHandler = handler;
  }

  /**
   * Delivers a datagram from `from` to whatever socket is bound at `to` (or at `0.0.0.0` on that
   * port): an unsolicited announcement. False when no socket is bound there.
   */
  deliver(to: UdpEndpoint, data: Uint8Array, from: UdpEndpoint): boolean {
    const socket = this.sockets.get(key(to)) ?? this.sockets.get(key({ address: '0.0.0.0', port: to.port }));
    if (socket === undefined) return false;
    socket(data.slice(), from);
    return true;
  }

  /** Datagrams sent to `to`. */
  sentTo(to: UdpEndpoint): SentDatagram[] {
    return this.sent.filter((d) => key(d.to) === key(to));
  }

  /** A transport over this network; the default route points at `gateway`. */
  transport(gateway = '192.168.77.1', overrides: Partial<Transport> = {}): Transport {
    const open = (): DatagramSocket => this.open();
    return createTransport({
      udpExchange: createUdpExchange(open),
      udpCollect: createUdpCollect(open),
      // Never the real listener: a fake transport must not bind a real port (5350) or join a group.
      udpListen: createUdpListen(open),
      http: createHttp((request, url) => this.send(request, url)),
      defaultGateway: (): Observable<DefaultGateway> => of({ gateway, interface: 'lan0' }),
      scheduler: this.scheduler,
      ...overrides,
    });
  }

  private open(): DatagramSocket {
    let local: UdpEndpoint | undefined;
    let peer: UdpEndpoint | undefined;
    let closed = false;
    let onMessage: (data: Uint8Array, from: UdpEndpoint) => void = () => undefined;
    let onError: (error: Error) => void = () => undefined;
    this.openSockets++;
    return {
      bind: (port, address, done) => {
        const wanted = { address: address ?? this.clientAddress, port: port === 0 ? this.nextPort++ : port };
        if (this.sockets.has(key(wanted))) {
          onError(Object.assign(new Error(`bind EADDRINUSE ${key(wanted)}`), { code: 'EADDRINUSE' }));
          return;
        }
        local = wanted;
        const bound = local;
        this.sockets.set(key(bound), (data, from) => {
          if (closed) return;
          // A connected socket only hears its peer (the kernel filters the rest).
          if (peer !== undefined && key(peer) !== key(from)) return;
          onMessage(data, from);
        });
        done();
      },
      connect: (port, address, done) => {
        peer = { address, port };
        done();
      },
      send: (message, to, done) => {
        const target = to ?? peer;
        if (closed || local === undefined || target === undefined) return done(new Error('not bound'));
        const from = local;
        this.sent.push({ at: this.scheduler.now(), from, to: target, data: message.slice() });
        const server = this.servers.get(key(target));
        done(null);
        server?.({
          data: message.slice(),
          from,
          reply: (bytes, delayMs = 0, source = target) => {
            this.scheduler.schedule(() => this.sockets.get(key(from))?.(bytes, source), delayMs);
          },
        });
      },
      local: () => local ?? { address: '0.0.0.0', port: 0 },
      setMulticast: () => undefined,
      addMembership: (group, interfaceAddress) => {
        this.joined.push({ group, interfaceAddress, local: local ?? { address: '0.0.0.0', port: 0 } });
      },
      onMessage: (listener) => {
        onMessage = listener;
      },
      onError: (listener) => {
        onError = listener;
      },
      close: () => {
        if (closed) return;
        closed = true;
        this.openSockets--;
        if (local !== undefined) this.sockets.delete(key(local));
      },
    };
  }

  private send(request: HttpRequest, url: URL): Observable<HttpResponse> {
    return defer(() => {
      this.httpLog.push({ at: this.scheduler.now(), request, url });
      this.httpInFlight++;
      this.httpMaxInFlight = Math.max(this.httpMaxInFlight, this.httpInFlight);
      const answer = this.httpHandler(request, url);
      if (answer === 'silent') return NEVER;
      const response: HttpResponse = {
        status: answer.status,
        headers: {},
        body: Buffer.from(answer.body, 'utf8'),
        localAddress: this.clientAddress,
        remoteAddress: url.hostname,
      };
      return timer(answer.delayMs ?? 0, this.scheduler).pipe(map(() => response));
    }).pipe(finalize(() => this.httpInFlight--));
  }
}
