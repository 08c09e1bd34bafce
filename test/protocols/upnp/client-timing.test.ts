/**
 * UPnP client behaviour that depends on time, in virtual time over a fake network: the SSDP
 * window and its rounds, resolving on the first valid answer, SOAP deadlines, the bound on
 * requests in flight, coldness and teardown. The real SSDP search, udpCollect and HTTP deadline
 * code runs; only the sockets, the HTTP server and the clock are fakes.
 */
import { beforeEach, describe, it } from 'node:test';
import { throwError } from 'rxjs';
import assert from 'node:assert/strict';
import { GatewayTimeoutError, ProtocolError } from '../../../src/errors.js';
import { SSDP_WIDEN_AFTER_MS, upnp, type UpnpNat, type UpnpOptions } from '../../../src/protocols/upnp/client.js';
import { decodeSoapRequest, encodeSoapResponse } from '../../../src/protocols/upnp/soap.js';
import { SSDP_MULTICAST_ADDRESS, SSDP_PORT } from '../../../src/protocols/upnp/ssdp.js';
import { FakeNetwork, type HttpAnswer } from '../../support/fake-network.js';
import { VirtualClock } from '../../support/virtual-clock.js';
import { fixture } from './fixtures.js';

const GATEWAY = '192.168.77.1';
const UNICAST = { address: GATEWAY, port: SSDP_PORT };
const MULTICAST = { address: SSDP_MULTICAST_ADDRESS, port: SSDP_PORT };
const DESCRIPTION_URL = `http://${GATEWAY}:5000/rootDesc.xml`;
const CONTROL_URL = `http://${GATEWAY}:5000/ctl/IPConn`;
const SERVICE = 'urn:schemas-upnp-org:service:WANIPConnection:2';
const SSDP_ANSWER = new TextEncoder().encode(fixture('ssdp-miniupnpd.txt').replace(/\r?\n/g, '\r\n'));

