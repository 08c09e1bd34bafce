import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GatewayError, ProtocolError } from '../../../src/errors.js';
import {
  decodeSoapRequest,
  decodeSoapResponse,
  encodeAddAnyPortMapping,
  encodeAddPortMapping,
  encodeDeletePortMapping,
  encodeGetExternalIPAddress,
  encodeGetGenericPortMappingEntry,
  encodeGetSpecificPortMappingEntry,
  encodeGetStatusInfo,
  encodeSoapFault,
  encodeSoapResponse,
  faultToError,
  readExternalIp,
  readPortMappingEntry,
  readReservedPort,
  readStatusInfo,
  upnpErrorName,
  type SoapFault,
  type SoapResponse,
} from '../../../src/protocols/upnp/soap.js';
import { fixture } from './fixtures.js';

const IP2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';
const args = { externalPort: 8080, protocol: 'udp' as const, internalPort: 8081, internalClient: '192.168.1.10', description: 'a <b> & "c"', leaseDurationSeconds: 60 };

const response = (body: string, action: string, status = 200): SoapResponse => {
  const decoded = decodeSoapResponse(body, action, { status });
  assert.ok(!(decoded instanceof ProtocolError) && decoded.kind === 'response', 'expected a response');
  return decoded;
};
const fault = (body: string, action: string, status: number): SoapFault => {
  const decoded = decodeSoapResponse(body, action, { status });
  assert.ok(!(decoded instanceof ProtocolError) && decoded.kind === 'fault', 'expected a fault');
  return decoded;
};

describe('SOAP encoding', () => {
  it('sets the quoted SOAPAction header and the XML content type', () => {
    const request = encodeAddPortMapping(IP2, args);
    assert.deepEqual(request.headers, { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: `"${IP2}#AddPortMapping"` });
    assert.equal(request.action, 'AddPortMapping');
    assert.equal(encodeAddAnyPortMapping(IP2, args).headers.SOAPAction, `"${IP2}#AddAnyPortMapping"`);
  });

  it('writes the arguments in order, protocol in upper case, values XML-escaped', () => {
    const body = encodeAddPortMapping(IP2, args).body;
    assert.match(body, /^<\?xml version="1.0" encoding="utf-8"\?>/);
    assert.match(body, /<s:Envelope xmlns:s="http:\/\/schemas.xmlsoap.org\/soap\/envelope\/" s:encodingStyle="http:\/\/schemas.xmlsoap.org\/soap\/encoding\/">/);
    assert.ok(
      body.includes(
        `<u:AddPortMapping xmlns:u="${IP2}"><NewRemoteHost></NewRemoteHost><NewExternalPort>8080</NewExternalPort><NewProtocol>UDP</NewProtocol>` +
          '<NewInternalPort>8081</NewInternalPort><NewInternalClient>192.168.1.10</NewInternalClient><NewEnabled>1</NewEnabled>' +
          '<NewPortMappingDescription>a &lt;b&gt; &amp; &quot;c&quot;</NewPortMappingDescription><NewLeaseDuration>60</NewLeaseDuration></u:AddPortMapping>',
      ),
    );
    // The server side reads back exactly what was sent.
    const decoded = decodeSoapRequest(body, `"${IP2}#AddPortMapping"`);
    assert.ok(!(decoded instanceof ProtocolError));
    assert.equal(decoded.serviceType, IP2);
    assert.equal(decoded.args.get('NewPortMappingDescription'), 'a <b> & "c"');
    assert.equal(decoded.args.get('NewProtocol'), 'UDP');
  });

  it('encodes the other actions', () => {
    assert.match(encodeDeletePortMapping(IP2, { externalPort: 1, protocol: 'tcp' }).body, /<NewRemoteHost><\/NewRemoteHost><NewExternalPort>1<\/NewExternalPort><NewProtocol>TCP<\/NewProtocol><\/u:DeletePortMapping>/);
    assert.match(encodeGetSpecificPortMappingEntry(IP2, { externalPort: 2, protocol: 'udp' }).body, /<u:GetSpecificPortMappingEntry [^>]+><NewRemoteHost><\/NewRemoteHost><NewExternalPort>2</);
    assert.match(encodeGetGenericPortMappingEntry(IP2, 7).body, /<NewPortMappingIndex>7<\/NewPortMappingIndex>/);
    assert.match(encodeGetExternalIPAddress(IP2).body, /<u:GetExternalIPAddress xmlns:u="[^"]+"><\/u:GetExternalIPAddress>/);
    assert.match(encodeGetStatusInfo(IP2).body, /<u:GetStatusInfo /);
  });

  it('rejects a request whose SOAPAction does not match the body', () => {
    const result = decodeSoapRequest(encodeGetStatusInfo(IP2).body, `"${IP2}#AddPortMapping"`);
    assert.ok(result instanceof ProtocolError);
    assert.equal(result.reason, 'soapaction');
  });
});

