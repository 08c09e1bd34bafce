/**
 * PCP client behaviour that depends on time, in virtual time over a fake network: the
 * retransmission schedule (RFC 6887 §8.1.1: doubling, capped, ±10 % jitter, one nonce),
 * deadlines, coldness and teardown. The real udpExchange runs; only the socket and the clock are
 * fakes.
 */
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MappingGrant, Nat, NatMappingRequest } from '../../../src/core/nat.js';
import { GatewayTimeoutError, ProtocolError } from '../../../src/errors.js';
import { pcp } from '../../../src/protocols/pcp/client.js';
import { decodePcpRequest, encodePcpResponse, nonceToHex } from '../../../src/protocols/pcp/codec.js';
import { FakeNetwork } from '../../support/fake-network.js';
import { VirtualClock } from '../../support/virtual-clock.js';

const GATEWAY = '192.168.77.1';
const SERVER = { address: GATEWAY, port: 5351 };
const request: NatMappingRequest = { protocol: 'udp', internalPort: 30303, externalPort: 30303, description: 'test', lifetimeSeconds: 600 };

describe('pcp() in virtual time', () => {
  let clock: VirtualClock;
  let net: FakeNetwork;
  /** Which opcodes the fake gateway answers. */
  let answers: { announce: boolean; map: boolean };

  beforeEach(() => {
    clock = new VirtualClock();
    net = new FakeNetwork(clock);
    answers = { announce: true, map: true };
    net.udp(SERVER, ({ data, reply }) => {
      const decoded = decodePcpRequest(data);
      if (decoded instanceof ProtocolError) return;
      if (decoded.op === 'announce') {
        if (answers.announce) reply(encodePcpResponse({ op: 'announce', opcode: 0, resultCode: 0, lifetimeSeconds: 0, epochSeconds: 3600, options: [] }));
        return;
      }
      if (!answers.map) return;
      reply(
        encodePcpResponse({
          op: 'map',
          opcode: 1,
          resultCode: 0,
          lifetimeSeconds: decoded.lifetimeSeconds,
          epochSeconds: 3600,
          nonce: decoded.nonce,
          protocol: decoded.protocol,
          internalPort: decoded.internalPort,
          externalPort: decoded.suggestedExternalPort,
          externalIp: '203.0.113.7',
          options: [],
        }),
      );
    });
  });

  const found = (options: Parameters<typeof pcp>[1] = {}): Nat => {
    let nat: Nat | undefined;
    pcp(GATEWAY, { transport: net.transport(), ...options }).subscribe((n) => (nat = n));
    clock.advance(0);
    return nat ?? assert.fail('no pcp Nat');
  };
  const maps = (): { at: number; nonce: string; lifetimeSeconds: number }[] =>
    net.sentTo(SERVER).flatMap((d) => {
      const decoded = decodePcpRequest(d.data);
      return !(decoded instanceof ProtocolError) && decoded.op === 'map' ? [{ at: d.at, nonce: nonceToHex(decoded.nonce), lifetimeSeconds: decoded.lifetimeSeconds }] : [];
    });

  it('retransmits a MAP doubling from 250 ms, capped at 2000 ms, each interval within ±10 %, with one nonce, until the deadline', () => {
    const nat = found({ timeoutMs: 9000 });
    answers.map = false;
    const start = clock.now();
    const errors: unknown[] = [];
    nat.addMapping(request).subscribe({ error: (e: unknown) => errors.push(e) });
    clock.advance(8999);
    assert.equal(errors.length, 0);
    clock.advance(1);
    assert.ok(errors[0] instanceof GatewayTimeoutError && errors[0].protocol === 'pcp' && errors[0].timeoutMs === 9000, String(errors[0]));
    const sent = maps();
    const times = sent.map((m) => m.at - start);
    assert.equal(times[0], 0);
    assert.ok(sent.length >= 7 && sent.length <= 8, `${sent.length} sends: ${times.join(', ')}`);
    times.slice(1).forEach((at, i) => {
      const interval = at - (times[i] ?? 0);
      const nominal = Math.min(2000, 250 * 2 ** i);
      assert.ok(interval >= nominal * 0.9 - 1 && interval <= nominal * 1.1 + 1, `interval ${i + 1}: ${interval} ms, nominal ${nominal} ms`);
    });
    assert.equal(new Set(sent.map((m) => m.nonce)).size, 1, 'every retransmission carries the same nonce');
    clock.advance(60_000);
    assert.equal(maps().length, sent.length, 'nothing sent after the deadline');
    assert.equal(net.openSockets, 0);
  });

  it('the ANNOUNCE probe gives up at probeTimeoutMs (default 1000 ms)', () => {
    answers.announce = false;
    const errors: unknown[] = [];
    pcp(GATEWAY, { transport: net.transport() }).subscribe({ error: (e: unknown) => errors.push(e) });
    clock.advance(999);
    assert.equal(errors.length, 0);
    clock.advance(1);
    assert.ok(errors[0] instanceof GatewayTimeoutError && errors[0].protocol === 'pcp' && errors[0].timeoutMs === 1000, String(errors[0]));
    assert.ok(net.sentTo(SERVER).length >= 3, 'retransmitted');
  });

  it('with no gateway given, asks the transport for the default route', () => {
    let nat: Nat | undefined;
    pcp(undefined, { transport: net.transport(GATEWAY) }).subscribe((n) => (nat = n));
    clock.advance(0);
    assert.deepEqual([nat?.kind, nat?.gateway], ['pcp', GATEWAY]);
  });

  it('a renewal and the delete reuse the nonce', () => {
    const nat = found();
    let grant: MappingGrant | undefined;
    nat.addMapping(request).subscribe((g) => (grant = g));
    clock.advance(0);
    assert.ok(grant);
    clock.advance(300_000);
    nat.addMapping({ ...request, previous: grant }).subscribe();
    clock.advance(0);
    nat.deleteMapping(grant).subscribe();
    clock.advance(0);
    const sent = maps();
    assert.deepEqual(sent.map((m) => [m.at, m.lifetimeSeconds]), [[0, 600], [300_000, 600], [300_000, 0]]);
    assert.equal(new Set(sent.map((m) => m.nonce)).size, 1);
  });

  it('is cold: nothing is sent before subscription', () => {
    const nat$ = pcp(GATEWAY, { transport: net.transport() });
    clock.advance(30_000);
    assert.equal(net.sent.length, 0);
    nat$.subscribe();
    clock.advance(0);
    assert.deepEqual(net.sentTo(SERVER).map((d) => d.at), [30_000]);
  });

  it('unsubscribing closes the socket and stops retransmitting', () => {
    const nat = found();
    answers.map = false;
    const subscription = nat.addMapping(request).subscribe({ error: () => assert.fail('no error after unsubscribe') });
    clock.advance(300);
    assert.equal(net.openSockets, 1);
    assert.equal(maps().length, 2);
    subscription.unsubscribe();
    assert.equal(net.openSockets, 0, 'socket closed');
    clock.advance(60_000);
    assert.equal(maps().length, 2, 'nothing sent after unsubscribe');
  });
});
