import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { ProtocolError } from '../../../src/errors.js';
import {
  decodeStunBindingResponse,
  encodeStunBindingRequest,
  isStunAnswerTo,
  STUN_MAGIC_COOKIE,
} from '../../../src/protocols/stun/codec.js';
import { RFC5769_TRANSACTION_ID as ID, stunFixture } from '../../fixtures/stun/fixture.js';
import { stunBindingResponse } from '../../lab/stun-responder.mjs';

const SERVER = '192.0.2.10:3478';
const reason = (value: unknown): string => {
  assert.ok(value instanceof ProtocolError, `expected a ProtocolError, got ${JSON.stringify(value)}`);
  assert.equal(value.protocol, 'stun');
  assert.equal(value.gateway, SERVER);
  return value.reason;
};
const decode = (bytes: Uint8Array, id: Uint8Array = ID) => decodeStunBindingResponse(bytes, id, SERVER);

/** A header for `body` with the sample transaction ID. */
function message(type: number, body: number[]): Uint8Array {
  const out = new Uint8Array(20 + body.length);
  const view = new DataView(out.buffer);
  view.setUint16(0, type);
  view.setUint16(2, body.length);
  view.setUint32(4, STUN_MAGIC_COOKIE);
  out.set(ID, 8);
  out.set(body, 20);
  return out;
}

describe('STUN codec: RFC 5769 sample messages', () => {
  it('encodes the Binding request byte for byte', () => {
    assert.deepEqual(encodeStunBindingRequest(ID), stunFixture('binding-request'));
  });

  it('decodes the IPv4 sample response (FINGERPRINT checked, MESSAGE-INTEGRITY skipped)', () => {
    assert.deepEqual(decode(stunFixture('rfc5769-ipv4-response')), { kind: 'success', family: 'ipv4', address: '192.0.2.1', port: 32853 });
  });

  it('decodes the IPv6 sample response (address XORed with cookie and transaction ID)', () => {
    assert.deepEqual(decode(stunFixture('rfc5769-ipv6-response')), {
      kind: 'success',
      family: 'ipv6',
      address: '2001:db8:1234:5678:11:2233:4455:6677',
      port: 32853,
    });
  });

  it('falls back to MAPPED-ADDRESS of old servers and ignores their SOURCE-ADDRESS', () => {
    assert.deepEqual(decode(stunFixture('rfc3489-mapped-only')), { kind: 'success', family: 'ipv4', address: '198.51.100.9', port: 40001 });
  });

  it('decodes an error response into its code and reason', () => {
    assert.deepEqual(decode(stunFixture('error-400')), { kind: 'error', code: 400, reason: 'Bad Request' });
  });

  it('prefers XOR-MAPPED-ADDRESS when both are present (the lab responder sends both)', () => {
    const reply = stunBindingResponse(Buffer.from(encodeStunBindingRequest(ID)), '10.77.0.2', 40001);
    assert.ok(reply);
    assert.deepEqual(decode(new Uint8Array(reply)), { kind: 'success', family: 'ipv4', address: '10.77.0.2', port: 40001 });
  });

  it('refuses a transaction ID that is not 12 bytes', () => {
    assert.throws(() => encodeStunBindingRequest(new Uint8Array(11)), RangeError);
  });
});

