/** The WANIPv6FirewallControl:1 SOAP codec against fixtures written from the service template (and miniupnpd's answers). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError, ProtocolError } from '../../../src/errors.js';
import { firewallControlService, parseDescription, WAN_IPV6_FIREWALL_CONTROL_1 } from '../../../src/protocols/upnp/description.js';
import {
  encodeAddPinhole,
  encodeCheckPinholeWorking,
  encodeDeletePinhole,
  encodeFirewallFault,
  encodeGetFirewallStatus,
  encodeGetOutboundPinholeTimeout,
  encodeGetPinholePackets,
  encodeUpdatePinhole,
  FIREWALL_ACTIONS,
  FIREWALL_ERROR_NAMES,
  firewallErrorName,
  firewallFaultToError,
  pinholeLeaseSeconds,
  pinholeProtocolNumber,
  readAddPinholeRequest,
  readFirewallStatus,
  readIsWorking,
  readOutboundPinholeTimeout,
  readPinholeIdRequest,
  readPinholePackets,
  readUniqueId,
  readUpnpBoolean,
  type FirewallAction,
} from '../../../src/protocols/upnp/firewall-soap.js';
import { decodeSoapRequest, decodeSoapResponse, type SoapFault, type SoapRequest } from '../../../src/protocols/upnp/soap.js';
import { fixture } from './fixtures.js';

const NS = WAN_IPV6_FIREWALL_CONTROL_1;
const CONTROL = 'http://[fd77::1]:5000/ctl/IP6FCtl';
const pinhole = (name: string): string => fixture(`pinhole/${name}`);

const values = (body: string, action: FirewallAction): ReadonlyMap<string, string> => {
  const decoded = decodeSoapResponse(body, action, { status: 200 });
  assert.ok(!(decoded instanceof ProtocolError) && decoded.kind === 'response', `expected a ${action} response`);
  return decoded.values;
};
const faultOf = (body: string, action: FirewallAction): SoapFault => {
  const decoded = decodeSoapResponse(body, action, { status: 500 });
  assert.ok(!(decoded instanceof ProtocolError) && decoded.kind === 'fault', 'expected a fault');
  return decoded;
};

describe('pinhole requests', () => {
  const requests: ReadonlyArray<readonly [string, SoapRequest]> = [
    ['get-firewall-status', encodeGetFirewallStatus()],
    ['get-outbound-pinhole-timeout', encodeGetOutboundPinholeTimeout({ internalClient: '2001:db8::10', internalPort: 8080, protocol: 'udp' })],
    ['add-pinhole', encodeAddPinhole({ internalClient: '2001:db8::10', internalPort: 8080, protocol: 'tcp', leaseTimeSeconds: 3600 })],
    ['update-pinhole', encodeUpdatePinhole(7, 3600)],
    ['delete-pinhole', encodeDeletePinhole(7)],
    ['get-pinhole-packets', encodeGetPinholePackets(7)],
    ['check-pinhole-working', encodeCheckPinholeWorking(7)],
  ];

  for (const [name, request] of requests) {
    it(`${name}: the body of the fixture, the quoted SOAPAction, read back by the server side`, () => {
      assert.equal(request.body, pinhole(`${name}-request.xml`));
      assert.equal(request.serviceType, NS);
      assert.deepEqual(request.headers, { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: `"${NS}#${request.action}"` });
      const decoded = decodeSoapRequest(request.body, request.headers.SOAPAction);
      assert.ok(!(decoded instanceof ProtocolError));
      assert.equal(decoded.serviceType, NS);
      assert.equal(decoded.action, request.action);
    });
  }

  it('covers every action of the service template, in its order', () => {
    assert.deepEqual(
      requests.map(([, r]) => r.action),
      FIREWALL_ACTIONS,
    );
  });

  it('a remote host and port narrow the filter; values are XML-escaped', () => {
    const body = encodeAddPinhole({ remoteHost: '2001:db8:1::<5>', remotePort: 443, internalClient: 'fd77::10', internalPort: 18080, protocol: 'udp', leaseTimeSeconds: 60 }).body;
    assert.ok(body.includes('<RemoteHost>2001:db8:1::&lt;5&gt;</RemoteHost><RemotePort>443</RemotePort><InternalClient>fd77::10</InternalClient><InternalPort>18080</InternalPort><Protocol>17</Protocol><LeaseTime>60</LeaseTime>'));
  });

  it('another service type (a vendor variant) is carried through', () => {
    const request = encodeDeletePinhole(1, 'urn:example:service:WANIPv6FirewallControl:1');
    assert.equal(request.headers.SOAPAction, '"urn:example:service:WANIPv6FirewallControl:1#DeletePinhole"');
  });
});

describe('pinhole responses', () => {
  it('GetFirewallStatus: both booleans', () => {
    assert.deepEqual(readFirewallStatus(values(pinhole('get-firewall-status-response.xml'), 'GetFirewallStatus')), { firewallEnabled: true, inboundPinholeAllowed: true });
    assert.deepEqual(readFirewallStatus(new Map([['FirewallEnabled', 'true'], ['InboundPinholeAllowed', 'no']])), { firewallEnabled: true, inboundPinholeAllowed: false });
    const bad = readFirewallStatus(new Map([['FirewallEnabled', '1']]), CONTROL);
    assert.ok(bad instanceof ProtocolError && bad.reason === 'bad-firewall-status' && bad.gateway === CONTROL);
    assert.ok(readFirewallStatus(new Map([['FirewallEnabled', '2'], ['InboundPinholeAllowed', '1']])) instanceof ProtocolError);
  });

  it('GetOutboundPinholeTimeout: seconds', () => {
    assert.equal(readOutboundPinholeTimeout(values(pinhole('get-outbound-pinhole-timeout-response.xml'), 'GetOutboundPinholeTimeout')), 120);
    const bad = readOutboundPinholeTimeout(new Map([['OutboundPinholeTimeout', '-1']]));
    assert.ok(bad instanceof ProtocolError && bad.reason === 'bad-timeout');
  });

  it('AddPinhole: the UniqueID, a ui2', () => {
    assert.equal(readUniqueId(values(pinhole('add-pinhole-response.xml'), 'AddPinhole')), 7);
    assert.equal(readUniqueId(new Map([['UniqueID', '65535']])), 65535);
    for (const text of [undefined, '', '65536', 'x', '-1', '1e3', '99999999999']) {
      const bad = readUniqueId(new Map(text === undefined ? [] : [['UniqueID', text]]), CONTROL);
      assert.ok(bad instanceof ProtocolError && bad.reason === 'unique-id', String(text));
    }
  });

  it('UpdatePinhole and DeletePinhole: empty answers', () => {
    assert.equal(values(pinhole('update-pinhole-response.xml'), 'UpdatePinhole').size, 0);
    assert.equal(values(pinhole('delete-pinhole-response.xml'), 'DeletePinhole').size, 0);
  });

  it('GetPinholePackets and CheckPinholeWorking', () => {
    assert.equal(readPinholePackets(values(pinhole('get-pinhole-packets-response.xml'), 'GetPinholePackets')), 0);
    assert.equal(readIsWorking(values(pinhole('check-pinhole-working-response.xml'), 'CheckPinholeWorking')), true);
    assert.ok(readPinholePackets(new Map()) instanceof ProtocolError);
    assert.ok(readIsWorking(new Map([['IsWorking', 'perhaps']])) instanceof ProtocolError);
  });

  it('an answer to another action is not taken for this one', () => {
    const decoded = decodeSoapResponse(pinhole('add-pinhole-response.xml'), 'UpdatePinhole', { status: 200, gateway: CONTROL });
    assert.ok(decoded instanceof ProtocolError && decoded.reason === 'unexpected-response');
  });

  it('UPnP booleans', () => {
    for (const t of ['1', 'true', 'TRUE', 'yes', ' 1 ']) assert.equal(readUpnpBoolean(t), true, t);
    for (const t of ['0', 'false', 'No']) assert.equal(readUpnpBoolean(t), false, t);
    for (const t of [undefined, '', '2', 'on']) assert.equal(readUpnpBoolean(t), undefined, String(t));
  });
});

describe('pinhole faults', () => {
  const expected: ReadonlyArray<readonly [number, string]> = [
    [606, 'ActionNotAuthorized'],
    [701, 'PinholeSpaceExhausted'],
    [702, 'FirewallDisabled'],
    [703, 'InboundPinholeNotAllowed'],
    [704, 'NoSuchEntry'],
    [705, 'ProtocolNotSupported'],
    [706, 'InternalPortWildcardingNotAllowed'],
    [707, 'ProtocolWildcardingNotAllowed'],
    [708, 'WildCardNotPermittedInSrcIP'],
    [709, 'NoPacketSent'],
  ];

  for (const [code, name] of expected) {
    it(`${code} ${name}: a GatewayError with the code, the service's name and the control URL`, () => {
      const fault = faultOf(pinhole(`fault-${code}.xml`), 'AddPinhole');
      assert.equal(fault.errorCode, code);
      const error = firewallFaultToError(fault, CONTROL);
      assert.ok(error instanceof GatewayError);
      assert.equal(error.protocol, 'upnp');
      assert.equal(error.resultCode, code);
      assert.equal(error.resultName, name);
      assert.equal(error.gateway, CONTROL);
      assert.equal(error.code, 'ERR_GATEWAY_REFUSED');
      // The server side writes the same fault.
      assert.equal(faultOf(encodeFirewallFault(code), 'AddPinhole').errorDescription, name);
    });
  }

  it('the table is exactly those codes; others fall back to the general UPnP names', () => {
    assert.deepEqual(Object.keys(FIREWALL_ERROR_NAMES).map(Number), expected.map(([c]) => c));
    assert.equal(firewallErrorName(402), 'InvalidArgs');
    assert.equal(firewallErrorName(501), 'ActionFailed');
    assert.equal(firewallErrorName(799), 'UPnPError799');
  });

  it("miniupnpd's own spelling of a description is kept as the detail", () => {
    const error = firewallFaultToError(faultOf(pinhole('fault-706.xml'), 'AddPinhole'), CONTROL);
    assert.match(error.message, /706 InternalPortWildcardingNotAllowed \(InternalPortWilcardingNotAllowed\)/);
    const plain = firewallFaultToError(faultOf(pinhole('fault-701.xml'), 'AddPinhole'), CONTROL);
    assert.equal(plain.message, `upnp gateway ${CONTROL} refused: 701 PinholeSpaceExhausted`);
  });
});

describe('pinhole helpers', () => {
  it('protocol numbers and leases', () => {
    assert.equal(pinholeProtocolNumber('tcp'), 6);
    assert.equal(pinholeProtocolNumber('udp'), 17);
    assert.equal(pinholeLeaseSeconds(0), 86_400, 'no permanent pinholes');
    assert.equal(pinholeLeaseSeconds(60), 60);
    assert.equal(pinholeLeaseSeconds(604_800), 86_400);
    assert.equal(pinholeLeaseSeconds(0.5), 1);
    assert.equal(pinholeLeaseSeconds(Number.NaN), 86_400);
  });
});

describe('pinhole requests, server side', () => {
  const args = (over: Record<string, string | undefined> = {}): ReadonlyMap<string, string> => {
    const base: Record<string, string | undefined> = { RemoteHost: '', RemotePort: '0', InternalClient: '2001:db8::10', InternalPort: '8080', Protocol: '6', LeaseTime: '60', ...over };
    return new Map(Object.entries(base).filter((e): e is [string, string] => e[1] !== undefined));
  };

  it('reads what the client sends', () => {
    const sent = decodeSoapRequest(pinhole('add-pinhole-request.xml'));
    assert.ok(!(sent instanceof ProtocolError));
    assert.deepEqual(readAddPinholeRequest(sent.args), { remoteHost: '', remotePort: 0, internalClient: '2001:db8::10', internalPort: 8080, protocol: 'tcp', leaseTimeSeconds: 3600 });
    assert.deepEqual(readPinholeIdRequest(new Map([['UniqueID', '7'], ['NewLeaseTime', '3600']]), true), { uniqueId: 7, leaseTimeSeconds: 3600 });
    assert.deepEqual(readPinholeIdRequest(new Map([['UniqueID', '7']]), false), { uniqueId: 7, leaseTimeSeconds: undefined });
  });

  it('refuses as miniupnpd does: 706, 708, 707, 705, 402', () => {
    assert.equal(readAddPinholeRequest(args({ InternalPort: '0' })), 706);
    assert.equal(readAddPinholeRequest(args({ InternalClient: '' })), 708);
    assert.equal(readAddPinholeRequest(args({ InternalClient: '*' })), 708);
    assert.equal(readAddPinholeRequest(args({ Protocol: '65535' })), 707);
    assert.equal(readAddPinholeRequest(args({ Protocol: '1' })), 705);
    assert.equal(readAddPinholeRequest(args({ Protocol: 'TCP' })), 402);
    assert.equal(readAddPinholeRequest(args({ LeaseTime: '0' })), 402);
    assert.equal(readAddPinholeRequest(args({ LeaseTime: '86401' })), 402);
    assert.equal(readAddPinholeRequest(args({ LeaseTime: undefined })), 402);
    assert.equal(readPinholeIdRequest(new Map([['UniqueID', '65536']]), false), 402);
    assert.equal(readPinholeIdRequest(new Map([['UniqueID', '1'], ['NewLeaseTime', '0']]), true), 402);
  });
});

describe('finding the service in a description', () => {
  it("miniupnpd's IGDv2 description: the service in the WANConnectionDevice", () => {
    const description = parseDescription(fixture('igd2-miniupnpd.xml'), 'http://[fd77::1]:5000/rootDesc.xml');
    assert.ok(!(description instanceof ProtocolError));
    const service = firewallControlService(description);
    assert.ok(!(service instanceof ProtocolError));
    assert.equal(service.serviceType, NS);
    assert.equal(service.serviceId, 'urn:upnp-org:serviceId:WANIPv6Firewall1');
    assert.equal(service.controlUrl, 'http://[fd77::1]:5000/ctl/IP6FCtl');
  });

  it('an IGDv1 has none; a control URL on another host is refused', () => {
    const v1 = parseDescription(fixture('igd1.xml'), 'http://192.168.1.1:5000/rootDesc.xml');
    assert.ok(!(v1 instanceof ProtocolError));
    const none = firewallControlService(v1);
    assert.ok(none instanceof ProtocolError && none.reason === 'no-firewall-service');
    const foreign = parseDescription(
      fixture('igd2-miniupnpd.xml').replace('<controlURL>/ctl/IP6FCtl</controlURL>', '<controlURL>http://192.0.2.66/ctl/IP6FCtl</controlURL>'),
      'http://192.168.1.1:5000/rootDesc.xml',
    );
    assert.ok(!(foreign instanceof ProtocolError));
    const refused = firewallControlService(foreign);
    assert.ok(refused instanceof ProtocolError && refused.reason === 'foreign-control-url');
  });
});
