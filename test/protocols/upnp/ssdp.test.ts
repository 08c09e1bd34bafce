import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '../../../src/errors.js';
import { decodeSsdpResponse, encodeMSearch, IGD_SEARCH_TARGETS, usnDevice } from '../../../src/protocols/upnp/ssdp.js';
import { fixture } from './fixtures.js';

describe('encodeMSearch', () => {
  it('writes the request line, HOST, MAN, MX and ST with CRLF', () => {
    const text = encodeMSearch({ searchTarget: 'urn:schemas-upnp-org:device:InternetGatewayDevice:2', mxSeconds: 2 }).toString('latin1');
    assert.equal(
      text,
      'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 2\r\n' +
        'ST: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\n\r\n',
    );
  });

  it('clamps MX to 1-5 and strips line breaks from ST', () => {
    const text = encodeMSearch({ searchTarget: 'a\r\nX-Evil: 1', mxSeconds: 60 }).toString('latin1');
    assert.match(text, /\r\nMX: 5\r\n/);
    assert.match(text, /\r\nST: aX-Evil: 1\r\n\r\n$/);
    assert.match(encodeMSearch({ searchTarget: 'ssdp:all', mxSeconds: 0 }).toString('latin1'), /\r\nMX: 1\r\n/);
  });

  it('searches IGDv2 first', () => {
    assert.equal(IGD_SEARCH_TARGETS[0], 'urn:schemas-upnp-org:device:InternetGatewayDevice:2');
    assert.equal(IGD_SEARCH_TARGETS.length, 5);
  });
});

describe('decodeSsdpResponse', () => {
  it('decodes a miniupnpd answer', () => {
    const answer = decodeSsdpResponse(Buffer.from(fixture('ssdp-miniupnpd.txt'), 'latin1'));
    assert.ok(!(answer instanceof ProtocolError));
    assert.equal(answer.location, 'http://192.168.77.1:5000/rootDesc.xml');
    assert.equal(answer.st, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2');
    assert.equal(answer.usn, 'uuid:4d696e69-5550-6e50-4944-000000000000::urn:schemas-upnp-org:device:InternetGatewayDevice:2');
    assert.equal(answer.server, 'OpenWRT/22.03 UPnP/1.1 MiniUPnPd/2.3.1');
    assert.equal(answer.headers.get('bootid.upnp.org'), '1700000000');
    assert.equal(usnDevice(answer.usn), 'uuid:4d696e69-5550-6e50-4944-000000000000');
  });

  it('treats header names case-insensitively and tolerates no space after the colon', () => {
    const answer = decodeSsdpResponse(fixture('ssdp-lowercase.txt'));
    assert.ok(!(answer instanceof ProtocolError));
    assert.equal(answer.location, 'http://192.168.1.1:49152/gatedesc.xml');
    assert.equal(answer.st, 'urn:schemas-upnp-org:service:WANIPConnection:1');
    assert.equal(answer.server, undefined);
  });

  it('returns typed errors for other messages', () => {
    const reason = (input: string): string => {
      const result = decodeSsdpResponse(input, '192.168.1.1');
      assert.ok(result instanceof ProtocolError);
      assert.equal(result.protocol, 'ssdp');
      assert.equal(result.gateway, '192.168.1.1');
      return result.reason;
    };
    assert.equal(reason(fixture('ssdp-notify.txt')), 'malformed');
    assert.equal(reason('HTTP/1.1 404 Not Found\r\n\r\n'), 'status');
    assert.equal(reason('HTTP/1.1 200 OK\r\nST: x\r\n\r\n'), 'no-location');
    assert.equal(reason('HTTP/1.1 200 OK\r\nLOCATION: http://a/\r\n\r\n'), 'no-st');
    assert.equal(reason('HTTP/1.1 200 OK\r\nno colon here\r\n\r\n'), 'malformed');
    assert.equal(reason(''), 'malformed');
    assert.equal(reason(`HTTP/1.1 200 OK\r\n${'X: y\r\n'.repeat(2000)}\r\n`), 'too-large');
  });
});
