import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { GatewayTimeoutError, GatewayUnreachableError, ListenError } from '../../src/errors.js';
import {
  createUdpListen,
  createUdpStats,
  exponentialBackoff,
  udpCollect,
  udpExchange,
  udpListen,
  type DatagramSocket,
  type UdpDatagram,
  type UdpEndpoint,
} from '../../src/transport/udp.js';
import { FakeNetwork } from '../support/fake-network.js';
import { closedUdpPort, waitFor } from '../support/net.js';
import { VirtualClock } from '../support/virtual-clock.js';

const HOST = '127.0.0.1';

/** A loopback UDP server whose behaviour each test sets. */
interface TestServer {
  socket: Socket;
  port: number;
  received: { data: Buffer; from: RemoteInfo }[];
  onMessage: (data: Buffer, from: RemoteInfo) => void;
  reply: (bytes: Uint8Array, to: RemoteInfo) => void;
}

async function startServer(): Promise<TestServer> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
  const server: TestServer = {
    socket,
    port: socket.address().port,
    received: [],
    onMessage: () => {},
    reply: (bytes, to) => socket.send(bytes, to.port, to.address),
  };
  socket.on('message', (data, from) => {
    server.received.push({ data, from });
    server.onMessage(data, from);
  });
  return server;
}

const udpHandles = (): number => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
const settle = (ms = 20): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/**
 * The deadline of a loopback exchange that must be answered: far beyond any round trip, however
 * loaded the machine, since these tests are about what is received, not when (that is in the
 * virtual-time tests below).
 */
const ANSWERED_MS = 10_000;