describe('upnp() in virtual time', () => {
  let clock: VirtualClock;
  let net: FakeNetwork;
  /** Whether the gateway answers M-SEARCH, and after how long (miniupnpd: ~53 ms). */
  let ssdp: { answering: boolean; delayMs: number };
  /** How each SOAP action is answered (default: at once). */
  let soap: Map<string, HttpAnswer>;

  beforeEach(() => {
    clock = new VirtualClock();
    net = new FakeNetwork(clock);
    ssdp = { answering: true, delayMs: 53 };
    soap = new Map();
    const answerSearch = ({ reply }: { reply: (bytes: Uint8Array, delayMs?: number, source?: { address: string; port: number }) => void }): void => {
      if (ssdp.answering) reply(SSDP_ANSWER, ssdp.delayMs, UNICAST);
    };
    net.udp(UNICAST, answerSearch);
    net.udp(MULTICAST, answerSearch);
    net.http((request, url) => {
      if (request.method === 'GET') return url.pathname === '/rootDesc.xml' ? { status: 200, body: fixture('igd2-miniupnpd.xml') } : { status: 404, body: '' };
      const decoded = decodeSoapRequest(String(request.body ?? ''), request.headers?.SOAPAction);
      if (decoded instanceof ProtocolError) return { status: 500, body: '' };
      const given = soap.get(decoded.action);
      if (given !== undefined) return given;
      if (decoded.action === 'GetStatusInfo') return { status: 200, body: encodeSoapResponse(SERVICE, decoded.action, [['NewConnectionStatus', 'Connected']]) };
      if (decoded.action === 'GetExternalIPAddress') return { status: 200, body: encodeSoapResponse(SERVICE, decoded.action, [['NewExternalIPAddress', '203.0.113.7']]) };
      return { status: 500, body: '' };
    });
  });

  const searchTexts = (): { at: number; text: string }[] =>
    net.sent.map((d) => ({ at: d.at, text: new TextDecoder().decode(d.data) })).filter((d) => d.text.startsWith('M-SEARCH'));
  const searches = (): { at: number; to: string }[] =>
    net.sent.filter((d) => new TextDecoder().decode(d.data).startsWith('M-SEARCH')).map((d) => ({ at: d.at, to: `${d.to.address}:${d.to.port}` }));
  const discover = (options: UpnpOptions = {}): { nat: () => UpnpNat | undefined; error: () => unknown; at: () => number } => {
    let nat: UpnpNat | undefined;
    let error: unknown;
    let at = -1;
    upnp({ transport: net.transport(GATEWAY), ...options }).subscribe({
      next: (n) => {
        nat = n;
        at = clock.now();
      },
      error: (e: unknown) => {
        error = e;
        at = clock.now();
      },
    });
    return { nat: () => nat, error: () => error, at: () => at };
  };
  const connected = (options: UpnpOptions = {}): UpnpNat => {
    const found = discover({ descriptionUrl: DESCRIPTION_URL, ...options });
    clock.advance(0);
    return found.nat() ?? assert.fail(`no Nat: ${String(found.error())}`);
  };

  it('searches the default gateway alone first (one IGD:1), then the multicast group and the gateway in rounds every windowMs / 4 from SSDP_WIDEN_AFTER_MS, and fails with GatewayTimeoutError at the end of the window', () => {
    ssdp.answering = false;
    const found = discover();
    clock.advance(1999);
    assert.equal(found.error(), undefined);
    clock.advance(1);
    assert.ok(found.error() instanceof GatewayTimeoutError, String(found.error()));
    assert.equal(found.at(), 2000);
    const sent = searches();
    assert.deepEqual(
      sent.filter((s) => s.at === 0),
      [{ at: 0, to: `${UNICAST.address}:${UNICAST.port}` }],
      'the lead: one M-SEARCH, unicast to the default gateway',
    );
    assert.match(searchTexts().find((s) => s.at === 0)?.text ?? '', /\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n/);
    // Then five search targets (IGD:2, IGD:1, WANIPConnection:2/1, WANPPPConnection:1) to each of two targets, per round.
    assert.deepEqual([...new Set(sent.map((s) => s.at))], [0, SSDP_WIDEN_AFTER_MS, SSDP_WIDEN_AFTER_MS + 500, SSDP_WIDEN_AFTER_MS + 1000, SSDP_WIDEN_AFTER_MS + 1500]);
    assert.deepEqual(
      sent.filter((s) => s.at === SSDP_WIDEN_AFTER_MS).map((s) => s.to),
      [...Array(5).fill(`${MULTICAST.address}:${MULTICAST.port}`), ...Array(5).fill(`${UNICAST.address}:${UNICAST.port}`)],
    );
    clock.advance(10_000);
    assert.equal(searches().length, sent.length, 'no round after the window');
    assert.equal(net.openSockets, 0, 'the SSDP sockets are closed');
  });

  it('a gateway found by the lead search: one M-SEARCH in all, nothing sent to the multicast group', () => {
    // miniupnpd answers after ~53 ms; by then the full rounds would have sent ten.
    const found = discover();
    clock.advance(5000);
    assert.equal(found.nat()?.gateway, DESCRIPTION_URL, String(found.error()));
    assert.equal(found.at(), 53);
    assert.deepEqual(searches(), [{ at: 0, to: `${UNICAST.address}:${UNICAST.port}` }]);
    assert.equal(net.openSockets, 0);

    // Without a default gateway (no unicast target) there is no lead: the rounds start at once.
    ssdp.answering = false;
    const before = net.sent.length;
    const transport = { ...net.transport(GATEWAY), defaultGateway: () => throwError(() => new Error('no default route')) };
    upnp({ transport }).subscribe({ error: () => undefined });
    clock.advance(0);
    assert.deepEqual(searches().slice(1), Array(5).fill({ at: 5000, to: `${MULTICAST.address}:${MULTICAST.port}` }));
    assert.equal(net.sent.length - before, 5);
    clock.advance(5000);
  });

  it('a gateway that answers the lead later than SSDP_WIDEN_AFTER_MS: still no rounds while its answer is being checked', () => {
    ssdp.delayMs = 100;
    // The check (the description fetch: one WAN service, nothing else to ask) takes 200 ms.
    net.http((request) => (request.method === 'GET' ? { status: 200, body: fixture('igd2-miniupnpd.xml'), delayMs: 200 } : { status: 500, body: '' }));
    const found = discover();
    clock.advance(5000);
    assert.equal(found.at(), 300, String(found.error()));
    assert.deepEqual(searches(), [{ at: 0, to: `${UNICAST.address}:${UNICAST.port}` }], 'no rounds sent to a router busy answering the check');
  });

  it('when the gateway the lead found fails its check, the rounds start at once (not at SSDP_WIDEN_AFTER_MS)', () => {
    ssdp.delayMs = 5;
    net.http((request) => (request.method === 'GET' ? { status: 500, body: '', delayMs: 10 } : { status: 500, body: '' }));
    const found = discover();
    clock.advance(15);
    assert.deepEqual([...new Set(searches().map((s) => s.at))], [0, 15], 'widened the moment the description failed');
    clock.advance(5000);
    assert.ok(found.error() instanceof ProtocolError, String(found.error()));
  });

  it('resolves on the first valid answer, long before the window ends, and stops searching', () => {
    // A 20 s window: the gateway answers after 53 ms, the description at once.
    const found = discover({ timeoutMs: 20_000 });
    clock.advance(20_000);
    assert.equal(found.nat()?.gateway, DESCRIPTION_URL);
    assert.equal(found.at(), 53);
    assert.equal(found.nat()?.service.controlUrl, CONTROL_URL);
    assert.equal(found.nat()?.internalClient, net.clientAddress);
    assert.deepEqual([...new Set(searches().map((s) => s.at))], [0], 'the lead search only');
    assert.equal(net.httpLog.filter((r) => r.request.method === 'GET').length, 1, 'fetched once');
    assert.equal(net.openSockets, 0);
  });

  it('a SOAP action unanswered for requestTimeoutMs (default 3000) is a GatewayTimeoutError carrying the control URL', () => {
    const nat = connected();
    soap.set('GetExternalIPAddress', 'silent');
    const errors: unknown[] = [];
    let at = -1;
    const start = clock.now();
    nat.externalIp().subscribe({
      error: (e: unknown) => {
        errors.push(e);
        at = clock.now() - start;
      },
    });
    clock.advance(2999);
    assert.equal(errors.length, 0);
    clock.advance(1);
    const [error] = errors;
    assert.ok(error instanceof GatewayTimeoutError && error.gateway === CONTROL_URL && error.timeoutMs === 3000, String(error));
    assert.equal(at, 3000);
    assert.equal(net.httpInFlight, 0, 'the request was aborted');
  });

  it('serializes requests to one gateway (maxConcurrentRequests 1), in parallel when allowed', () => {
    const arrivals = (max: number): number[] => {
      const nat = connected({ maxConcurrentRequests: max });
      soap.set('GetExternalIPAddress', { status: 200, body: encodeSoapResponse(SERVICE, 'GetExternalIPAddress', [['NewExternalIPAddress', '203.0.113.7']]), delayMs: 80 });
      const start = clock.now();
      const from = net.httpLog.length;
      for (let i = 0; i < 3; i++) nat.externalIp().subscribe();
      clock.advance(1000);
      return net.httpLog.slice(from).map((r) => r.at - start);
    };
    assert.deepEqual(arrivals(1), [0, 80, 160], 'one at a time');
    assert.deepEqual(arrivals(3), [0, 0, 0], 'all at once');
  });

  it('is cold: nothing is sent before subscription', () => {
    const nat$ = upnp({ transport: net.transport(GATEWAY), timeoutMs: 500 });
    clock.advance(30_000);
    assert.equal(net.sent.length, 0);
    nat$.subscribe();
    clock.advance(0);
    assert.ok(searches().length > 0);
    assert.ok(searches().every((s) => s.at === 30_000));
  });

  it('unsubscribing during discovery closes the SSDP socket, aborts the description fetch and sends no more rounds', () => {
    ssdp.delayMs = 10;
    net.http(() => 'silent');
    const subscription = upnp({ transport: net.transport(GATEWAY), timeoutMs: 1500 }).subscribe({ error: () => assert.fail('no error after unsubscribe') });
    clock.advance(20);
    assert.equal(net.httpInFlight, 1, 'fetching the description');
    subscription.unsubscribe();
    assert.equal(net.httpInFlight, 0);
    assert.equal(net.openSockets, 0);
    const count = searches().length;
    clock.advance(10_000);
    assert.equal(searches().length, count, 'no more M-SEARCH rounds');
  });
});
