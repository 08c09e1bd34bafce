import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors.js';
import {
  decodePcpAnnouncement,
  decodePcpRequest,
  decodePcpResponse,
  encodePcpErrorResponse,
  encodePcpRequest,
  encodePcpResponse,
  hexToNonce,
  ipToPcpBytes,
  nonceToHex,
  pcpBytesToIp,
  pcpEpochLost,
  pcpProtocolName,
  PcpResultCode,
  pcpResultName,
  type PcpMapRequest,
  type PcpMapResponse,
} from '../../../src/protocols/pcp/codec.js';
import { pcpFixture } from '../../fixtures/pcp/fixture.js';

const nonce = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
const reason = (value: unknown): string => {
  assert.ok(value instanceof ProtocolError, `expected a ProtocolError, got ${JSON.stringify(value)}`);
  assert.equal(value.protocol, 'pcp');
  return value.reason;
};
const with_ = (bytes: Uint8Array, at: number, value: number): Uint8Array => {
  const copy = bytes.slice();
  copy[at] = value;
  return copy;
};

const mapRequest: PcpMapRequest = {
  op: 'map',
  lifetimeSeconds: 3600,
  clientIp: '192.168.1.10',
  nonce,
  protocol: 6,
  internalPort: 8080,
  suggestedExternalPort: 8080,
  suggestedExternalIp: '0.0.0.0',
  options: [],
};
const mapResponse: PcpMapResponse = {
  op: 'map',
  opcode: 1,
  resultCode: 0,
  lifetimeSeconds: 3600,
  epochSeconds: 1200,
  nonce,
  protocol: 6,
  internalPort: 8080,
  externalPort: 8081,
  externalIp: '203.0.113.1',
  options: [],
};

describe('PCP codec: fixtures both directions', () => {
  it('MAP request', () => {
    assert.deepEqual(encodePcpRequest(mapRequest), pcpFixture('map-request'));
    assert.deepEqual(decodePcpRequest(pcpFixture('map-request')), mapRequest);
  });

  it('MAP request with an option and an IPv6 client', () => {
    const request: PcpMapRequest = {
      op: 'map',
      lifetimeSeconds: 120,
      clientIp: '2001:db8::1',
      nonce: Uint8Array.from({ length: 12 }, (_, i) => 0xa1 + i),
      protocol: 17,
      internalPort: 30305,
      suggestedExternalPort: 30305,
      suggestedExternalIp: '203.0.113.1',
      options: [{ code: 2, data: new Uint8Array(0) }],
    };
    assert.deepEqual(encodePcpRequest(request), pcpFixture('map-request-prefer-failure'));
    assert.deepEqual(decodePcpRequest(pcpFixture('map-request-prefer-failure')), request);
  });

  it('MAP response', () => {
    assert.deepEqual(encodePcpResponse(mapResponse), pcpFixture('map-response'));
    assert.deepEqual(decodePcpResponse(pcpFixture('map-response')), mapResponse);
  });

  it('MAP error response copies the request', () => {
    const bytes = encodePcpErrorResponse(pcpFixture('map-request'), { resultCode: 2, lifetimeSeconds: 30, epochSeconds: 1200 });
    assert.deepEqual(bytes, pcpFixture('map-error-response'));
    const decoded = decodePcpResponse(bytes);
    assert.ok(!(decoded instanceof ProtocolError) && decoded.op === 'map', 'decodes as MAP');
    assert.equal(decoded.resultCode, PcpResultCode.NOT_AUTHORIZED);
    assert.equal(decoded.lifetimeSeconds, 30);
    assert.deepEqual(decoded.nonce, nonce);
  });

  it('ANNOUNCE request and response', () => {
    const request = { op: 'announce' as const, lifetimeSeconds: 0, clientIp: '127.0.0.1', options: [] };
    assert.deepEqual(encodePcpRequest(request), pcpFixture('announce-request'));
    assert.deepEqual(decodePcpRequest(pcpFixture('announce-request')), request);
    const response = { op: 'announce' as const, opcode: 0, resultCode: 0, lifetimeSeconds: 0, epochSeconds: 42, options: [] };
    assert.deepEqual(encodePcpResponse(response), pcpFixture('announce-response'));
    assert.deepEqual(decodePcpResponse(pcpFixture('announce-response')), response);
  });

  it("a PCP-only server's bare UNSUPP_VERSION header", () => {
    const header = { op: 'header' as const, opcode: 2, resultCode: 1, lifetimeSeconds: 30, epochSeconds: 42 };
    assert.deepEqual(encodePcpResponse(header), pcpFixture('unsupp-version-header'));
    assert.deepEqual(decodePcpResponse(pcpFixture('unsupp-version-header')), header);
  });

  it("a NAT-PMP-only server's 8-byte version-0 UNSUPPORTED_VERSION reply", () => {
    const reply = { op: 'pmp-unsupported-version' as const, opcode: 128, resultCode: 1, epochSeconds: 42 };
    assert.deepEqual(decodePcpResponse(pcpFixture('pmp-unsupported-version')), reply);
    assert.deepEqual(encodePcpResponse(reply), pcpFixture('pmp-unsupported-version'));
  });
});

