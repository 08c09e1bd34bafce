/**
 * externalAddressProblem (src/core/address.ts): why a gateway's answer cannot be an external
 * address. It moved from src/protocols/answer-check.ts, where it judged the 16 bytes itself; now
 * it is classifyAddress with `reserved` split into multicast and the rest. The table names every
 * edge; the properties check it against the byte rules it replaced and against
 * isUsableExternalAddress (the same set, by its documentation).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesToIp, externalAddressProblem, ipToBytes, isUsableExternalAddress, type ExternalAddressProblem } from '../../src/core/address.js';
import { externalAddressProblem as reexported } from '../../src/protocols/answer-check.js';

/** The rules of the former answer-check.ts implementation, on the 16-byte form. */
function byteRules(bytes: Uint8Array): ExternalAddressProblem | undefined {
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) {
    const [a = 0, b = 0] = bytes.subarray(12, 16);
    if (a === 0) return 'unspecified';
    if (a === 127) return 'loopback';
    if (a === 169 && b === 254) return 'link-local';
    if (a >= 224 && a <= 239) return 'multicast';
    if (a >= 240) return 'reserved';
    return undefined;
  }
  const [first = 0, second = 0] = bytes;
  if (bytes.every((b) => b === 0)) return 'unspecified';
  if (bytes.subarray(0, 15).every((b) => b === 0) && bytes[15] === 1) return 'loopback';
  if (first === 0xfe && (second & 0xc0) === 0x80) return 'link-local';
  if (first === 0xff) return 'multicast';
  return undefined;
}

describe('externalAddressProblem', () => {
  it('names the problem of every range, on both sides of its edges', () => {
    const table: Array<[string, ExternalAddressProblem | undefined]> = [
      ['203.0.113.7', undefined],
      ['10.0.0.1', undefined], // private: behind another NAT, still an address
      ['100.64.0.1', undefined], // CGNAT
      ['0.0.0.0', 'unspecified'],
      ['0.1.2.3', 'unspecified'], // 0/8, "this network"
      ['1.0.0.0', undefined],
      ['126.255.255.255', undefined],
      ['127.0.0.1', 'loopback'],
      ['128.0.0.0', undefined],
      ['169.253.255.255', undefined],
      ['169.254.1.1', 'link-local'],
      ['169.255.0.0', undefined],
      ['223.255.255.255', undefined],
      ['224.0.0.1', 'multicast'],
      ['239.255.255.255', 'multicast'],
      ['240.0.0.1', 'reserved'],
      ['255.255.255.255', 'reserved'],
      ['::', 'unspecified'],
      ['::1', 'loopback'],
      ['::2', undefined],
      ['fe80::1', 'link-local'],
      ['febf::1', 'link-local'],
      ['fec0::1', undefined],
      ['fe7f::1', undefined],
      ['ff02::1', 'multicast'],
      ['fd00::1', undefined], // unique local
      ['2001:db8::7', undefined],
      ['::ffff:0.0.0.0', 'unspecified'],
      ['::ffff:127.0.0.1', 'loopback'],
      ['::ffff:169.254.0.1', 'link-local'],
      ['::ffff:224.0.0.1', 'multicast'],
      ['::ffff:240.0.0.1', 'reserved'],
      ['::ffff:203.0.113.7', undefined],
      ['fe80::1%eth0', 'undecodable'], // a zone names a local link
      ['192.168.01.1', 'undecodable'], // leading zero
      ['router', 'undecodable'],
      ['', 'undecodable'],
    ];
    for (const [text, expected] of table) assert.equal(externalAddressProblem(text), expected, text);
  });

  it('answers as the byte rules it replaced, for every address', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        const text = bytesToIp(bytes);
        assert.equal(externalAddressProblem(text), byteRules(ipToBytes(text)), text);
      }),
      { numRuns: 2000 },
    );
    // Sparse and special prefixes, which uniform bytes seldom hit.
    const special = fc.tuple(fc.constantFrom(0, 0xfe80, 0xfebf, 0xfec0, 0xff00, 0xfc00), fc.constantFrom(0, 0xffff), fc.constantFrom(0, 1, 0x7f00, 0xa9fe, 0xe000, 0xf000, 0xffff), fc.nat(0xffff));
    fc.assert(
      fc.property(special, ([g0, g5, g6, g7]) => {
        const bytes = Uint8Array.from([g0, 0, 0, 0, 0, g5, g6, g7].flatMap((g) => [g >> 8, g & 0xff]));
        const text = bytesToIp(bytes);
        assert.equal(externalAddressProblem(text), byteRules(bytes), text);
      }),
    );
  });

  it('refuses exactly what isUsableExternalAddress refuses', () => {
    const address = fc.oneof(
      fc.uint8Array({ minLength: 16, maxLength: 16 }).map(bytesToIp),
      fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.')),
      fc.string({ maxLength: 12 }),
    );
    fc.assert(
      fc.property(address, (text) => {
        assert.equal(externalAddressProblem(text) === undefined, isUsableExternalAddress(text), text);
      }),
      { numRuns: 2000 },
    );
  });

  it('is still exported by answer-check.ts, as the same function', () => {
    assert.equal(reexported, externalAddressProblem);
  });
});
