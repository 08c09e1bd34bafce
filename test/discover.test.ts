/**
 * discoverNat()'s probe schedule (#11 item 5), in virtual time over the fake network: PCP goes
 * first, NAT-PMP after PCP failed or UDP_HEAD_START_MS, UPnP's SSDP search after both failed or
 * that head start; whatever has not started when the race is decided never starts, and every
 * probe's socket is closed at that moment.
 */
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { switchMap, throwError, timer } from 'rxjs';
import { discoverNat, UDP_HEAD_START_MS } from '../src/discover.js';
import type { Nat } from '../src/core/nat.js';
import { GatewayUnreachableError, ProtocolError } from '../src/errors.js';
import { decodePcpRequest, encodePcpResponse } from '../src/protocols/pcp/codec.js';
import { decodePmpRequest, encodePmpResponse } from '../src/protocols/pmp/codec.js';
import { encodeSoapResponse, decodeSoapRequest } from '../src/protocols/upnp/soap.js';
import type { Transport } from '../src/transport/transport.js';
import { FakeNetwork } from './support/fake-network.js';
import { VirtualClock } from './support/virtual-clock.js';
import { fixture } from './protocols/upnp/fixtures.js';

const GATEWAY = '192.168.77.1';
const PORT_5351 = { address: GATEWAY, port: 5351 };
const SSDP = { address: GATEWAY, port: 1900 };
const SSDP_ANSWER = new TextEncoder().encode(fixture('ssdp-miniupnpd.txt').replace(/\r?\n/g, '\r\n'));