describe('PCP codec: IPv6 fields (RFC 6887 §7.1, §11.1)', () => {
  const nonce6 = Uint8Array.from({ length: 12 }, (_, i) => 0xf1 + i);
  const request6: PcpMapRequest = {
    op: 'map',
    lifetimeSeconds: 600,
    clientIp: '2001:db8::10',
    nonce: nonce6,
    protocol: 6,
    internalPort: 18080,
    suggestedExternalPort: 18080,
    suggestedExternalIp: '::',
    options: [],
  };

  it('MAP request: a native IPv6 client address and :: ("no preference") as the suggested external address', () => {
    assert.deepEqual(encodePcpRequest(request6), pcpFixture('map-request-ipv6'));
    assert.deepEqual(decodePcpRequest(pcpFixture('map-request-ipv6')), request6);
  });

  it('MAP response: the assigned external address is IPv6 text, not IPv4-mapped', () => {
    const response: PcpMapResponse = { op: 'map', opcode: 1, resultCode: 0, lifetimeSeconds: 600, epochSeconds: 42, nonce: nonce6, protocol: 6, internalPort: 18080, externalPort: 18080, externalIp: '2001:db8::10', options: [] };
    assert.deepEqual(encodePcpResponse(response), pcpFixture('map-response-ipv6'));
    assert.deepEqual(decodePcpResponse(pcpFixture('map-response-ipv6')), response);
  });

  it('ANNOUNCE request from a unique-local address', () => {
    const announce = { op: 'announce' as const, lifetimeSeconds: 0, clientIp: 'fd77::10', options: [] };
    assert.deepEqual(encodePcpRequest(announce), pcpFixture('announce-request-ipv6'));
    assert.deepEqual(decodePcpRequest(pcpFixture('announce-request-ipv6')), announce);
  });

  it(':: and ::ffff:0.0.0.0 are different "no preference" values (IPv6 and IPv4), byte for byte', () => {
    assert.deepEqual(ipToPcpBytes('::'), new Uint8Array(16));
    assert.deepEqual(ipToPcpBytes('0.0.0.0'), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0));
    assert.equal(pcpBytesToIp(new Uint8Array(16)), '::');
    assert.equal(pcpBytesToIp(ipToPcpBytes('0.0.0.0')), '0.0.0.0');
  });

  it('a zoned link-local client address is sent without its zone (the wire has no room for it)', () => {
    const bytes = encodePcpRequest({ ...request6, clientIp: 'fe80::1c2d:3eff:fe4f:5a6b%eth0' });
    assert.equal(pcpBytesToIp(bytes.subarray(8, 24)), 'fe80::1c2d:3eff:fe4f:5a6b');
  });
});