describe('udpExchange over loopback', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.socket.close());
  const reset = (): void => {
    server.received = [];
    server.onMessage = () => {};
  };

  it('emits the first accepted reply from an ephemeral socket, built from the local endpoint', async () => {
    reset();
    server.onMessage = (data, from) => server.reply(Uint8Array.of(...data, 0xff), from);
    let seenLocal: UdpEndpoint | undefined;
    const reply = await firstValueFrom(
      udpExchange({
        protocol: 'pmp',
        host: HOST,
        port: server.port,
        localAddress: HOST,
        message: (local) => {
          seenLocal = local;
          return Uint8Array.of(1, 2);
        },
        accept: (m) => m.length === 3,
        timeoutMs: ANSWERED_MS,
      }),
    );
    assert.deepEqual([...reply.message], [1, 2, 0xff]);
    assert.deepEqual(reply.remote, { address: HOST, port: server.port });
    assert.deepEqual(reply.local, seenLocal);
    assert.equal(reply.local.address, HOST);
    assert.notEqual(reply.local.port, 5350);
    assert.equal(server.received[0]?.from.port, reply.local.port);
  });

  it('drops and counts replies that accept refuses', async () => {
    reset();
    server.onMessage = (_data, from) => {
      server.reply(Uint8Array.of(9), from);
      server.reply(Uint8Array.of(9, 9), from);
      server.reply(Uint8Array.of(7, 7, 7), from);
    };
    const stats = createUdpStats();
    const reply = await firstValueFrom(
      udpExchange({ protocol: 'pcp', host: HOST, port: server.port, message: Uint8Array.of(0), accept: (m) => m[0] === 7, timeoutMs: ANSWERED_MS, stats }),
    );
    assert.deepEqual([...reply.message], [7, 7, 7]);
    assert.deepEqual({ ...stats }, { exchanges: 1, sent: 1, received: 3, accepted: 1, dropped: 2 });
  });

  it('a throwing accept counts as a refusal', async () => {
    reset();
    server.onMessage = (_data, from) => {
      server.reply(Uint8Array.of(1), from);
      server.reply(Uint8Array.of(2), from);
    };
    const stats = createUdpStats();
    const reply = await firstValueFrom(
      udpExchange({
        protocol: 'pmp',
        host: HOST,
        port: server.port,
        message: Uint8Array.of(0),
        accept: (m) => {
          if (m[0] === 1) throw new Error('boom');
          return true;
        },
        timeoutMs: ANSWERED_MS,
        stats,
      }),
    );
    assert.deepEqual([...reply.message], [2]);
    assert.equal(stats.dropped, 1);
  });

  it('ECONNREFUSED ends the exchange at once as GatewayUnreachableError', async () => {
    const port = await closedUdpPort(HOST);
    const started = Date.now();
    // A long deadline: the error type shows the refusal ended it, and ending well before the
    // deadline shows it did not wait for it (half of 20 s holds on any machine that runs at all).
    await assert.rejects(
      firstValueFrom(udpExchange({ protocol: 'pcp', host: HOST, port, message: Uint8Array.of(2, 0), accept: () => true, timeoutMs: 20_000 })),
      (error: unknown) => error instanceof GatewayUnreachableError && /ECONNREFUSED/.test(error.message) && error.protocol === 'pcp',
    );
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms (deadline 20 s)`);
  });

  it('a socket that cannot be bound is GatewayUnreachableError, not a throw', async () => {
    await assert.rejects(
      firstValueFrom(udpExchange({ protocol: 'pmp', host: HOST, port: server.port, localAddress: HOST, localPort: server.port, message: Uint8Array.of(0), accept: () => true, timeoutMs: 500 })),
      (error: unknown) => error instanceof GatewayUnreachableError && /EADDRINUSE/.test(error.message),
    );
  });

  it('a connected socket never sees datagrams from another source port', async () => {
    reset();
    const intruder = createSocket('udp4');
    await new Promise<void>((resolve) => intruder.bind(0, HOST, resolve));
    server.onMessage = (_data, from) => {
      intruder.send(Uint8Array.of(0xee), from.port, from.address);
      setTimeout(() => server.reply(Uint8Array.of(0x01), from), 30);
    };
    const stats = createUdpStats();
    const reply = await firstValueFrom(
      udpExchange({ protocol: 'pmp', host: HOST, port: server.port, message: Uint8Array.of(0), accept: () => true, timeoutMs: ANSWERED_MS, stats }),
    );
    intruder.close();
    assert.deepEqual([...reply.message], [0x01]);
    assert.equal(stats.received, 1); // the intruder's datagram was filtered by the kernel
  });

  it('an unconnected socket checks the source itself and counts the intruder', async () => {
    reset();
    const intruder = createSocket('udp4');
    await new Promise<void>((resolve) => intruder.bind(0, HOST, resolve));
    server.onMessage = (_data, from) => {
      intruder.send(Uint8Array.of(0xee), from.port, from.address, () => setTimeout(() => server.reply(Uint8Array.of(0x01), from), 30));
    };
    const stats = createUdpStats();
    const reply = await firstValueFrom(
      udpExchange({ protocol: 'upnp', host: HOST, port: server.port, connect: false, message: Uint8Array.of(0), accept: () => true, timeoutMs: ANSWERED_MS, stats }),
    );
    intruder.close();
    assert.deepEqual([...reply.message], [0x01]);
    assert.equal(stats.received, 2);
    assert.equal(stats.dropped, 1);
  });

  it('udpCollect collects every reply until the window ends, then completes', async () => {
    reset();
    // A window wide enough for two loopback replies on a loaded machine; the window's own timing
    // is shown in virtual time below.
    server.onMessage = (_data, from) => {
      server.reply(Uint8Array.of(1), from);
      server.reply(Uint8Array.of(2), from);
    };
    const replies = await lastValueFrom(
      udpCollect({ protocol: 'upnp', datagrams: [{ message: Uint8Array.of(0), to: { address: HOST, port: server.port } }], windowMs: 1500 }).pipe(toArray()),
    );
    assert.deepEqual(
      replies.map((r) => r.message[0]),
      [1, 2],
    );
  });

  it('closes its socket on completion, error and unsubscribe', async () => {
    reset();
    // Only the server's socket stays open here: wait for the earlier tests' sockets to close.
    const baseline = 1;
    await waitFor(() => udpHandles() === baseline, 10_000, 'only the server socket open');
    // Unsubscribe while waiting.
    const subscription = udpExchange({ protocol: 'pmp', host: HOST, port: server.port, message: Uint8Array.of(0), accept: () => true, timeoutMs: 5000, retransmit: exponentialBackoff({ initialMs: 10 }) }).subscribe({
      error: () => assert.fail('no error after unsubscribe'),
    });
    await waitFor(() => udpHandles() === baseline + 1 && server.received.length > 0, 10_000, 'the socket is open and has sent');
    subscription.unsubscribe();
    await waitFor(() => udpHandles() === baseline, 10_000, 'socket closed on unsubscribe');
    const sentBefore = server.received.length;
    await settle(60); // a wait for an absence: load can only hide a retransmission, never invent one
    assert.equal(server.received.length, sentBefore, 'no retransmission after unsubscribe');
    // Error (timeout).
    await assert.rejects(firstValueFrom(udpExchange({ protocol: 'pmp', host: HOST, port: server.port, message: Uint8Array.of(0), accept: () => true, timeoutMs: 30 })), GatewayTimeoutError);
    await waitFor(() => udpHandles() === baseline, 10_000, 'socket closed on error');
    // Completion.
    server.onMessage = (data, from) => server.reply(data, from);
    await firstValueFrom(udpExchange({ protocol: 'pmp', host: HOST, port: server.port, message: Uint8Array.of(0), accept: () => true, timeoutMs: ANSWERED_MS }));
    await waitFor(() => udpHandles() === baseline, 10_000, 'socket closed on completion');
  });

  it('unsubscribing before the socket is bound sends nothing', async () => {
    reset();
    const subscription = udpExchange({ protocol: 'pmp', host: HOST, port: server.port, message: Uint8Array.of(0), accept: () => true, timeoutMs: 500 }).subscribe();
    subscription.unsubscribe();
    await settle(50);
    assert.equal(server.received.length, 0);
  });
});

describe('udpListen over loopback', () => {
  /** Subscribes a listener on 127.0.0.1 and resolves once it is bound, with its port and what it received. */
  const listen = async (
    options: { port?: number; reuseAddr?: boolean } = {},
  ): Promise<{ port: number; received: UdpDatagram[]; errors: unknown[]; stop: () => void }> => {
    const received: UdpDatagram[] = [];
    const errors: unknown[] = [];
    let port: number | undefined;
    const stats = createUdpStats();
    const subscription = udpListen({ protocol: 'pmp', address: HOST, port: options.port ?? 0, reuseAddr: options.reuseAddr, stats, listening: (local) => (port = local.port) }).subscribe({
      next: (d) => received.push(d),
      error: (e: unknown) => errors.push(e),
    });
    await waitFor(() => port !== undefined || errors.length > 0, 10_000, 'bound or failed');
    return { port: port ?? 0, received, errors, stop: () => subscription.unsubscribe() };
  };
  const sendFrom = async (to: number, bytes: Uint8Array): Promise<number> => {
    const sender = createSocket('udp4');
    await new Promise<void>((resolve) => sender.bind(0, HOST, resolve));
    const from = sender.address().port;
    await new Promise<void>((resolve, reject) => sender.send(bytes, to, HOST, (e) => (e ? reject(e) : resolve())));
    sender.close();
    return from;
  };

  it('emits every datagram that arrives, from anyone, with its source; never completes by itself', async () => {
    const listener = await listen();
    assert.ok(listener.port > 0, 'an ephemeral port');
    const first = await sendFrom(listener.port, Uint8Array.of(0, 128, 0, 0));
    const second = await sendFrom(listener.port, Uint8Array.of(2, 128));
    await waitFor(() => listener.received.length === 2, 10_000, 'both datagrams');
    assert.deepEqual(
      listener.received.map((d) => [[...d.message], d.remote.address, d.remote.port]),
      [
        [[0, 128, 0, 0], HOST, first],
        [[2, 128], HOST, second],
      ],
    );
    assert.deepEqual(listener.errors, []);
    listener.stop();
  });

  it('closes its socket on unsubscribe: the port can be bound again', async () => {
    const listener = await listen();
    listener.stop();
    await waitFor(() => udpHandles() === 0, 10_000, 'socket closed');
    const again = await listen({ port: listener.port });
    assert.deepEqual(again.errors, []);
    assert.equal(again.port, listener.port);
    again.stop();
  });

  it('a port already bound is a ListenError with EADDRINUSE, not a throw', async () => {
    const holder = createSocket('udp4');
    await new Promise<void>((resolve) => holder.bind(0, HOST, resolve));
    const taken = holder.address().port;
    try {
      const listener = await listen({ port: taken, reuseAddr: true });
      assert.equal(listener.errors.length, 1);
      const error = listener.errors[0];
      assert.ok(error instanceof ListenError, 'ListenError');
      assert.deepEqual([error.code, error.address, error.port, error.socketCode], ['ERR_LISTEN', HOST, taken, 'EADDRINUSE']);
    } finally {
      holder.close();
    }
  });

  it('reuseAddr: two listeners share a port', async () => {
    const a = await listen({ reuseAddr: true });
    const b = await listen({ port: a.port, reuseAddr: true });
    assert.deepEqual([a.errors, b.errors], [[], []]);
    assert.equal(b.port, a.port);
    a.stop();
    b.stop();
  });
});

describe('udpListen over a socket double (multicast without a network)', () => {
  const double = (joinable: boolean): { open: () => DatagramSocket; joined: Array<[string, string | undefined]>; deliver: (data: Uint8Array) => void; opened: Array<{ reuseAddr?: boolean }> } => {
    const joined: Array<[string, string | undefined]> = [];
    const opened: Array<{ reuseAddr?: boolean }> = [];
    let onMessage: (data: Uint8Array, remote: UdpEndpoint) => void = () => undefined;
    let local: UdpEndpoint = { address: '0.0.0.0', port: 0 };
    const socket: DatagramSocket = {
      bind: (port, address, done) => {
        local = { address: address ?? '0.0.0.0', port };
        done();
      },
      connect: () => assert.fail('a listener never connects'),
      send: () => assert.fail('a listener never sends'),
      local: () => local,
      setMulticast: () => undefined,
      addMembership: (group, interfaceAddress) => {
        if (!joinable) throw Object.assign(new Error('no such device'), { code: 'ENODEV' });
        joined.push([group, interfaceAddress]);
      },
      onMessage: (listener) => {
        onMessage = listener;
      },
      onError: () => undefined,
      close: () => undefined,
    };
    return {
      open: ((_type: 'udp4' | 'udp6', options?: { reuseAddr?: boolean }) => {
        opened.push({ ...options });
        return socket;
      }) as () => DatagramSocket,
      joined,
      opened,
      deliver: (data) => onMessage(data, { address: '192.168.77.1', port: 5351 }),
    };
  };

  it('binds 0.0.0.0 by default, joins the group on the interface asked for, and passes reuseAddr', () => {
    const net = double(true);
    const received: UdpDatagram[] = [];
    let bound: UdpEndpoint | undefined;
    const subscription = createUdpListen(net.open)({ protocol: 'pmp', port: 5350, group: '224.0.0.1', interfaceAddress: '192.168.77.10', reuseAddr: true, listening: (l) => (bound = l) }).subscribe((d) => received.push(d));
    assert.deepEqual(bound, { address: '0.0.0.0', port: 5350 });
    assert.deepEqual(net.joined, [['224.0.0.1', '192.168.77.10']]);
    assert.deepEqual(net.opened, [{ reuseAddr: true }]);
    net.deliver(Uint8Array.of(0, 128));
    assert.equal(received.length, 1);
    subscription.unsubscribe();
  });

  it('a group that cannot be joined is skipped: unicast still arrives, no error', () => {
    const net = double(false);
    const received: UdpDatagram[] = [];
    const errors: unknown[] = [];
    const subscription = createUdpListen(net.open)({ protocol: 'pcp', port: 5350, group: '224.0.0.1' }).subscribe({ next: (d) => received.push(d), error: (e: unknown) => errors.push(e) });
    net.deliver(Uint8Array.of(2, 128));
    assert.deepEqual([received.length, errors.length], [1, 0]);
    subscription.unsubscribe();
  });
});

describe('udpExchange and udpCollect in virtual time', () => {
  const SERVER = { address: '192.168.77.1', port: 5351 };
  const setup = (): { clock: VirtualClock; net: FakeNetwork; exchange: ReturnType<FakeNetwork['transport']>['udpExchange'] } => {
    const clock = new VirtualClock();
    const net = new FakeNetwork(clock);
    return { clock, net, exchange: net.transport().udpExchange };
  };

  it('retransmits on its schedule until a reply comes', () => {
    const { clock, net, exchange } = setup();
    let arrivals = 0;
    net.udp(SERVER, ({ data, reply }) => {
      if (++arrivals > 2) reply(data); // the first two are "lost"
    });
    const stats = createUdpStats();
    let repliedAt = -1;
    exchange({ protocol: 'pmp', host: SERVER.address, port: SERVER.port, message: Uint8Array.of(5), accept: () => true, timeoutMs: 1000, retransmit: exponentialBackoff({ initialMs: 20 }), stats, scheduler: clock }).subscribe(
      () => (repliedAt = clock.now()),
    );
    clock.advance(1000);
    assert.deepEqual(net.sent.map((d) => d.at), [0, 20, 60], 'sent at 0, 20 and 60 ms');
    assert.equal(stats.sent, 3);
    assert.equal(repliedAt, 60);
    assert.equal(clock.pending, 0, 'no timer left once answered');
  });

  it('ends at the deadline with GatewayTimeoutError and stops sending', () => {
    const { clock, net, exchange } = setup();
    const errors: unknown[] = [];
    exchange({ protocol: 'pmp', host: SERVER.address, port: SERVER.port, message: Uint8Array.of(1), accept: () => true, timeoutMs: 150, retransmit: exponentialBackoff({ initialMs: 10 }), scheduler: clock }).subscribe({
      error: (e: unknown) => errors.push(e),
    });
    clock.advance(149);
    assert.equal(errors.length, 0);
    clock.advance(1);
    const [error] = errors;
    assert.ok(error instanceof GatewayTimeoutError && error.timeoutMs === 150 && error.protocol === 'pmp' && error.gateway === SERVER.address, String(error));
    assert.deepEqual(net.sent.map((d) => d.at), [0, 10, 30, 70]);
    clock.advance(10_000);
    assert.equal(net.sent.length, 4, 'no sends after the deadline');
    assert.equal(net.openSockets, 0);
  });

  it('udpCollect: one socket, every destination per round, every answer from anyone until the window ends', () => {
    const { clock, net } = setup();
    const collect = net.transport().udpCollect;
    const a = { address: '192.168.77.1', port: 1900 };
    const b = { address: '192.168.77.2', port: 1900 };
    net.udp(a, ({ reply }) => reply(Uint8Array.of(0xa), 3));
    net.udp(b, ({ reply }) => reply(Uint8Array.of(0xb), 7, { address: '192.168.77.9', port: 4242 }));
    const got: string[] = [];
    let completedAt = -1;
    collect({ protocol: 'upnp', datagrams: [{ message: Uint8Array.of(1), to: a }, { message: Uint8Array.of(2), to: b }], windowMs: 250, repeatIntervalMs: 100, scheduler: clock }).subscribe({
      next: ({ message, remote }) => got.push(`${clock.now()} ${remote.address}:${remote.port} ${message[0]}`),
      complete: () => (completedAt = clock.now()),
    });
    clock.advance(1000);
    assert.equal(completedAt, 250);
    assert.deepEqual(net.sent.map((d) => `${d.at} ${d.to.address}`), ['0 192.168.77.1', '0 192.168.77.2', '100 192.168.77.1', '100 192.168.77.2', '200 192.168.77.1', '200 192.168.77.2']);
    assert.equal(new Set(net.sent.map((d) => d.from.port)).size, 1, 'one socket');
    assert.deepEqual(got, ['3 192.168.77.1:1900 10', '7 192.168.77.9:4242 11', '103 192.168.77.1:1900 10', '107 192.168.77.9:4242 11', '203 192.168.77.1:1900 10', '207 192.168.77.9:4242 11']);
    assert.equal(net.openSockets, 0);
  });
});

describe('exponentialBackoff', () => {
  it('doubles from the initial delay, capped, for at most maxSends', () => {
    const schedule = exponentialBackoff({ initialMs: 250, maxIntervalMs: 1000, maxSends: 5 });
    assert.deepEqual([1, 2, 3, 4, 5].map(schedule), [250, 500, 1000, 1000, undefined]);
  });

  it('RFC 6886 §3.1: 250 ms doubling', () => {
    const schedule = exponentialBackoff({ initialMs: 250 });
    assert.deepEqual([1, 2, 3, 4].map(schedule), [250, 500, 1000, 2000]);
  });

  it('jitter stays within ±fraction', () => {
    const low = exponentialBackoff({ initialMs: 1000, jitter: 0.1, random: () => 0 });
    const high = exponentialBackoff({ initialMs: 1000, jitter: 0.1, random: () => 0.999999 });
    assert.equal(low(1), 900);
    assert.equal(high(1), 1100);
  });
});
