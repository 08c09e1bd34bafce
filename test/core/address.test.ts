/**
 * The external-address checks of src/core/address.ts, as tables: what parses, how each range is
 * classified (both sides of every edge), what is usable as an external address, what shows a
 * double NAT. Grants and address readings reach these functions too, but only with a few
 * addresses; here every edge is named.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  classifyAddress,
  classifyIpv4,
  isDoubleNat,
  isIpAddress,
  isUsableExternalAddress,
  parseIpv4,
  parseIpv6,
  type AddressKind,
} from '../../src/core/address.js';

test('parseIpv4: four decimal octets 0-255, no leading zeros, nothing around them', () => {
  const table: Array<[string, [number, number, number, number] | undefined]> = [
    ['192.168.1.1', [192, 168, 1, 1]],
    ['0.0.0.0', [0, 0, 0, 0]],
    ['255.255.255.255', [255, 255, 255, 255]],
    ['1.2.3', undefined],
    ['1.2.3.4.5', undefined],
    ['1.2.3.256', undefined],
    ['1.2.3.1234', undefined],
    ['01.2.3.4', undefined], // leading zero
    ['1.2.3.00', undefined],
    ['1.2.3.0x1', undefined], // Number('0x1') is 1
    ['1.2.3. 4', undefined], // Number(' 4') is 4
    ['1.2.3.', undefined],
    ['1.2.3.-1', undefined],
    ['router.lan', undefined],
    ['', undefined],
  ];
  for (const [text, expected] of table) assert.deepEqual(parseIpv4(text), expected, JSON.stringify(text));
});

test('isIpAddress: IPv4 dotted quads and the RFC 4291 text forms of IPv6', () => {
  const table: Array<[string, boolean]> = [
    ['203.0.113.7', true],
    ['2001:db8::1', true],
    ['::', true],
    ['::1', true],
    ['1::', true],
    ['1:2:3:4:5:6:7:8', true],
    ['1:2:3:4:5:6:1.2.3.4', true], // six groups and an IPv4 tail make eight
    ['::ffff:1.2.3.4', true],
    ['1:2:3:4:5::1.2.3.4', true],
    ['FE80::ABCD', true],
    ['1:2:3:4:5:6:7', false], // seven groups without ::
    ['1:2:3:4:5:6:7:8:9', false],
    ['1:2:3:4::5:6:7:8', false], // :: must stand for at least one group
    ['1:2:3:4:5:6:7:1.2.3.4', false], // nine groups' worth
    ['1:2:3:4:5:6::1.2.3.4', false],
    ['1::2::3', false],
    [':::', false],
    ['1::12345', false], // a group of five digits
    ['12345::1', false],
    ['1::g', false],
    ['::ffff:1.2.3.256', false],
    ['::ffff:1.2.3', false],
    ['::1.2.3.4:1', false], // the IPv4 part only at the end
    ['router.lan', false],
    ['1234', false],
    ['', false],
  ];
  for (const [text, expected] of table) assert.equal(isIpAddress(text), expected, JSON.stringify(text));
});

test('parseIpv6: eight groups, :: expanded to the missing zeros, an IPv4 tail as two groups', () => {
  const table: Array<[string, number[] | undefined]> = [
    ['2001:db8::1', [0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]],
    ['::', [0, 0, 0, 0, 0, 0, 0, 0]],
    ['::1', [0, 0, 0, 0, 0, 0, 0, 1]],
    ['1::', [1, 0, 0, 0, 0, 0, 0, 0]],
    ['1:2::3:4', [1, 2, 0, 0, 0, 0, 3, 4]],
    ['1:2:3:4:5:6:7:8', [1, 2, 3, 4, 5, 6, 7, 8]],
    ['::ffff:192.0.2.1', [0, 0, 0, 0, 0, 0xffff, 0xc000, 0x201]],
    ['1:2:3:4:5:6:192.0.2.1', [1, 2, 3, 4, 5, 6, 0xc000, 0x201]],
    ['1.2.3.4', undefined], // an IPv4 address is not an IPv6 one
    ['router', undefined],
    ['1::2::3', undefined],
  ];
  for (const [text, expected] of table) assert.deepEqual(parseIpv6(text), expected, JSON.stringify(text));
});

test('classifyIpv4: every range on both sides of its edges', () => {
  const table: Array<[string, AddressKind]> = [
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['9.255.255.255', 'public'],
    ['11.0.0.0', 'public'],
    ['172.15.255.255', 'public'],
    ['172.16.0.0', 'private'],
    ['172.31.255.255', 'private'],
    ['172.32.0.0', 'public'],
    ['8.20.0.1', 'public'], // second octet in 16-31, first not 172
    ['192.168.0.1', 'private'],
    ['192.169.0.1', 'public'],
    ['192.167.0.1', 'public'],
    ['191.168.0.1', 'public'],
    ['100.63.255.255', 'public'],
    ['100.64.0.0', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.128.0.0', 'public'],
    ['8.64.0.1', 'public'], // second octet in 64-127, first not 100
    ['127.0.0.1', 'loopback'],
    ['127.255.0.1', 'loopback'],
    ['169.254.1.1', 'link-local'],
    ['169.253.1.1', 'public'],
    ['169.255.1.1', 'public'],
    ['8.254.1.1', 'public'],
    ['223.255.255.255', 'public'],
    ['224.0.0.1', 'reserved'],
    ['225.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
    ['203.0.113.7', 'public'], // TEST-NET-3 counts as public
    ['8.8.8.8', 'public'],
    ['1.2.3', 'invalid'],
    ['::1', 'invalid'],
  ];
  for (const [text, expected] of table) assert.equal(classifyIpv4(text), expected, text);
});

test('classifyAddress: IPv6 classes, and an IPv4-mapped address as its IPv4 address', () => {
  const table: Array<[string, AddressKind]> = [
    ['2001:db8::7', 'public'],
    ['1:2:3:4:5:6:7:8', 'public'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['::2', 'public'],
    ['1::1', 'public'],
    ['0:0:0:0:0:0:1:1', 'public'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:100.64.0.1', 'cgnat'],
    ['::ffff:8.8.8.8', 'public'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::fffe:10.0.0.1', 'public'], // not the mapped prefix
    ['1::ffff:10.0.0.1', 'public'],
    ['0:0:0:0:1:ffff:10.0.0.1', 'public'],
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'public'],
    ['fe7f::1', 'public'],
    ['ff02::1', 'reserved'],
    ['ff00::', 'reserved'],
    ['fc00::1', 'private'],
    ['fd77::10', 'private'],
    ['fe00::1', 'public'],
    ['fbff::1', 'public'],
    ['10.0.0.1', 'private'],
    ['203.0.113.7', 'public'],
    ['router.lan', 'invalid'],
    ['1::2::3', 'invalid'],
  ];
  for (const [text, expected] of table) assert.equal(classifyAddress(text), expected, text);
});

test('isUsableExternalAddress: public, private and CGNAT unicast only; anything not a string is not', () => {
  const table: Array<[unknown, boolean]> = [
    ['203.0.113.7', true],
    ['10.0.0.1', true],
    ['100.64.0.1', true],
    ['2001:db8::7', true],
    ['fd77::10', true],
    ['0.0.0.0', false],
    ['127.0.0.1', false],
    ['169.254.0.1', false],
    ['224.0.0.1', false],
    ['::', false],
    ['::1', false],
    ['fe80::1', false],
    ['ff02::1', false],
    ['router.lan', false],
    ['', false],
    [null, false],
    [undefined, false],
    [0x7f000001, false],
  ];
  for (const [text, expected] of table) assert.equal(isUsableExternalAddress(text as string), expected, String(text));
});

test('isDoubleNat: IPv4 private and CGNAT only, never IPv6', () => {
  const table: Array<[string, boolean]> = [
    ['10.0.0.1', true],
    ['172.16.0.1', true],
    ['192.168.1.1', true],
    ['100.64.1.1', true],
    ['203.0.113.7', false],
    ['127.0.0.1', false],
    ['0.0.0.0', false],
    ['fd77::10', false],
    ['::ffff:10.0.0.1', false],
    ['router.lan', false],
  ];
  for (const [text, expected] of table) assert.equal(isDoubleNat(text), expected, text);
});