describe('PCP codec: round trips', () => {
  const port = fc.integer({ min: 0, max: 0xffff });
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
  const ip = fc.oneof(ipv4, fc.ipV6());
  const nonceArb = fc.uint8Array({ minLength: 12, maxLength: 12 });
  const options = fc.array(fc.record({ code: fc.integer({ min: 1, max: 255 }), data: fc.uint8Array({ maxLength: 12 }) }), { maxLength: 3 });

  it('addresses', () => {
    fc.assert(
      fc.property(ip, (text) => {
        const bytes = ipToPcpBytes(text);
        assert.equal(bytes.length, 16);
        assert.deepEqual(ipToPcpBytes(pcpBytesToIp(bytes)), bytes);
      }),
    );
    assert.equal(pcpBytesToIp(ipToPcpBytes('::ffff:10.1.2.3')), '10.1.2.3');
    assert.equal(pcpBytesToIp(ipToPcpBytes('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
    assert.equal(pcpBytesToIp(ipToPcpBytes('::')), '::');
    assert.equal(pcpBytesToIp(ipToPcpBytes('fe80::1:2')), 'fe80::1:2');
    assert.equal(pcpBytesToIp(ipToPcpBytes('fe80::1%eth0')), 'fe80::1');
    for (const bad of ['1:2:3', '1::2::3', 'g::1', '1.2.3.4.5', '1:2:3:4:5:6:7:8:9']) assert.throws(() => ipToPcpBytes(bad), RangeError);
  });

  it('MAP requests', () => {
    const arb = fc.record({
      op: fc.constant('map' as const),
      lifetimeSeconds: u32,
      clientIp: ipv4,
      nonce: nonceArb,
      protocol: fc.nat(255),
      internalPort: port,
      suggestedExternalPort: port,
      suggestedExternalIp: ipv4,
      options,
    });
    fc.assert(
      fc.property(arb, (r) => {
        const decoded = decodePcpRequest(encodePcpRequest(r));
        assert.ok(!(decoded instanceof ProtocolError), String(decoded));
        assert.deepEqual(decoded, { ...r, options: r.options.map((o) => ({ ...o })) });
      }),
    );
  });

  it('MAP responses', () => {
    const arb = fc.record({
      op: fc.constant('map' as const),
      opcode: fc.constant(1),
      resultCode: fc.nat(255),
      lifetimeSeconds: u32,
      epochSeconds: u32,
      nonce: nonceArb,
      protocol: fc.nat(255),
      internalPort: port,
      externalPort: port,
      externalIp: ipv4,
      options,
    });
    fc.assert(
      fc.property(arb, (r) => assert.deepEqual(decodePcpResponse(encodePcpResponse(r)), { ...r, options: r.options.map((o) => ({ ...o })) })),
    );
  });

  it('nonces as hex', () => {
    fc.assert(fc.property(nonceArb, (n) => assert.deepEqual(hexToNonce(nonceToHex(n)), n)));
    assert.equal(hexToNonce('xyz'), undefined);
    assert.equal(hexToNonce('00'), undefined);
  });

  it('decoders never throw on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.constantFrom(0, 2), fc.boolean(), (bytes, version, response) => {
        const message = bytes.length > 0 ? with_(bytes, 0, version) : bytes;
        if (message.length > 1) message[1] = response ? (message[1] ?? 0) | 0x80 : (message[1] ?? 0) & 0x7f;
        decodePcpRequest(message);
        decodePcpResponse(message);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('PCP codec: malformed input is a typed error, never a throw', () => {
  const request = pcpFixture('map-request');
  const response = pcpFixture('map-response');

  it('requests', () => {
    assert.equal(reason(decodePcpRequest(Uint8Array.of(2))), 'short');
    assert.equal(reason(decodePcpRequest(request.subarray(0, 20))), 'short');
    assert.equal(reason(decodePcpRequest(request.subarray(0, 56))), 'short');
    assert.equal(reason(decodePcpRequest(Uint8Array.of(...request, 0, 0))), 'length');
    assert.equal(reason(decodePcpRequest(new Uint8Array(1104).fill(0, 0).map((_, i) => (i === 0 ? 2 : i === 1 ? 1 : 0)))), 'long');
    assert.equal(reason(decodePcpRequest(with_(request, 0, 1))), 'version');
    assert.equal(reason(decodePcpRequest(with_(request, 1, 0x81))), 'response');
    assert.equal(reason(decodePcpRequest(with_(request, 1, 2))), 'opcode');
    assert.equal(reason(decodePcpRequest(with_(request, 3, 1))), 'reserved');
    assert.equal(reason(decodePcpRequest(with_(request, 38, 1))), 'reserved');
    assert.ok(!(decodePcpRequest(with_(request, 38, 1), { reserved: 'ignore' }) instanceof ProtocolError), 'reserved ignored');
    // An option whose length runs past the end.
    assert.equal(reason(decodePcpRequest(Uint8Array.of(...request, 2, 0, 0, 8))), 'option');
    assert.equal(reason(decodePcpRequest(Uint8Array.of(...request, 0, 0, 0, 0))), 'option');
  });

  it('responses', () => {
    assert.equal(reason(decodePcpResponse(Uint8Array.of(2))), 'short');
    assert.equal(reason(decodePcpResponse(response.subarray(0, 20))), 'short');
    assert.equal(reason(decodePcpResponse(response.subarray(0, 56))), 'short');
    assert.equal(reason(decodePcpResponse(with_(response.subarray(0, 24), 3, 0))), 'short'); // successful MAP without its data
    assert.equal(reason(decodePcpResponse(Uint8Array.of(...response, 0))), 'length');
    assert.equal(reason(decodePcpResponse(with_(response, 0, 3))), 'version');
    assert.equal(reason(decodePcpResponse(with_(response, 1, 1))), 'request');
    assert.equal(reason(decodePcpResponse(with_(response, 1, 0x82))), 'opcode');
    assert.equal(reason(decodePcpResponse(with_(response, 2, 1))), 'reserved');
    assert.equal(reason(decodePcpResponse(with_(response, 20, 1))), 'reserved');
    assert.ok(!(decodePcpResponse(with_(response, 20, 1), { reserved: 'ignore' }) instanceof ProtocolError), 'reserved ignored');
    // NAT-PMP forms other than the 8-byte UNSUPPORTED_VERSION.
    assert.equal(reason(decodePcpResponse(Uint8Array.of(0, 0x80, 0, 1, 0, 0, 0, 0, 0))), 'version');
    assert.equal(reason(decodePcpResponse(Uint8Array.of(0, 0x80, 0, 2, 0, 0, 0, 0))), 'result');
    assert.equal(reason(decodePcpResponse(Uint8Array.of(0, 0x00, 0, 1, 0, 0, 0, 0))), 'request');
  });

  it('an error reply may carry the malformed options it copied; a success may not', () => {
    const badOption = Uint8Array.of(2, 0, 0, 40);
    const error = encodePcpErrorResponse(Uint8Array.of(...request, ...badOption), { resultCode: PcpResultCode.MALFORMED_OPTION, lifetimeSeconds: 30, epochSeconds: 1 });
    const decoded = decodePcpResponse(error);
    assert.ok(!(decoded instanceof ProtocolError) && decoded.op === 'map', 'decodes as a MAP error');
    assert.deepEqual([decoded.resultCode, decoded.options], [PcpResultCode.MALFORMED_OPTION, []]);
    assert.equal(reason(decodePcpResponse(Uint8Array.of(...response, ...badOption))), 'option');
  });

  it('an error answer to an opcode the codec does not parse is a header', () => {
    const peer = with_(request, 1, 2);
    const decoded = decodePcpResponse(encodePcpErrorResponse(peer, { resultCode: PcpResultCode.UNSUPP_OPCODE, lifetimeSeconds: 30, epochSeconds: 1 }));
    assert.deepEqual(decoded, { op: 'header', opcode: 2, resultCode: PcpResultCode.UNSUPP_OPCODE, lifetimeSeconds: 30, epochSeconds: 1 });
  });

  it('encoders reject out-of-range fields', () => {
    assert.throws(() => encodePcpRequest({ ...mapRequest, nonce: new Uint8Array(11) }), RangeError);
    assert.throws(() => encodePcpRequest({ ...mapRequest, internalPort: -1 }), RangeError);
    assert.throws(() => encodePcpRequest({ ...mapRequest, options: [{ code: 128, data: new Uint8Array(1100) }] }), RangeError);
  });
});

describe('PCP codec: helpers', () => {
  it('names result codes 0-13', () => {
    assert.deepEqual(
      Array.from({ length: 15 }, (_, code) => pcpResultName(code)),
      [
        'SUCCESS',
        'UNSUPP_VERSION',
        'NOT_AUTHORIZED',
        'MALFORMED_REQUEST',
        'UNSUPP_OPCODE',
        'UNSUPP_OPTION',
        'MALFORMED_OPTION',
        'NETWORK_FAILURE',
        'NO_RESOURCES',
        'UNSUPP_PROTOCOL',
        'USER_EX_QUOTA',
        'CANNOT_PROVIDE_EXTERNAL',
        'ADDRESS_MISMATCH',
        'EXCESSIVE_REMOTE_PEERS',
        'UNKNOWN_14',
      ],
    );
  });

  it('protocol numbers', () => {
    assert.equal(pcpProtocolName(6), 'tcp');
    assert.equal(pcpProtocolName(17), 'udp');
    assert.equal(pcpProtocolName(0), undefined);
  });

  it('error responses to runts carry only the header, cut to a multiple of 4', () => {
    assert.equal(encodePcpErrorResponse(Uint8Array.of(2, 1), { resultCode: 3, lifetimeSeconds: 1, epochSeconds: 1 }).length, 24);
    assert.equal(encodePcpErrorResponse(new Uint8Array(31).fill(2), { resultCode: 3, lifetimeSeconds: 1, epochSeconds: 1 }).length, 28);
    assert.equal(encodePcpErrorResponse(new Uint8Array(2000).fill(2), { resultCode: 3, lifetimeSeconds: 1, epochSeconds: 1 }).length, 1100);
  });

  it('RFC 6887 §8.5 epoch rule', () => {
    const start = { epochSeconds: 3600, localMs: 0 };
    assert.equal(pcpEpochLost(start, { epochSeconds: 3660, localMs: 60_000 }), false);
    assert.equal(pcpEpochLost(start, { epochSeconds: 3599, localMs: 0 }), false); // 1 s reordering tolerated
    assert.equal(pcpEpochLost(start, { epochSeconds: 3598, localMs: 0 }), true); // went back
    assert.equal(pcpEpochLost(start, { epochSeconds: 3610, localMs: 60_000 }), true); // server too slow
    assert.equal(pcpEpochLost(start, { epochSeconds: 7200, localMs: 60_000 }), true); // server too fast
  });
});

describe('PCP codec: announcements (RFC 6887 §14.1.3)', () => {
  it('an unsolicited ANNOUNCE gives its epoch', () => {
    assert.deepEqual(decodePcpAnnouncement(pcpFixture('unsolicited-announce')), { epochSeconds: 1 });
  });

  it('reserved bits and options are ignored, as a client must', () => {
    assert.deepEqual(decodePcpAnnouncement(with_(pcpFixture('unsolicited-announce'), 2, 0xff)), { epochSeconds: 1 });
  });

  it('anything else is a typed error: a MAP response, an error result, a request, a runt, NAT-PMP', () => {
    assert.equal(reason(decodePcpAnnouncement(pcpFixture('map-response'))), 'announcement');
    assert.equal(reason(decodePcpAnnouncement(with_(pcpFixture('unsolicited-announce'), 3, PcpResultCode.NOT_AUTHORIZED))), 'announcement');
    assert.equal(reason(decodePcpAnnouncement(pcpFixture('announce-request'))), 'request');
    assert.equal(reason(decodePcpAnnouncement(pcpFixture('unsolicited-announce').subarray(0, 1))), 'short');
    assert.ok(decodePcpAnnouncement(Uint8Array.of(0, 128, 0, 0, 0, 0, 0, 3, 203, 0, 113, 9)) instanceof ProtocolError, 'a NAT-PMP announcement is not a PCP one');
  });

  it('never throws on any bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
      const decoded = decodePcpAnnouncement(bytes);
      return decoded instanceof ProtocolError || typeof decoded.epochSeconds === 'number';
    }));
  });
});