describe('discoverNat(): which probe goes when', () => {
  let clock: VirtualClock;
  let net: FakeNetwork;
  /** What the router speaks on 5351, and after how long it answers. */
  let router: { pcp: boolean; pmp: boolean; delayMs: number };

  beforeEach(() => {
    clock = new VirtualClock();
    net = new FakeNetwork(clock);
    router = { pcp: true, pmp: true, delayMs: 2 };
    net.udp(PORT_5351, ({ data, reply }) => {
      if (data[0] === 0) {
        const decoded = decodePmpRequest(data);
        if (router.pmp && !(decoded instanceof ProtocolError) && decoded.op === 'external-address') {
          reply(encodePmpResponse({ op: 'external-address', resultCode: 0, epochSeconds: 60, externalIp: '203.0.113.7' }), router.delayMs);
        }
        return;
      }
      const decoded = decodePcpRequest(data);
      if (router.pcp && !(decoded instanceof ProtocolError) && decoded.op === 'announce') {
        reply(encodePcpResponse({ op: 'announce', opcode: 0, resultCode: 0, lifetimeSeconds: 0, epochSeconds: 60, options: [] }), router.delayMs);
      }
    });
    // miniupnpd answers M-SEARCH after ~53 ms.
    net.udp(SSDP, ({ reply }) => reply(SSDP_ANSWER, 53));
    net.http((request, url) => {
      if (request.method === 'GET') return url.pathname === '/rootDesc.xml' ? { status: 200, body: fixture('igd2-miniupnpd.xml') } : { status: 404, body: '' };
      const decoded = decodeSoapRequest(String(request.body ?? ''), request.headers?.SOAPAction);
      if (decoded instanceof ProtocolError) return { status: 500, body: '' };
      return { status: 200, body: encodeSoapResponse(decoded.serviceType, decoded.action, [['NewConnectionStatus', 'Connected']]) };
    });
  });

  const race = (udpTransport: Transport = net.transport(GATEWAY)): { nat: () => Nat | undefined; at: () => number } => {
    let nat: Nat | undefined;
    let at = -1;
    const upnpTransport = net.transport(GATEWAY);
    discoverNat({ gateway: GATEWAY, pcp: { transport: udpTransport }, pmp: { transport: udpTransport }, upnp: { transport: upnpTransport }, logger: { debug: () => undefined } }).subscribe({
      next: (n) => {
        nat = n;
        at = clock.now();
      },
      error: (e: unknown) => assert.fail(String(e)),
    });
    return { nat: () => nat, at: () => at };
  };
  const text = (data: Uint8Array): string => new TextDecoder().decode(data);
  const searches = (): number[] => net.sent.filter((d) => text(d.data).startsWith('M-SEARCH')).map((d) => d.at);
  const pmpProbes = (): number[] => net.sentTo(PORT_5351).filter((d) => d.data[0] === 0).map((d) => d.at);

  it('a PCP router: decided by PCP alone, before any NAT-PMP request or M-SEARCH is sent; every socket closed then', () => {
    const found = race();
    clock.advance(10_000);
    assert.equal(found.nat()?.kind, 'pcp');
    assert.equal(found.at(), 2);
    assert.deepEqual(pmpProbes(), [], 'no NAT-PMP probe');
    assert.deepEqual(searches(), [], 'no M-SEARCH: the router answers nothing but the winner');
    assert.equal(net.openSockets, 0);
    assert.equal(net.httpLog.length, 0);
  });

  it('a PCP router slower than the head start: NAT-PMP and the lead M-SEARCH go at UDP_HEAD_START_MS, and stop when PCP answers', () => {
    router.delayMs = UDP_HEAD_START_MS + 5;
    router.pmp = false;
    const found = race();
    clock.advance(10_000);
    assert.equal(found.nat()?.kind, 'pcp');
    assert.equal(found.at(), UDP_HEAD_START_MS + 5);
    assert.deepEqual(pmpProbes(), [UDP_HEAD_START_MS]);
    assert.deepEqual(searches(), [UDP_HEAD_START_MS], 'one M-SEARCH (the lead), none after the race was decided');
    assert.equal(net.openSockets, 0);
  });

  it('a UPnP-only router that answers PCP and NAT-PMP with port unreachable: the SSDP search starts as soon as PCP is refused, not after the head start', () => {
    // Port unreachable a few ms after each request (the ICMP answer's round trip).
    const refused: Transport = net.transport(GATEWAY, {
      udpExchange: (options) =>
        timer(3, clock).pipe(
          switchMap(() => throwError(() => new GatewayUnreachableError(options.protocol, options.host, 'ECONNREFUSED', { cause: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }) }))),
        ),
    });
    const found = race(refused);
    clock.advance(10_000);
    assert.equal(found.nat()?.kind, 'upnp');
    assert.deepEqual(searches(), [3], 'PCP refused at 3 ms: NAT-PMP on the same port is not waited for');
    assert.equal(found.at(), 56);
    assert.equal(net.openSockets, 0);
  });

  it('a UPnP-only router silent on 5351: the SSDP search starts after UDP_HEAD_START_MS', () => {
    router.pcp = false;
    router.pmp = false;
    const found = race();
    clock.advance(10_000);
    assert.equal(found.nat()?.kind, 'upnp');
    assert.deepEqual(searches(), [UDP_HEAD_START_MS]);
    assert.equal(found.at(), UDP_HEAD_START_MS + 53);
    assert.equal(net.openSockets, 0, 'the PCP and NAT-PMP probes were closed when UPnP won');
  });

  it('a NAT-PMP router that ignores PCP: NAT-PMP at once when PCP fails (not after the head start)', () => {
    router.pcp = false;
    const refusedPcp: Transport = net.transport(GATEWAY, {
      udpExchange: (options) =>
        options.protocol === 'pcp' ? throwError(() => new GatewayUnreachableError(options.protocol, options.host, 'ECONNREFUSED')) : net.transport(GATEWAY).udpExchange(options),
    });
    const found = race(refusedPcp);
    clock.advance(10_000);
    assert.equal(found.nat()?.kind, 'pmp');
    assert.deepEqual(pmpProbes(), [0]);
    assert.equal(found.at(), 2);
    assert.deepEqual(searches(), []);
  });
});
