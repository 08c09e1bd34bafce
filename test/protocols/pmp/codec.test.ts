import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors.js';
import {
  decodePmpAnnouncement,
  decodePmpRequest,
  decodePmpResponse,
  encodePmpRequest,
  encodePmpResponse,
  pmpEpochLost,
  pmpResponseOpcode,
  pmpResultName,
  type PmpRequest,
  type PmpResponse,
} from '../../../src/protocols/pmp/codec.js';
import { pmpFixture } from '../../fixtures/pmp/read-hex.js';

const reason = (value: unknown): string => {
  assert.ok(value instanceof ProtocolError, `expected a ProtocolError, got ${JSON.stringify(value)}`);
  assert.equal(value.protocol, 'pmp');
  return value.reason;
};

describe('NAT-PMP codec: fixtures both directions', () => {
  const requests: [string, PmpRequest][] = [
    ['external-address-request', { op: 'external-address' }],
    ['map-tcp-request', { op: 'map', protocol: 'tcp', internalPort: 8080, suggestedExternalPort: 8080, lifetimeSeconds: 3600 }],
    ['delete-udp-request', { op: 'map', protocol: 'udp', internalPort: 30305, suggestedExternalPort: 0, lifetimeSeconds: 0 }],
  ];
  for (const [name, message] of requests) {
    it(`request ${name}`, () => {
      assert.deepEqual(encodePmpRequest(message), pmpFixture(name));
      assert.deepEqual(decodePmpRequest(pmpFixture(name)), message);
    });
  }
  const responses: [string, PmpResponse][] = [
    ['external-address-response', { op: 'external-address', resultCode: 0, epochSeconds: 1200, externalIp: '203.0.113.1' }],
    ['map-udp-response', { op: 'map', protocol: 'udp', resultCode: 0, epochSeconds: 1200, internalPort: 30305, externalPort: 30306, lifetimeSeconds: 1800 }],
    ['map-tcp-refused-response', { op: 'map', protocol: 'tcp', resultCode: 2, epochSeconds: 42, internalPort: 8080, externalPort: 0, lifetimeSeconds: 0 }],
    ['unsupported-version-response', { op: 'short', opcode: 128, resultCode: 1, epochSeconds: 42 }],
  ];
  for (const [name, message] of responses) {
    it(`response ${name}`, () => {
      assert.deepEqual(encodePmpResponse(message), pmpFixture(name));
      assert.deepEqual(decodePmpResponse(pmpFixture(name)), message);
    });
  }
});

describe('NAT-PMP codec: round trips', () => {
  const port = fc.integer({ min: 0, max: 0xffff });
  const u32 = fc.integer({ min: 0, max: 0xffffffff });
  const ip = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
  const protocol = fc.constantFrom('tcp' as const, 'udp' as const);

  it('requests', () => {
    const request: fc.Arbitrary<PmpRequest> = fc.oneof(
      fc.constant({ op: 'external-address' as const }),
      fc.record({ op: fc.constant('map' as const), protocol, internalPort: port, suggestedExternalPort: port, lifetimeSeconds: u32 }),
    );
    fc.assert(fc.property(request, (r) => assert.deepEqual(decodePmpRequest(encodePmpRequest(r)), { ...r })));
  });

  it('responses', () => {
    const response: fc.Arbitrary<PmpResponse> = fc.oneof(
      fc.record({ op: fc.constant('external-address' as const), resultCode: fc.nat(0xffff), epochSeconds: u32, externalIp: ip }),
      fc.record({ op: fc.constant('map' as const), protocol, resultCode: fc.nat(0xffff), epochSeconds: u32, internalPort: port, externalPort: port, lifetimeSeconds: u32 }),
      fc.record({ op: fc.constant('short' as const), opcode: fc.integer({ min: 128, max: 255 }), resultCode: fc.integer({ min: 1, max: 0xffff }), epochSeconds: u32 }),
    );
    fc.assert(fc.property(response, (r) => assert.deepEqual(decodePmpResponse(encodePmpResponse(r)), { ...r })));
  });

  it('decoders never throw on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        decodePmpRequest(bytes);
        decodePmpResponse(bytes);
      }),
    );
  });
});

