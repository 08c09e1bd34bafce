/**
 * src/core/address.ts as the one address module: IPv4 text ↔ 4 bytes, any IP text ↔ 16 bytes
 * (IPv4 as IPv4-mapped), RFC 5952 output, and the one leading-zero rule that every parser in
 * the library (NAT-PMP and PCP codecs, the SOAP reader, the answer checks) now shares.
 *
 * The rule: `192.168.01.1` is refused everywhere. RFC 6943 §3.1.1 calls dotted decimal with
 * leading zeros ambiguous (octal to some readers), and glibc's `inet_pton` refuses it as well.
 * Before, the NAT-PMP codec read it as 192.168.1.1 while the SOAP reader refused it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesToIp, bytesToIpv4, classifyAddress, ipToBytes, ipv4ToBytes, isIpAddress, isIpv4, parseIpv4, parseIpv6 } from '../../src/core/address.js';
import { externalAddressProblem } from '../../src/protocols/answer-check.js';
import { encodePmpResponse } from '../../src/protocols/pmp/codec.js';
import { ipToPcpBytes } from '../../src/protocols/pcp/codec.js';
import { readExternalIp } from '../../src/protocols/upnp/soap.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('IPv4 text and bytes', () => {
  it('round-trips, and refuses what parseIpv4 refuses', () => {
    // Moved from test/protocols/pmp/codec.test.ts with the functions.
    assert.equal(bytesToIpv4(ipv4ToBytes('10.0.0.255')), '10.0.0.255');
    for (const bad of ['1.2.3', '1.2.3.4.5', '1.2.3.256', 'a.b.c.d', '']) assert.throws(() => ipv4ToBytes(bad), RangeError);
    assert.deepEqual([...ipv4ToBytes('192.0.2.1')], [192, 0, 2, 1]);
    assert.throws(() => ipv4ToBytes('192.168.01.1'), /not an IPv4 address: 192\.168\.01\.1/);
    assert.throws(() => ipv4ToBytes('::1'), RangeError);
    assert.equal(bytesToIpv4(Uint8Array.of(203, 0, 113, 1, 99)), '203.0.113.1'); // the first four only
  });

  it('isIpv4 is parseIpv4 as a predicate', () => {
    const table: Array<[string, boolean]> = [
      ['192.168.1.1', true],
      ['0.0.0.0', true],
      ['192.168.01.1', false],
      ['1.2.3', false],
      ['::ffff:1.2.3.4', false],
      ['', false],
    ];
    for (const [text, expected] of table) assert.equal(isIpv4(text), expected, text);
  });

  it('every byte quadruple writes as text that reads back to it', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (bytes) => {
        const text = bytesToIpv4(bytes);
        assert.ok(isIpv4(text), text);
        assert.deepEqual(ipv4ToBytes(text), bytes);
      }),
    );
  });
});

describe('IP text and 16 bytes', () => {
  it('IPv4 becomes IPv4-mapped; IPv6 is its groups', () => {
    assert.equal(hex(ipToBytes('192.0.2.1')), '00000000000000000000ffffc0000201');
    assert.equal(hex(ipToBytes('2001:db8::1')), '20010db8000000000000000000000001');
    assert.equal(hex(ipToBytes('::')), '0'.repeat(32));
    assert.equal(hex(ipToBytes('::ffff:192.0.2.1')), '00000000000000000000ffffc0000201');
    assert.equal(hex(ipToBytes('1:2:3:4:5:6:7:8')), '00010002000300040005000600070008');
  });

  it('refuses what is not an address, a zone included', () => {
    for (const bad of ['1:2:3', '1::2::3', 'g::1', '1.2.3.4.5', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', '::ffff:1.2.3.04', '', 'router']) {
      assert.throws(() => ipToBytes(bad), RangeError, bad);
    }
  });

  it('writes RFC 5952 text: lowercase, the longest zero run (two or more groups, first of equals) as ::', () => {
    const table: Array<[string, string]> = [
      ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group stays
      ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longer run
      ['1:0:0:0:0:0:0:0', '1::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['::', '::'],
      ['::ffff:10.1.2.3', '10.1.2.3'], // IPv4-mapped reads as IPv4
      ['fe80::1:2', 'fe80::1:2'],
    ];
    for (const [text, expected] of table) assert.equal(bytesToIp(ipToBytes(text)), expected, text);
  });

  it('every 16 bytes write as text that reads back to them', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (bytes) => {
        const text = bytesToIp(bytes);
        assert.ok(isIpAddress(text), text);
        assert.deepEqual(ipToBytes(text), bytes);
      }),
    );
  });
});

describe('one rule for leading zeros, in every parser', () => {
  const zeroed = '192.168.01.1';

  it('the address module refuses it in every form', () => {
    assert.equal(parseIpv4(zeroed), undefined);
    assert.equal(isIpv4(zeroed), false);
    assert.equal(isIpAddress(zeroed), false);
    assert.equal(parseIpv6(`::ffff:${zeroed}`), undefined);
    assert.equal(classifyAddress(zeroed), 'invalid');
    assert.throws(() => ipToBytes(zeroed), RangeError);
  });

  it('IPv6 hex groups with leading zeros are not ambiguous, and are read (as inet_pton does)', () => {
    assert.equal(hex(ipToBytes('2001:0db8::0001')), '20010db8000000000000000000000001');
  });

  it('NAT-PMP, PCP, SOAP and the answer checks refuse it too', () => {
    assert.throws(() => encodePmpResponse({ op: 'external-address', resultCode: 0, epochSeconds: 1, externalIp: zeroed }), RangeError);
    assert.throws(() => ipToPcpBytes(zeroed), RangeError);
    const soap = readExternalIp(new Map([['NewExternalIPAddress', zeroed]]));
    assert.ok(soap instanceof Error && 'reason' in soap && soap.reason === 'external-address', String(soap));
    assert.equal(externalAddressProblem(zeroed), 'undecodable');
  });
});

it('bytesToIp: only ::ffff:0:0/96 is written as IPv4; one ff byte short of it stays IPv6', () => {
  const tail = [1, 2, 3, 4];
  assert.equal(bytesToIp(Uint8Array.from([...new Array(10).fill(0), 0xff, 0xff, ...tail])), '1.2.3.4');
  assert.equal(bytesToIp(Uint8Array.from([...new Array(10).fill(0), 0x00, 0xff, ...tail])), '::ff:102:304');
  assert.equal(bytesToIp(Uint8Array.from([...new Array(10).fill(0), 0xff, 0x00, ...tail])), '::ff00:102:304');
});

it('ipToBytes names what it could not read', () => {
  assert.throws(() => ipToBytes('router.lan'), { name: 'RangeError', message: 'not an IP address: router.lan' });
});
