/**
 * The address family of a mapping request (issue #12): `family` and `internalAddress`, how they
 * are checked, and that IPv4 requests resolve exactly as before.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EMPTY, filter, firstValueFrom, of } from 'rxjs';
import { mapPort } from '../../src/core/map-port.js';
import type { Nat, NatMappingRequest } from '../../src/core/nat.js';
import { resolveMappingRequest } from '../../src/core/validate.js';
import { InvalidMappingRequestError } from '../../src/errors.js';

const refuses = (request: unknown, field: string, message: string): void => {
  assert.throws(
    () => resolveMappingRequest(request as never),
    (e: unknown) => {
      assert.ok(e instanceof InvalidMappingRequestError, String(e));
      assert.equal(e.field, field);
      assert.equal(e.message, message);
      return true;
    },
  );
};

test('a request naming no family resolves without one (IPv4, as before)', () => {
  assert.deepEqual(Object.keys(resolveMappingRequest({ protocol: 'udp', internalPort: 4001 })).sort(), [
    'description',
    'externalPort',
    'internalPort',
    'lifetimeSeconds',
    'protocol',
  ]);
});

test("family 'ipv4' and 'ipv6' are kept as given", () => {
  assert.equal(resolveMappingRequest({ protocol: 'tcp', internalPort: 8080, family: 'ipv4' }).family, 'ipv4');
  const v6 = resolveMappingRequest({ protocol: 'tcp', internalPort: 8080, family: 'ipv6' });
  assert.equal(v6.family, 'ipv6');
  assert.equal('internalAddress' in v6, false, 'no internal address unless given');
});

test('an unknown family is refused', () => {
  for (const family of ['IPv6', 'inet6', 6, null]) {
    refuses({ protocol: 'tcp', internalPort: 1, family }, 'family', `unknown family ${JSON.stringify(family)}: use 'ipv4' or 'ipv6'`);
  }
});

test("an internal address implies family 'ipv6' and comes back in RFC 5952 form", () => {
  const resolved = resolveMappingRequest({ protocol: 'tcp', internalPort: 8080, internalAddress: '2001:DB8:0:0::0010' });
  assert.equal(resolved.family, 'ipv6');
  assert.equal(resolved.internalAddress, '2001:db8::10');
  assert.equal(resolveMappingRequest({ protocol: 'udp', internalPort: 1, family: 'ipv6', internalAddress: 'fd77::10' }).internalAddress, 'fd77::10');
});

test("an internal address with family 'ipv4' is a contradiction", () => {
  refuses(
    { protocol: 'tcp', internalPort: 1, family: 'ipv4', internalAddress: '2001:db8::10' },
    'internalAddress',
    "an internal address is for IPv6 requests; family 'ipv4' maps the address this host uses toward the gateway",
  );
});

test('internal addresses that cannot be opened to the internet are refused, saying why', () => {
  const cases: [unknown, string][] = [
    [42, 'the internal address must be a string'],
    ['fe80::1%eth0', 'internal address "fe80::1%eth0" has a zone: only a link-local address has one, and the internet cannot reach it'],
    ['192.0.2.10', 'internal address "192.0.2.10" is not an IPv6 address'],
    ['2001:db8::g', 'internal address "2001:db8::g" is not an IPv6 address'],
    ['fe80::1', `internal address "fe80::1" is link-local: use one of this host's global (or unique-local) IPv6 addresses`],
    ['::1', `internal address "::1" is loopback: use one of this host's global (or unique-local) IPv6 addresses`],
    ['::', `internal address "::" is unspecified: use one of this host's global (or unique-local) IPv6 addresses`],
    ['ff02::1', `internal address "ff02::1" is multicast: use one of this host's global (or unique-local) IPv6 addresses`],
    ['::ffff:203.0.113.7', `internal address "::ffff:203.0.113.7" is IPv4-mapped: use one of this host's global (or unique-local) IPv6 addresses`],
  ];
  for (const [internalAddress, message] of cases) refuses({ protocol: 'tcp', internalPort: 1, internalAddress }, 'internalAddress', message);
});

test('mapPort hands the family and internal address to the backend with the add', async () => {
  const seen: unknown[] = [];
  const nat: Nat = {
    name: 'fake6',
    kind: 'pcp',
    gateway: 'fd77::1',
    family: 'ipv6',
    addMapping: (request: NatMappingRequest) => {
      seen.push({ family: request.family, internalAddress: request.internalAddress });
      return of({ protocol: request.protocol, internalPort: request.internalPort, externalPort: request.internalPort, lifetimeSeconds: 60, externalIp: '2001:db8::10' });
    },
    deleteMapping: () => EMPTY,
    externalIp: () => of('2001:db8::10'),
  };
  const state = await firstValueFrom(
    mapPort(nat, { protocol: 'tcp', internalPort: 8080, internalAddress: '2001:db8::10' }).pipe(filter((s) => s.status === 'mapped')),
  );
  assert.equal(state.externalIp, '2001:db8::10');
  assert.equal(state.doubleNat, false);
  assert.deepEqual(seen[0], { family: 'ipv6', internalAddress: '2001:db8::10' });
});