describe('NAT-PMP codec: malformed input is a typed error, never a throw', () => {
  const mapRequest = pmpFixture('map-tcp-request');
  const mapResponse = pmpFixture('map-udp-response');
  const with_ = (bytes: Uint8Array, at: number, value: number): Uint8Array => {
    const copy = bytes.slice();
    copy[at] = value;
    return copy;
  };

  it('requests', () => {
    assert.equal(reason(decodePmpRequest(new Uint8Array(0))), 'short');
    assert.equal(reason(decodePmpRequest(Uint8Array.of(0))), 'short');
    assert.equal(reason(decodePmpRequest(mapRequest.subarray(0, 11))), 'short');
    assert.equal(reason(decodePmpRequest(Uint8Array.of(...mapRequest, 0))), 'long');
    assert.equal(reason(decodePmpRequest(Uint8Array.of(0, 0, 0))), 'long');
    assert.equal(reason(decodePmpRequest(with_(mapRequest, 0, 1))), 'version');
    assert.equal(reason(decodePmpRequest(with_(mapRequest, 1, 3))), 'opcode');
    assert.equal(reason(decodePmpRequest(with_(mapRequest, 1, 130))), 'response');
    assert.equal(reason(decodePmpRequest(with_(mapRequest, 3, 1))), 'reserved');
    assert.ok(!(decodePmpRequest(with_(mapRequest, 3, 1), { reserved: 'ignore' }) instanceof ProtocolError), 'reserved ignored');
  });

  it('responses', () => {
    assert.equal(reason(decodePmpResponse(Uint8Array.of(0))), 'short');
    assert.equal(reason(decodePmpResponse(Uint8Array.of(0, 0x80, 0, 0))), 'short');
    assert.equal(reason(decodePmpResponse(mapResponse.subarray(0, 15))), 'short');
    assert.equal(reason(decodePmpResponse(Uint8Array.of(...mapResponse, 0))), 'long');
    assert.equal(reason(decodePmpResponse(Uint8Array.of(...pmpFixture('external-address-response'), 0))), 'long');
    assert.equal(reason(decodePmpResponse(with_(mapResponse, 0, 2))), 'version');
    assert.equal(reason(decodePmpResponse(with_(mapResponse, 1, 1))), 'request');
    assert.equal(reason(decodePmpResponse(with_(mapResponse, 1, 0x83))), 'opcode');
    // The 8-byte form is only an error form: a "successful" 8-byte reply is truncated.
    assert.equal(reason(decodePmpResponse(Uint8Array.of(0, 0x80, 0, 0, 0, 0, 0, 1))), 'short');
  });

  it('encoders reject out-of-range fields', () => {
    assert.throws(() => encodePmpRequest({ op: 'map', protocol: 'tcp', internalPort: 70000, suggestedExternalPort: 1, lifetimeSeconds: 1 }), RangeError);
    assert.throws(() => encodePmpResponse({ op: 'external-address', resultCode: 0, epochSeconds: 0, externalIp: '300.1.1.1' }), RangeError);
  });
});

describe('NAT-PMP codec: helpers', () => {
  it('names result codes 0-5', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5, 9].map(pmpResultName), [
      'SUCCESS',
      'UNSUPPORTED_VERSION',
      'NOT_AUTHORIZED',
      'NETWORK_FAILURE',
      'OUT_OF_RESOURCES',
      'UNSUPPORTED_OPCODE',
      'UNKNOWN_9',
    ]);
  });

  it('response opcode is request opcode + 128', () => {
    assert.equal(pmpResponseOpcode({ op: 'external-address' }), 128);
    assert.equal(pmpResponseOpcode({ op: 'map', protocol: 'udp', internalPort: 1, suggestedExternalPort: 1, lifetimeSeconds: 1 }), 129);
    assert.equal(pmpResponseOpcode({ op: 'map', protocol: 'tcp', internalPort: 1, suggestedExternalPort: 1, lifetimeSeconds: 1 }), 130);
  });

  it('RFC 6886 §3.6 epoch rule', () => {
    const start = { epochSeconds: 3600, localMs: 0 };
    // Advanced as expected.
    assert.equal(pmpEpochLost(start, { epochSeconds: 3660, localMs: 60_000 }), false);
    // Server clock a little slow: within 7/8 of the client's elapsed time minus 2 s.
    assert.equal(pmpEpochLost(start, { epochSeconds: 3600 + 53, localMs: 60_000 }), false);
    // Went backwards: rebooted.
    assert.equal(pmpEpochLost(start, { epochSeconds: 5, localMs: 1000 }), true);
    // Did not advance over a long time: lost state.
    assert.equal(pmpEpochLost(start, { epochSeconds: 3610, localMs: 60_000 }), true);
    // Small reordering within 2 s is tolerated.
    assert.equal(pmpEpochLost(start, { epochSeconds: 3599, localMs: 0 }), false);
  });
});

describe('NAT-PMP codec: announcements (RFC 6886 §3.2.1)', () => {
  it('a public address announcement gives the epoch and the external address', () => {
    assert.deepEqual(decodePmpAnnouncement(pmpFixture('announcement')), { epochSeconds: 3, externalIp: '203.0.113.9' });
  });

  it('anything else is a typed error: a map response, an error result, the short form, a request, a runt', () => {
    assert.equal(reason(decodePmpAnnouncement(pmpFixture('map-udp-response'))), 'announcement');
    const refused = pmpFixture('announcement');
    refused[3] = 3;
    assert.equal(reason(decodePmpAnnouncement(refused)), 'announcement');
    assert.equal(reason(decodePmpAnnouncement(pmpFixture('unsupported-version-response'))), 'announcement');
    assert.equal(reason(decodePmpAnnouncement(pmpFixture('external-address-request'))), 'request');
    assert.equal(reason(decodePmpAnnouncement(pmpFixture('announcement').subarray(0, 11))), 'short');
  });

  it('never throws on any bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const decoded = decodePmpAnnouncement(bytes);
      return decoded instanceof ProtocolError || typeof decoded.externalIp === 'string';
    }));
  });
});
