/**
 * Which IGD upnp() discovery takes, and what it costs whatever the network answers (#11 item 4),
 * in virtual time over the fake network: the gateway on the default route preferred, the number
 * of LOCATIONs fetched and of connections open at once bounded, and a description listing
 * thousands of services checked with a bounded number of requests and no stack that grows with it.
 */
import { beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../../../src/errors.js';
import { MAX_CHECKED_SERVICES, MAX_CONCURRENT_PROBES, MAX_PROBED_LOCATIONS, PREFERRED_GRACE_MS, upnp, type UpnpNat, type UpnpOptions } from '../../../src/protocols/upnp/client.js';
import { decodeSoapRequest, encodeSoapFault, encodeSoapResponse } from '../../../src/protocols/upnp/soap.js';
import { SSDP_MULTICAST_ADDRESS, SSDP_PORT } from '../../../src/protocols/upnp/ssdp.js';
import { FakeNetwork, type HttpAnswer } from '../../support/fake-network.js';
import { VirtualClock } from '../../support/virtual-clock.js';
import { fixture } from './fixtures.js';

const GATEWAY = '192.168.77.1';
const OTHER = '192.168.77.2';
const MULTICAST = { address: SSDP_MULTICAST_ADDRESS, port: SSDP_PORT };
const IGD2 = fixture('igd2-miniupnpd.xml');
/** The same device as an IGDv1 (every :2 type read as :1). */
const IGD1 = IGD2.replace(/(InternetGatewayDevice|WANDevice|WANConnectionDevice|WANIPConnection):2/g, '$1:1');

/** An SSDP answer for an IGD whose description is at `location`. */
function ssdpAnswer(location: string, uuid: string, version = 2): Uint8Array {
  return new TextEncoder().encode(
    [
      'HTTP/1.1 200 OK',
      'CACHE-CONTROL: max-age=120',
      `ST: urn:schemas-upnp-org:device:InternetGatewayDevice:${version}`,
      `USN: uuid:${uuid}::urn:schemas-upnp-org:device:InternetGatewayDevice:${version}`,
      'EXT:',
      `LOCATION: ${location}`,
      '',
      '',
    ].join('\r\n'),
  );
}

describe('upnp() discovery: choice and bounds', () => {
  let clock: VirtualClock;
  let net: FakeNetwork;
  /** Answers to each M-SEARCH: (bytes, delay, source). */
  let answers: Array<{ bytes: Uint8Array; delayMs: number; from: string }>;
  /** Description per host, and its delay. */
  let descriptions: Map<string, { body: string; delayMs: number } | HttpAnswer>;

  beforeEach(() => {
    clock = new VirtualClock();
    net = new FakeNetwork(clock);
    answers = [];
    descriptions = new Map();
    const onSearch = ({ reply }: { reply: (bytes: Uint8Array, delayMs?: number, source?: { address: string; port: number }) => void }): void => {
      for (const a of answers) reply(a.bytes, a.delayMs, { address: a.from, port: SSDP_PORT });
    };
    // Only the multicast group answers here (once per round), as every device on the LAN would.
    net.udp(MULTICAST, onSearch);
    net.http((request, url) => {
      if (request.method === 'GET') {
        const d = descriptions.get(url.hostname);
        if (d === undefined) return { status: 404, body: '', delayMs: 10 };
        if (d === 'silent' || !('body' in d)) return d as HttpAnswer;
        return { status: 200, body: d.body, delayMs: d.delayMs };
      }
      const decoded = decodeSoapRequest(String(request.body ?? ''), request.headers?.SOAPAction);
      if (decoded instanceof ProtocolError) return { status: 500, body: '' };
      if (decoded.action === 'GetStatusInfo') {
        if (url.pathname.startsWith('/fault')) return { status: 500, body: encodeSoapFault(401) };
        const status = url.pathname.startsWith('/down') ? 'Disconnected' : 'Connected';
        return { status: 200, body: encodeSoapResponse(decoded.serviceType, decoded.action, [['NewConnectionStatus', status]]) };
      }
      return { status: 500, body: '' };
    });
  });

  const discover = (options: UpnpOptions = {}): { nat: () => UpnpNat | undefined; error: () => unknown } => {
    let nat: UpnpNat | undefined;
    let error: unknown;
    upnp({ transport: net.transport(GATEWAY), timeoutMs: 2000, logger: { debug: () => undefined }, ...options }).subscribe({
      next: (n) => (nat = n),
      error: (e: unknown) => (error = e),
    });
    return { nat: () => nat, error: () => error };
  };

  it('prefers the IGD at the default gateway over a faster IGDv2 elsewhere', () => {
    answers.push({ bytes: ssdpAnswer(`http://${OTHER}:5000/rootDesc.xml`, 'other-0000'), delayMs: 5, from: OTHER });
    answers.push({ bytes: ssdpAnswer(`http://${GATEWAY}:5000/rootDesc.xml`, 'gateway-0000', 1), delayMs: 20, from: GATEWAY });
    descriptions.set(OTHER, { body: IGD2, delayMs: 1 });
    descriptions.set(GATEWAY, { body: IGD1, delayMs: 200 });
    const found = discover();
    clock.advance(2500);
    assert.equal(found.nat()?.gateway, `http://${GATEWAY}:5000/rootDesc.xml`, String(found.error()));
    assert.equal(found.nat()?.description.igdVersion, 1, 'the default gateway even as an IGDv1');
  });

  it('takes the other IGD when the default gateway\'s description fails, and does not wait for one that never answered SSDP', () => {
    answers.push({ bytes: ssdpAnswer(`http://${OTHER}:5000/rootDesc.xml`, 'other-0000'), delayMs: 5, from: OTHER });
    answers.push({ bytes: ssdpAnswer(`http://${GATEWAY}:5000/rootDesc.xml`, 'gateway-0000'), delayMs: 20, from: GATEWAY });
    descriptions.set(OTHER, { body: IGD2, delayMs: 1 });
    descriptions.set(GATEWAY, { status: 500, body: '', delayMs: 50 });
    const failed = discover();
    clock.advance(2500);
    assert.equal(failed.nat()?.gateway, `http://${OTHER}:5000/rootDesc.xml`, String(failed.error()));

    answers.splice(1); // the default gateway is silent now
    const alone = discover();
    clock.advance(PREFERRED_GRACE_MS - 1);
    assert.equal(alone.nat(), undefined, 'held back for the default gateway\'s answer');
    clock.advance(1);
    assert.equal(alone.nat()?.gateway, `http://${OTHER}:5000/rootDesc.xml`, 'taken when the grace ends, not at the end of the window');
    const given = discover({ ssdpTargets: [MULTICAST] });
    clock.advance(10);
    assert.equal(given.nat()?.gateway, `http://${OTHER}:5000/rootDesc.xml`, 'with the targets given, nothing is held back');
  });

  it('5,000 distinct LOCATIONs: at most MAX_PROBED_LOCATIONS fetched, MAX_CONCURRENT_PROBES at once', () => {
    for (let i = 0; i < 5000; i++) {
      answers.push({ bytes: ssdpAnswer(`http://${OTHER}:5000/d${i}.xml`, `device-${i}`), delayMs: 1, from: OTHER });
    }
    // Every description is slow and broken.
    descriptions.set(OTHER, { status: 404, body: '', delayMs: 30 });
    const found = discover({ ssdpRepeatIntervalMs: 60_000 });
    clock.advance(5000);
    const fetched = net.httpLog.filter((r) => r.request.method === 'GET').length;
    assert.equal(fetched, MAX_PROBED_LOCATIONS);
    // Open from the request's arrival until its answer, 30 ms later (the fake counts a request
    // until its Observable is finalized, a step after the answer that frees the slot).
    const gets = net.httpLog.filter((r) => r.request.method === 'GET').map((r) => r.at);
    const mostAtOnce = Math.max(...gets.map((at) => gets.filter((other) => other <= at && other + 30 > at).length));
    assert.equal(mostAtOnce, MAX_CONCURRENT_PROBES);
    assert.ok(found.error() instanceof ProtocolError, String(found.error()));
    assert.equal(net.httpInFlight, 0);
  });

  /** A description whose one WANConnectionDevice lists services at these control URLs. */
  const withServices = (controlUrls: readonly string[]): string => {
    const services = controlUrls
      .map((url, i) => `<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn${i}</serviceId><controlURL>${url}</controlURL><eventSubURL>/e</eventSubURL><SCPDURL>/s.xml</SCPDURL></service>`)
      .join('');
    return `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><UDN>uuid:two</UDN><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><UDN>uuid:two-wan</UDN><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><UDN>uuid:two-conn</UDN><serviceList>${services}</serviceList></device></deviceList></device></deviceList></device></root>`;
  };
  it('one WAN connection service is taken without a request; of several, the first Connected, else the first whose GetStatusInfo faulted, else not-connected', () => {
    const posts = (): string[] => net.httpLog.filter((r) => r.request.method === 'POST').map((r) => new URL(r.request.url).pathname);
    const take = (controlUrls: readonly string[]): { nat: UpnpNat | undefined; error: unknown; asked: string[] } => {
      descriptions.set(GATEWAY, { body: withServices(controlUrls), delayMs: 1 });
      const before = posts().length;
      const found = discover({ descriptionUrl: `http://${GATEWAY}:5000/rootDesc.xml` });
      clock.advance(1000);
      return { nat: found.nat(), error: found.error(), asked: posts().slice(before) };
    };
    const single = take(['/down0']);
    assert.equal(single.nat?.service.controlUrl, `http://${GATEWAY}:5000/down0`, String(single.error));
    assert.deepEqual(single.asked, [], 'nothing to choose: no GetStatusInfo');

    const second = take(['/down0', '/up1']);
    assert.equal(second.nat?.service.controlUrl, `http://${GATEWAY}:5000/up1`);
    assert.deepEqual(second.asked, ['/down0', '/up1']);

    const faulted = take(['/down0', '/fault1', '/down2']);
    assert.equal(faulted.nat?.service.controlUrl, `http://${GATEWAY}:5000/fault1`, 'a service whose check faulted is the last resort');
    assert.deepEqual(faulted.asked, ['/down0', '/fault1', '/down2']);

    const none = take(['/down0', '/down1']);
    assert.ok(none.error instanceof ProtocolError && none.error.reason === 'not-connected', String(none.error));
  });

  it('a description with 3,000 WAN connection services: at most MAX_CHECKED_SERVICES asked, no stack overflow', () => {
    const services = Array.from(
      { length: 3000 },
      (_, i) =>
        `<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><serviceId>urn:upnp-org:serviceId:WANIPConn${i}</serviceId><controlURL>/down${i}</controlURL><eventSubURL>/e</eventSubURL><SCPDURL>/s.xml</SCPDURL></service>`,
    ).join('');
    const body = `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><UDN>uuid:big</UDN><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><UDN>uuid:big-wan</UDN><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><UDN>uuid:big-conn</UDN><serviceList>${services}</serviceList></device></deviceList></device></deviceList></device></root>`;
    descriptions.set(GATEWAY, { body, delayMs: 1 });
    const found = discover({ descriptionUrl: `http://${GATEWAY}:5000/rootDesc.xml`, maxBodyBytes: 2 * 1024 * 1024 });
    clock.advance(1000);
    const error = found.error();
    assert.ok(error instanceof ProtocolError, String(error));
    // Either the description is refused whole (too many elements) or its services are checked, boundedly.
    const asked = net.httpLog.filter((r) => r.request.method === 'POST').length;
    assert.ok(asked <= MAX_CHECKED_SERVICES, `${asked} GetStatusInfo requests`);
    if (error.reason === 'not-connected') assert.equal(asked, MAX_CHECKED_SERVICES);
  });

  it('1,500 disconnected services within the element limit: exactly MAX_CHECKED_SERVICES asked, then not-connected', () => {
    const services = Array.from(
      { length: 1500 },
      (_, i) =>
        `<service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><serviceId>x${i}</serviceId><controlURL>/down${i}</controlURL></service>`,
    ).join('');
    const body = `<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType><deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType><serviceList>${services}</serviceList></device></deviceList></device></deviceList></device></root>`;
    descriptions.set(GATEWAY, { body, delayMs: 1 });
    const found = discover({ descriptionUrl: `http://${GATEWAY}:5000/rootDesc.xml`, maxBodyBytes: 2 * 1024 * 1024 });
    clock.advance(1000);
    const error = found.error();
    assert.ok(error instanceof ProtocolError, String(error));
    assert.equal(error.reason, 'not-connected');
    assert.equal(net.httpLog.filter((r) => r.request.method === 'POST').length, MAX_CHECKED_SERVICES);
  });
});
