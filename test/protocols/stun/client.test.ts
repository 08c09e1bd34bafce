import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { filter, firstValueFrom, lastValueFrom, Observable, timeout, toArray } from 'rxjs';
import { mapPort } from '../../../src/core/map-port.js';
import { GatewayTimeoutError, InvalidOptionError, NoGatewayError, ProtocolError } from '../../../src/errors.js';
import { parseStunServer, stun } from '../../../src/protocols/stun/client.js';
import type { UdpExchangeOptions, UdpReply } from '../../../src/transport/udp.js';
import { stunBindingResponse } from '../../lab/stun-responder.mjs';
import { closedUdpPort } from '../../support/net.js';
import { startLoopbackStunServer, type LoopbackStunServer } from '../../support/stun-server.js';

const silent = { debug: () => undefined };

/** What the loopback server says it saw (loopback itself is no usable external address). */
const SEEN = '203.0.113.7';

/** A STUN server on loopback: `answer` decides what each Binding request gets (default: SEEN and the sender's port). */
const loopbackServer = (answer?: (request: Buffer, port: number) => Buffer | null): Promise<LoopbackStunServer> => startLoopbackStunServer(SEEN, answer);

describe('stun(): on loopback sockets', () => {
  let server: Awaited<ReturnType<typeof loopbackServer>>;
  before(async () => {
    server = await loopbackServer();
  });
  after(() => server.close());

  it('finds the address the server saw, and maps with no-op calls (go-ethereum stun)', async () => {
    const nat = await firstValueFrom(stun(`127.0.0.1:${server.port}`, { logger: silent }));
    assert.equal(nat.kind, 'stun');
    assert.equal(nat.name, `stun(127.0.0.1:${server.port})`);
    assert.equal(nat.gateway, null);
    assert.equal(await firstValueFrom(nat.externalIp()), SEEN);
    const before = server.requests;
    const grant = await firstValueFrom(nat.addMapping({ protocol: 'udp', internalPort: 30303, externalPort: 30303, lifetimeSeconds: 600, description: 'x' }));
    assert.deepEqual(grant, { protocol: 'udp', internalPort: 30303, externalPort: 30303, lifetimeSeconds: 600, externalIp: SEEN });
    assert.deepEqual(await lastValueFrom(nat.deleteMapping(grant).pipe(toArray())), []);
    assert.equal(server.requests, before, 'adds and deletes send nothing');
  });

  it('gives mapPort a mapped state with the STUN address (and loopback, which is none, unmapped)', async () => {
    const state = await firstValueFrom(
      mapPort(stun(`127.0.0.1:${server.port}`, { logger: silent }), { protocol: 'tcp', internalPort: 8080 }, { logger: silent }).pipe(
        filter((s) => s.status === 'mapped'),
        timeout(10_000),
      ),
    );
    assert.equal(state.status, 'mapped');
    assert.equal(state.externalIp, SEEN);
    assert.equal(state.externalPort, 8080);
    assert.equal(state.backend, `stun(127.0.0.1:${server.port})`);
    const honest = await loopbackServer((request, port) => stunBindingResponse(request, '127.0.0.1', port));
    try {
      const lie = await firstValueFrom(
        mapPort(stun(`127.0.0.1:${honest.port}`, { logger: silent }), { protocol: 'tcp', internalPort: 8080 }, { logger: silent }).pipe(
          filter((s) => s.status === 'unmapped'),
          timeout(10_000),
        ),
      );
      assert.ok(lie.error instanceof ProtocolError);
      assert.equal(lie.error.reason, 'external-address');
    } finally {
      await honest.close();
    }
  });

  it('moves on to the next server when one is silent or closed, and names every failure when all fail', async () => {
    const closed = await closedUdpPort();
    const mute = await loopbackServer(() => null);
    // The silent server must time out and the live one answer within the same deadline: 2 s is
    // ample for a loopback answer on a loaded machine (when STUN times out is not what this shows).
    const timeoutMs = 2000;
    try {
      const nat = await firstValueFrom(
        stun(undefined, { servers: [`127.0.0.1:${mute.port}`, `127.0.0.1:${closed}`, `127.0.0.1:${server.port}`], attempts: 3, timeoutMs, logger: silent, random: () => 0.99 }),
      );
      assert.equal(await firstValueFrom(nat.externalIp()), SEEN);

      const none = stun(undefined, { servers: [`127.0.0.1:${mute.port}`, `127.0.0.1:${closed}`], timeoutMs, logger: silent });
      const error = await firstValueFrom(none).then(
        () => assert.fail('expected an error'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof NoGatewayError);
      assert.equal(error.failures.length, 2);
      const timeout = error.failures.find((f) => f.backend === `stun(127.0.0.1:${mute.port})`);
      assert.ok(timeout?.error instanceof GatewayTimeoutError, String(timeout?.error));
      assert.ok(mute.requests >= 2, 'the silent server was asked again (retransmission)');
    } finally {
      await mute.close();
    }
  });

  it('reports a malformed answer and an error response as ProtocolErrors naming the server', async () => {
    const garbage = await loopbackServer((request) => {
      const reply = stunBindingResponse(request, SEEN, 1);
      if (!reply) return null;
      reply[25] = 0x07; // MAPPED-ADDRESS's family byte: neither IPv4 nor IPv6
      return reply;
    });
    const refusing = await loopbackServer((request) => {
      const header = Buffer.alloc(20);
      header.writeUInt16BE(0x0111, 0);
      header.writeUInt16BE(12, 2);
      request.copy(header, 4, 4, 20);
      return Buffer.concat([header, Buffer.from([0x00, 0x09, 0x00, 0x07, 0, 0, 0x05, 0x00, 0x6f, 0x6f, 0x70, 0])]);
    });
    try {
      for (const [port, reason] of [
        [garbage.port, 'family'],
        [refusing.port, 'refused'],
      ] as const) {
        const error = await firstValueFrom(stun(`127.0.0.1:${port}`, { timeoutMs: 10_000, logger: silent })).then(
          () => assert.fail('expected an error'),
          (e: unknown) => e,
        );
        assert.ok(error instanceof NoGatewayError);
        const cause = error.failures[0]!.error;
        assert.ok(cause instanceof ProtocolError, String(cause));
        assert.equal(cause.reason, reason);
        assert.equal(cause.gateway, `127.0.0.1:${port}`);
        if (reason === 'refused') assert.match(cause.message, /500 oop/);
      }
    } finally {
      await garbage.close();
      await refusing.close();
    }
  });
});

describe('stun(): what it sends, with a fake transport', () => {
  /** A udpExchange that records its options and answers with the lab responder's bytes. */
  function fakeExchange(seen: UdpExchangeOptions[]) {
    return (options: UdpExchangeOptions) =>
      new Observable<UdpReply>((subscriber) => {
        seen.push(options);
        const message = typeof options.message === 'function' ? options.message({ address: '10.0.0.2', port: 40000 }) : options.message;
        const reply = stunBindingResponse(Buffer.from(message), '198.51.100.4', 40000)!;
        if (options.accept(new Uint8Array(reply), { address: options.host, port: options.port })) {
          subscriber.next({ message: new Uint8Array(reply), remote: { address: options.host, port: options.port }, local: { address: '10.0.0.2', port: 40000 } } as UdpReply);
        }
        subscriber.complete();
      });
  }

  it('asks host names and IPv6 servers on their port, with a fresh transaction each time', async () => {
    const seen: UdpExchangeOptions[] = [];
    const nat = await firstValueFrom(stun('[2001:db8::1]:3479', { transport: { udpExchange: fakeExchange(seen) }, logger: silent }));
    assert.equal(await firstValueFrom(nat.externalIp()), '198.51.100.4');
    assert.equal(seen.length, 2);
    assert.equal(seen[0]!.host, '2001:db8::1');
    assert.equal(seen[0]!.port, 3479);
    assert.equal(seen[0]!.protocol, 'stun');
    const ids = seen.map((o) => Buffer.from(o.message as Uint8Array).subarray(8, 20).toString('hex'));
    assert.notEqual(ids[0], ids[1]);
    assert.equal(seen[0]!.retransmit?.(1), 500, 'RFC 8489 §6.2.1: RTO 500 ms');
    assert.equal(seen[0]!.retransmit?.(2), 1000, 'then doubling');
  });

  it('asks at most `attempts` servers of the default list, in a random order', async () => {
    const seen: UdpExchangeOptions[] = [];
    const failing = (options: UdpExchangeOptions) =>
      new Observable<UdpReply>((subscriber) => {
        seen.push(options);
        subscriber.error(new GatewayTimeoutError('stun', options.host, 1));
      });
    const error = await firstValueFrom(stun(undefined, { transport: { udpExchange: failing }, attempts: 2, logger: silent, random: () => 0 })).catch((e: unknown) => e);
    assert.ok(error instanceof NoGatewayError);
    assert.equal(seen.length, 2);
    assert.equal(new Set(seen.map((o) => `${o.host}:${o.port}`)).size, 2);
  });

  it('nothing happens before subscribe', () => {
    const seen: UdpExchangeOptions[] = [];
    stun('192.0.2.1', { transport: { udpExchange: fakeExchange(seen) } });
    assert.equal(seen.length, 0);
  });
});

describe('stun(): options and server text', () => {
  it('parses host[:port], [v6]:port and bare IPv6', () => {
    assert.deepEqual(parseStunServer('stun.example.net'), { host: 'stun.example.net', port: 3478, text: 'stun.example.net:3478' });
    assert.deepEqual(parseStunServer('192.0.2.1:19302'), { host: '192.0.2.1', port: 19302, text: '192.0.2.1:19302' });
    assert.deepEqual(parseStunServer('[::1]:3478'), { host: '::1', port: 3478, text: '[::1]:3478' });
    assert.deepEqual(parseStunServer('2001:db8::1'), { host: '2001:db8::1', port: 3478, text: '[2001:db8::1]:3478' });
    for (const bad of ['', ':3478', 'host:0', 'host:65536', 'host:x', 'a b', 'host:3478:1x', '[::1]:']) {
      assert.equal(parseStunServer(bad), null, bad);
    }
  });

  it('refuses bad options at subscribe with an InvalidOptionError', async () => {
    for (const options of [{ servers: [] }, { servers: ['bad host'] }, { attempts: 0 }, { timeoutMs: -1 }]) {
      const error = await firstValueFrom(stun(undefined, options)).catch((e: unknown) => e);
      assert.ok(error instanceof InvalidOptionError, JSON.stringify(options));
    }
  });
});