describe('STUN codec: every malformed answer is a typed error', () => {
  const sample = (): Uint8Array => stunFixture('rfc5769-ipv4-response').slice();
  const cases: [string, () => Uint8Array, Uint8Array?][] = [
    ['short', () => sample().subarray(0, 19)],
    ['header', () => { const m = sample(); m[0] = 0x81; return m; }],
    ['length', () => sample().subarray(0, 40)],
    ['length', () => { const m = sample(); m[3] = 0x3b; return m; }],
    ['cookie', () => { const m = sample(); m[4] = 0; return m; }],
    ['transaction', () => sample(), new Uint8Array(12)],
    ['type', () => encodeStunBindingRequest(ID)],
    ['fingerprint', () => { const m = sample(); m[m.length - 1] = m[m.length - 1]! ^ 1; return m; }],
    ['fingerprint', () => { const m = sample(); m[30] = m[30]! ^ 1; return m; }],
    ['attribute', () => message(0x0101, [0x00, 0x20, 0x00, 0x10, 0, 1, 0, 0])],
    ['attribute', () => message(0x0101, [0x00, 0x20, 0x00, 0x02, 0, 1, 0, 0])],
    ['attribute', () => message(0x0101, [0x00, 0x20, 0x00, 0x06, 0, 1, 0, 0, 0, 0, 0, 0])],
    ['family', () => message(0x0101, [0x00, 0x20, 0x00, 0x08, 0, 3, 0, 0, 0, 0, 0, 0])],
    ['family', () => message(0x0101, [0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x01, 0x00, 0x08, 0, 9, 0, 0, 0, 0, 0, 0])],
    ['unknown-attribute', () => message(0x0101, [0x00, 0x7f, 0x00, 0x00])],
    ['no-address', () => message(0x0101, [0x80, 0x22, 0x00, 0x04, 0x61, 0x62, 0x63, 0x64])],
    ['error-code', () => message(0x0111, [])],
    ['error-code', () => message(0x0111, [0x00, 0x09, 0x00, 0x04, 0, 0, 0x02, 0x00])],
    ['error-code', () => message(0x0111, [0x00, 0x09, 0x00, 0x04, 0, 0, 0x04, 0x64])],
    ['error-code', () => message(0x0111, [0x00, 0x09, 0x00, 0x02, 0, 0, 0, 0])],
  ];
  for (const [expected, build, id] of cases) {
    it(`${expected}: ${Buffer.from(build()).toString('hex').slice(0, 48)}…`, () => {
      assert.equal(reason(decode(build(), id)), expected);
    });
  }

  it('accepts a FINGERPRINT it computes itself, and only as the last attribute', () => {
    const body = [0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43];
    const withRoom = message(0x0101, [...body, 0x80, 0x28, 0x00, 0x04, 0, 0, 0, 0]);
    const crc = (crc32(withRoom.subarray(0, withRoom.length - 8)) ^ 0x5354554e) >>> 0;
    new DataView(withRoom.buffer).setUint32(withRoom.length - 4, crc);
    assert.deepEqual(decode(withRoom), { kind: 'success', family: 'ipv4', address: '192.0.2.1', port: 32853 });
    const notLast = message(0x0101, [0x80, 0x28, 0x00, 0x04, 0, 0, 0, 0, ...body]);
    assert.equal(reason(decode(notLast)), 'fingerprint');
  });

  it('isStunAnswerTo looks at the header only', () => {
    assert.equal(isStunAnswerTo(stunFixture('rfc5769-ipv4-response'), ID), true);
    assert.equal(isStunAnswerTo(stunFixture('rfc5769-ipv4-response'), new Uint8Array(12)), false);
    assert.equal(isStunAnswerTo(new Uint8Array(19), ID), false);
    const noCookie = stunFixture('rfc5769-ipv4-response').slice();
    noCookie[5] = 0;
    assert.equal(isStunAnswerTo(noCookie, ID), false);
    const topBits = stunFixture('rfc5769-ipv4-response').slice();
    topBits[0] = 0x41;
    assert.equal(isStunAnswerTo(topBits, ID), false);
  });
});

describe('STUN codec: properties', () => {
  it('never throws on arbitrary bytes, and anything it accepts is a valid address and port', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const answer = decode(bytes);
        if (answer instanceof ProtocolError || answer.kind === 'error') return;
        assert.ok(answer.port >= 0 && answer.port <= 65535);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws when a valid answer is cut or has a byte changed', () => {
    const valid = stunFixture('rfc5769-ipv6-response');
    fc.assert(
      fc.property(fc.nat(valid.length), fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 }), (cut, at, flip) => {
        const changed = valid.slice();
        changed[at] = changed[at]! ^ flip;
        for (const bytes of [valid.subarray(0, cut), changed]) {
          const answer = decode(bytes);
          assert.ok(answer instanceof ProtocolError || answer.kind === 'success' || answer.kind === 'error');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('decodes what an independent responder (the lab one) builds for any IPv4 address and port', () => {
    fc.assert(
      fc.property(fc.ipV4(), fc.integer({ min: 1, max: 65535 }), fc.uint8Array({ minLength: 12, maxLength: 12 }), (ip, port, id) => {
        const reply = stunBindingResponse(Buffer.from(encodeStunBindingRequest(id)), ip, port);
        assert.ok(reply);
        assert.deepEqual(decodeStunBindingResponse(new Uint8Array(reply), id, SERVER), { kind: 'success', family: 'ipv4', address: ip, port });
      }),
    );
  });
});
