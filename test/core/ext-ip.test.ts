/**
 * extIp: a NAT that does nothing. It refuses anything that is not an IP address at once, and
 * otherwise grants exactly what was asked, deletes nothing and reports its address.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstValueFrom, toArray } from 'rxjs';
import { InvalidMappingRequestError } from '../../src/errors.js';
import { extIp } from '../../src/core/ext-ip.js';

test('extIp refuses a host name, an empty string or a non-string with an InvalidMappingRequestError for "ip"', () => {
  for (const ip of ['not an ip', 'router.lan', '', '1.2.3', 5, null, undefined]) {
    assert.throws(
      () => extIp(ip as string),
      (e: unknown) => e instanceof InvalidMappingRequestError && e.field === 'ip' && e.message === `extIp needs an IP address, got ${JSON.stringify(ip)}`,
      String(ip),
    );
  }
});

test('extIp grants the port and lifetime asked for, on its address, and is named after it', async () => {
  for (const ip of ['203.0.113.7', '2001:db8::7']) {
    const nat = extIp(ip);
    assert.equal(nat.name, `extip(${ip})`);
    assert.equal(nat.kind, 'extip');
    assert.equal(nat.gateway, null);
    const request = { protocol: 'udp', internalPort: 30303, externalPort: 30304, description: 'x', lifetimeSeconds: 120 } as const;
    assert.deepEqual(await firstValueFrom(nat.addMapping(request)), {
      protocol: 'udp',
      internalPort: 30303,
      externalPort: 30304,
      lifetimeSeconds: 120,
      externalIp: ip,
    });
    assert.deepEqual(await firstValueFrom(nat.deleteMapping(request).pipe(toArray())), [], 'the delete completes at once, empty');
    assert.equal(await firstValueFrom(nat.externalIp()), ip);
  }
});