describe('SOAP decoding', () => {
  it('reads responses from the fixtures', () => {
    assert.equal(readExternalIp(response(fixture('soap-external-ip.xml'), 'GetExternalIPAddress').values), '203.0.113.7');
    assert.equal(readReservedPort(response(fixture('soap-add-any.xml'), 'AddAnyPortMapping').values), 10001);
    assert.deepEqual(readStatusInfo(response(fixture('soap-status-info.xml'), 'GetStatusInfo').values), {
      connectionStatus: 'Connected',
      lastConnectionError: 'ERROR_NONE',
      uptimeSeconds: 4242,
    });
    assert.deepEqual(readPortMappingEntry(response(fixture('soap-generic-entry.xml'), 'GetGenericPortMappingEntry').values), {
      protocol: 'udp',
      externalPort: 30303,
      internalClient: '192.168.77.10',
      internalPort: 30303,
      description: 'geth <discovery>',
      lifetimeSeconds: 3580,
      enabled: true,
    });
  });

  it('decodes a UPnPError fault under HTTP 500 and under HTTP 200', () => {
    const under500 = fault(fixture('soap-fault-718.xml'), 'AddPortMapping', 500);
    assert.deepEqual(under500, { kind: 'fault', errorCode: 718, errorDescription: 'ConflictInMappingEntry', faultString: 'UPnPError' });
    assert.equal(fault(fixture('soap-fault-725.xml'), 'AddPortMapping', 200).errorCode, 725);
  });

  it('turns a fault into a typed GatewayError with the code, name and control URL', () => {
    const error = faultToError(fault(encodeSoapFault(606, 'Action not authorized'), 'AddPortMapping', 500), 'http://r/ctl/IPConn');
    assert.ok(error instanceof GatewayError);
    assert.equal(error.protocol, 'upnp');
    assert.equal(error.resultCode, 606);
    assert.equal(error.resultName, 'ActionNotAuthorized');
    assert.equal(error.gateway, 'http://r/ctl/IPConn');
    assert.match(error.message, /606 ActionNotAuthorized \(Action not authorized\)/);
  });

  it('names the IGD error codes', () => {
    const names: Record<number, string> = {
      402: 'InvalidArgs', 501: 'ActionFailed', 606: 'ActionNotAuthorized', 713: 'SpecifiedArrayIndexInvalid', 714: 'NoSuchEntryInArray',
      715: 'WildCardNotPermittedInSrcIP', 716: 'WildCardNotPermittedInExtPort', 718: 'ConflictInMappingEntry', 724: 'SamePortValuesRequired',
      725: 'OnlyPermanentLeasesSupported', 726: 'RemoteHostOnlySupportsWildcard', 727: 'ExternalPortOnlySupportsWildcard',
      728: 'NoPortMapsAvailable', 729: 'ConflictWithOtherMechanisms',
    };
    for (const [code, name] of Object.entries(names)) assert.equal(upnpErrorName(Number(code)), name);
    assert.equal(upnpErrorName(999), 'UPnPError999');
  });

  it('returns typed errors for empty, non-SOAP, mismatched and code-less answers', () => {
    const reason = (body: string, status = 200): string => {
      const result = decodeSoapResponse(body, 'GetExternalIPAddress', { status, gateway: 'http://r/ctl' });
      assert.ok(result instanceof ProtocolError);
      assert.equal(result.gateway, 'http://r/ctl');
      return result.reason;
    };
    assert.equal(reason(''), 'empty');
    assert.equal(reason('  \r\n', 500), 'empty');
    assert.equal(reason('<html><body>500</body></html>', 500), 'not-soap');
    assert.equal(reason(encodeSoapResponse(IP2, 'GetStatusInfo', [])), 'unexpected-response');
    assert.equal(reason(fixture('soap-fault-718.xml').replace(/<errorCode>718<\/errorCode>/, '')), 'bad-fault');
    assert.equal(reason('<s:Envelope><s:Body><u:GetExternalIPAddressResponse>'), 'malformed');
    assert.equal(reason(fixture('billion-laughs.xml')), 'doctype');
  });

  it('validates values read from responses', () => {
    assert.ok(readExternalIp(new Map([['NewExternalIPAddress', '']])) instanceof ProtocolError);
    assert.ok(readExternalIp(new Map([['NewExternalIPAddress', '999.1.1.1']])) instanceof ProtocolError);
    assert.ok(readReservedPort(new Map([['NewReservedPort', '0']])) instanceof ProtocolError);
    assert.ok(readPortMappingEntry(new Map([['NewProtocol', 'GRE']])) instanceof ProtocolError);
    const specific = readPortMappingEntry(new Map([['NewInternalPort', '22'], ['NewInternalClient', '10.0.0.2'], ['NewEnabled', '0']]), { externalPort: 2222, protocol: 'tcp' });
    assert.ok(!(specific instanceof ProtocolError));
    assert.equal(specific.externalPort, 2222);
    assert.equal(specific.enabled, false);
  });
});
