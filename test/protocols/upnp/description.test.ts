import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../../../src/errors.js';
import {
  chooseWanConnectionService,
  parseDescription,
  wanConnectionServices,
  type DeviceDescription,
  type WanConnectionService,
} from '../../../src/protocols/upnp/description.js';
import { fixture } from './fixtures.js';

const parse = (name: string, url: string, rewriteOrigins?: string[]): DeviceDescription => {
  const description = parseDescription(fixture(name), url, rewriteOrigins ? { rewriteOrigins } : {});
  if (description instanceof ProtocolError) assert.fail(description.message);
  return description;
};
const choose = (description: DeviceDescription): WanConnectionService => {
  const service = chooseWanConnectionService(description);
  if (service instanceof ProtocolError) assert.fail(service.message);
  return service;
};

describe('parseDescription', () => {
  it('walks the miniupnpd IGDv2 tree and picks WANIPConnection:2 at /ctl/IPConn', () => {
    const description = parse('igd2-miniupnpd.xml', 'http://192.168.77.1:5000/rootDesc.xml');
    assert.equal(description.igdVersion, 2);
    assert.equal(description.device.friendlyName, 'OpenWRT router');
    assert.equal(description.device.devices[0]?.devices[0]?.deviceType, 'urn:schemas-upnp-org:device:WANConnectionDevice:2');
    assert.deepEqual(
      description.device.devices[0]?.devices[0]?.services.map((s) => s.serviceType),
      ['urn:schemas-upnp-org:service:WANIPConnection:2', 'urn:schemas-upnp-org:service:WANIPv6FirewallControl:1'],
    );
    const service = choose(description);
    assert.equal(service.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:2');
    assert.equal(service.controlUrl, 'http://192.168.77.1:5000/ctl/IPConn');
    assert.equal(service.version, 2);
    assert.equal(service.kind, 'ip');
    assert.equal(service.deviceUdn, 'uuid:4d696e69-5550-6e50-4944-000000000002');
  });

  it('reads an IGDv1 with absolute URLs and decodes entities in names', () => {
    const description = parse('igd1.xml', 'http://192.168.1.1:49152/gatedesc.xml');
    assert.equal(description.igdVersion, 1);
    assert.equal(description.device.friendlyName, 'Home & Office Router');
    const service = choose(description);
    assert.equal(service.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:1');
    assert.equal(service.controlUrl, 'http://192.168.1.1:49152/upnp/control/WANIPConn1');
    assert.equal(service.version, 1);
  });

  it('accepts a WANPPPConnection-only gateway', () => {
    const service = choose(parse('igd1-ppp.xml', 'http://192.168.0.1:80/desc.xml'));
    assert.equal(service.kind, 'ppp');
    assert.equal(service.controlUrl, 'http://192.168.0.1/upnp/control/WANPPPConn1');
  });

  it('prefers WANIPConnection:2, then :1, then WANPPPConnection:1 whatever the document order', () => {
    const services = wanConnectionServices(parse('igd1-ppp-and-ip.xml', 'http://10.0.0.1:5000/d.xml'));
    assert.ok(!(services instanceof ProtocolError));
    assert.deepEqual(services.map((s) => s.controlUrl), ['http://10.0.0.1:5000/ctl/IP1', 'http://10.0.0.1:5000/ctl/PPP']);
    const mixed = fixture('igd2-miniupnpd.xml').replace(
      '<serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>',
      '<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>',
    );
    const description = parseDescription(mixed, 'http://192.168.77.1:5000/rootDesc.xml');
    assert.ok(!(description instanceof ProtocolError));
    assert.deepEqual(
      (wanConnectionServices(description) as WanConnectionService[]).map((s) => s.serviceType),
      ['urn:schemas-upnp-org:service:WANIPConnection:2', 'urn:schemas-upnp-org:service:WANIPConnection:1'],
    );
  });

  it('resolves relative URLs against URLBase', () => {
    const description = parse('igd1-urlbase.xml', 'http://10.0.0.138:2869/upnphost/udhisapi.dll?content=uuid:root');
    assert.equal(description.baseUrl, 'http://10.0.0.138:2869/upnphost/');
    assert.equal(choose(description).controlUrl, 'http://10.0.0.138:2869/upnphost/udhisapi.dll?control=uuid:cc+urn:upnp-org:serviceId:WANIPConn1');
  });

  it('resolves relative URLs against the description URL without URLBase', () => {
    const description = parse('igd1-ppp-and-ip.xml', 'http://10.0.0.1:5000/sub/d.xml');
    assert.equal(description.baseUrl, 'http://10.0.0.1:5000/sub/d.xml');
    assert.equal(choose(description).controlUrl, 'http://10.0.0.1:5000/ctl/IP1');
  });

  it('rejects a control URL on another host or port', () => {
    const result = chooseWanConnectionService(parse('igd-foreign-control.xml', 'http://192.168.1.1:5000/d.xml'));
    assert.ok(result instanceof ProtocolError);
    assert.equal(result.reason, 'foreign-control-url');
    // Same host, other port: also foreign.
    const otherPort = chooseWanConnectionService(parse('igd1.xml', 'http://192.168.1.1:49153/gatedesc.xml'));
    assert.ok(otherPort instanceof ProtocolError);
    assert.equal(otherPort.reason, 'foreign-control-url');
    // A URLBase naming another host makes every relative URL foreign.
    const base = chooseWanConnectionService(parse('igd1-urlbase.xml', 'http://10.0.0.1:2869/d.xml'));
    assert.ok(base instanceof ProtocolError);
    assert.equal(base.reason, 'foreign-control-url');
  });

  it('rewrites URLs on an origin the LOCATION named before it was rewritten to the responder', () => {
    const description = parse('igd1-urlbase.xml', 'http://10.0.0.1:2869/d.xml', ['http://10.0.0.138:2869']);
    assert.equal(choose(description).controlUrl, 'http://10.0.0.1:2869/upnphost/udhisapi.dll?control=uuid:cc+urn:upnp-org:serviceId:WANIPConn1');
  });

  it('returns typed errors for non-descriptions', () => {
    const reason = (xml: string, url = 'http://1.2.3.4/d.xml'): string => {
      const result = parseDescription(xml, url);
      assert.ok(result instanceof ProtocolError);
      return result.reason;
    };
    assert.equal(reason('<html/>'), 'not-a-description');
    assert.equal(reason('<root/>'), 'not-a-description');
    assert.equal(reason(fixture('billion-laughs.xml')), 'doctype');
    assert.equal(reason('<root><device></root>'), 'malformed');
    assert.equal(reason(fixture('igd1.xml'), 'https://1.2.3.4/d.xml'), 'bad-url');
    const bare = parseDescription('<root><device><deviceType>x</deviceType></device></root>', 'http://a/');
    assert.ok(!(bare instanceof ProtocolError));
    const none = chooseWanConnectionService(bare);
    assert.ok(none instanceof ProtocolError);
    assert.equal(none.reason, 'no-wan-service');
  });
});
