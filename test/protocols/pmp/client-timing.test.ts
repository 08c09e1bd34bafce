/**
 * NAT-PMP client behaviour that depends on time, in virtual time over a fake network: the
 * retransmission schedule (RFC 6886 §3.1), deadlines, coldness and teardown. The real
 * udpExchange runs; only the socket and the clock are fakes.
 */
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { MappingGrant, Nat, NatMappingRequest } from '../../../src/core/nat.js';
import { GatewayTimeoutError, ProtocolError } from '../../../src/errors.js';
import { createPmpNat, pmp } from '../../../src/protocols/pmp/client.js';
import { decodePmpRequest, encodePmpResponse } from '../../../src/protocols/pmp/codec.js';
import { FakeNetwork } from '../../support/fake-network.js';
import { VirtualClock } from '../../support/virtual-clock.js';

const GATEWAY = '192.168.77.1';
const SERVER = { address: GATEWAY, port: 5351 };
const request: NatMappingRequest = { protocol: 'tcp', internalPort: 8080, externalPort: 8080, description: 'test', lifetimeSeconds: 60 };

describe('pmp() in virtual time', () => {
  let clock: VirtualClock;
  let net: FakeNetwork;
  /** Whether the fake gateway answers; answers after `replyDelayMs`. */
  let answering: boolean;
  let epochSeconds: number;

  beforeEach(() => {
    clock = new VirtualClock();
    net = new FakeNetwork(clock);
    answering = true;
    epochSeconds = 3600;
    net.udp(SERVER, ({ data, reply }) => {
      if (!answering) return;
      const decoded = decodePmpRequest(data);
      if (decoded instanceof ProtocolError) return;
      if (decoded.op === 'external-address') reply(encodePmpResponse({ op: 'external-address', resultCode: 0, epochSeconds, externalIp: '203.0.113.7' }));
      else {
        reply(
          encodePmpResponse({
            op: 'map',
            protocol: decoded.protocol,
            resultCode: 0,
            epochSeconds,
            internalPort: decoded.internalPort,
            externalPort: decoded.suggestedExternalPort,
            lifetimeSeconds: decoded.lifetimeSeconds,
          }),
        );
      }
    });
  });

  const sendTimes = (): number[] => net.sentTo(SERVER).map((d) => d.at);

  it('retransmits 250 ms after the first send, doubling (RFC 6886 §3.1), until the 4 s deadline', () => {
    answering = false;
    const nat = createPmpNat(GATEWAY, { transport: net.transport() });
    const errors: unknown[] = [];
    nat.addMapping(request).subscribe({ error: (e: unknown) => errors.push(e) });
    clock.advance(3999);
    assert.equal(errors.length, 0, 'still waiting just before the deadline');
    clock.advance(1);
    const [error] = errors;
    assert.ok(error instanceof GatewayTimeoutError && error.timeoutMs === 4000 && error.protocol === 'pmp' && error.gateway === GATEWAY, String(error));
    assert.deepEqual(sendTimes(), [0, 250, 750, 1750, 3750]);
    clock.advance(60_000);
    assert.equal(net.sentTo(SERVER).length, 5, 'nothing sent after the deadline');
    assert.equal(net.openSockets, 0, 'socket closed');
    assert.equal(clock.pending, 0, 'no timer left');
  });

  it('the discovery probe gives up at probeTimeoutMs (default 1000 ms)', () => {
    answering = false;
    let error: unknown;
    pmp(GATEWAY, { transport: net.transport() }).subscribe({ error: (e: unknown) => (error = e) });
    clock.advance(1000);
    assert.ok(error instanceof GatewayTimeoutError && error.timeoutMs === 1000, String(error));
    assert.deepEqual(sendTimes(), [0, 250, 750]);
  });

  it('silence is a GatewayTimeoutError at the deadline, retransmitted meanwhile at 0, 20, 60, 140 ms', () => {
    // The loopback test's figures (probeTimeoutMs 200, initialRetransmitMs 20), exact here.
    answering = false;
    let error: unknown;
    let at = -1;
    pmp(GATEWAY, { transport: net.transport(), probeTimeoutMs: 200, initialRetransmitMs: 20 }).subscribe({
      error: (e: unknown) => {
        error = e;
        at = clock.now();
      },
    });
    clock.advance(1000);
    assert.ok(error instanceof GatewayTimeoutError && error.timeoutMs === 200);
    assert.equal(at, 200);
    assert.deepEqual(sendTimes(), [0, 20, 60, 140]);
  });

  it('with no gateway given, asks the transport for the default route', () => {
    let nat: Nat | undefined;
    pmp(undefined, { transport: net.transport(GATEWAY) }).subscribe((n) => (nat = n));
    clock.advance(0);
    assert.equal(nat?.gateway, GATEWAY);
    assert.deepEqual(sendTimes(), [0]);
  });

  it('a lost reply is made good by the next retransmission', () => {
    let lost = 2;
    net.udp(SERVER, ({ data, reply }) => {
      const decoded = decodePmpRequest(data);
      if (decoded instanceof ProtocolError || decoded.op !== 'map') return;
      if (lost-- > 0) return;
      reply(encodePmpResponse({ op: 'map', protocol: 'tcp', resultCode: 0, epochSeconds, internalPort: 8080, externalPort: 8080, lifetimeSeconds: 60 }), 10);
    });
    let grant: MappingGrant | undefined;
    let at = -1;
    createPmpNat(GATEWAY, { transport: net.transport() }).addMapping(request).subscribe((g) => {
      grant = g;
      at = clock.now();
    });
    clock.advance(5000);
    assert.equal(grant?.externalPort, 8080);
    assert.equal(at, 760, 'answered 10 ms after the third send (0, 250, 750)');
    assert.deepEqual(sendTimes(), [0, 250, 750]);
  });

  it('is cold: nothing is sent before subscription', () => {
    const nat$ = pmp(GATEWAY, { transport: net.transport() });
    clock.advance(30_000);
    assert.equal(net.sent.length, 0);
    nat$.subscribe();
    clock.advance(0);
    assert.deepEqual(sendTimes(), [30_000]);
  });

  it('unsubscribing closes the socket and stops retransmitting', () => {
    answering = false;
    const nat = createPmpNat(GATEWAY, { transport: net.transport() });
    const subscription = nat.addMapping(request).subscribe({ error: () => assert.fail('no error after unsubscribe') });
    clock.advance(300);
    assert.equal(net.openSockets, 1);
    assert.equal(net.sentTo(SERVER).length, 2);
    subscription.unsubscribe();
    assert.equal(net.openSockets, 0, 'socket closed');
    clock.advance(60_000);
    assert.equal(net.sentTo(SERVER).length, 2, 'nothing sent after unsubscribe');
  });

  it('an epoch that stood still for a minute of the scheduler clock is a reset (RFC 6886 §3.6)', () => {
    const nat = createPmpNat(GATEWAY, { transport: net.transport() });
    let resets = 0;
    nat.resets$?.subscribe(() => resets++);
    nat.externalIp().subscribe();
    clock.advance(60_000);
    nat.externalIp().subscribe();
    clock.advance(0);
    assert.equal(resets, 1);
    epochSeconds += 120;
    clock.advance(60_000);
    nat.externalIp().subscribe();
    clock.advance(0);
    assert.equal(resets, 1, 'an epoch that advanced with the clock is no reset');
  });
});
