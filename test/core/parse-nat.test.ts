import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstValueFrom, isObservable } from 'rxjs';
import { parseNat } from '../../src/parse-nat.js';
import { NatSpecError } from '../../src/errors.js';

test('parseNat: no NAT for "", none, off (any case)', () => {
  for (const spec of ['', 'none', 'off', 'NONE', 'Off', '  none ']) assert.equal(parseNat(spec), null, spec);
});

test('parseNat: extip and ip need an address and map without I/O', async () => {
  for (const spec of ['extip:203.0.113.7', 'ip:203.0.113.7', 'EXTIP:203.0.113.7', 'extip:2001:db8::1']) {
    const nat$ = parseNat(spec);
    assert.ok(isObservable(nat$), spec);
    const nat = await firstValueFrom(nat$!);
    assert.equal(nat.kind, 'extip');
    assert.equal(await firstValueFrom(nat.externalIp()), spec.slice(spec.indexOf(':') + 1));
  }
  for (const spec of ['extip', 'extip:', 'ip:not-an-ip', 'extip:1.2.3.256']) {
    assert.throws(() => parseNat(spec), NatSpecError, spec);
  }
});

test('parseNat: the protocol specs give cold sources (nothing is sent before subscribe)', () => {
  for (const spec of ['any', 'auto', 'on', 'upnp', 'UPnP', 'upnp:http://127.0.0.1:5000/rootDesc.xml', 'pmp', 'natpmp', 'nat-pmp', 'pmp:127.0.0.1', 'NAT-PMP:127.0.0.1', 'pcp', 'pcp:127.0.0.1']) {
    assert.ok(isObservable(parseNat(spec)), spec);
  }
});

test('parseNat: anything else is a NatSpecError naming the spec', () => {
  for (const spec of ['carrier-pigeon', 'pmp:router.lan', 'upnp:ftp://127.0.0.1/x', 'upnp:not a url', 'any:1.2.3.4', 'none:x']) {
    assert.throws(() => parseNat(spec), (error: unknown) => error instanceof NatSpecError && error.spec === spec && error.message.includes(spec), spec);
  }
});
