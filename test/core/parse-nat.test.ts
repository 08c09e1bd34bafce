import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstValueFrom, isObservable } from 'rxjs';
import { parseNat } from '../../src/parse-nat.js';
import { parseNatSpec } from '../../src/nat-spec.js';
import { startLoopbackStunServer } from '../support/stun-server.js';
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
  for (const spec of ['carrier-pigeon', 'pmp:router.lan', 'upnp:ftp://127.0.0.1/x', 'upnp:not a url', 'any:router.lan', 'any:1.2.3.256', 'none:x', 'stun:bad host', 'stun:[::1', 'stun:host:port']) {
    assert.throws(() => parseNat(spec), (error: unknown) => error instanceof NatSpecError && error.spec === spec && error.message.includes(spec), spec);
  }
});

test('go-ethereum parity: an address after any: or upnp: is read (gateway to ask, IGD to prefer), stun[:host:port] is a spec', () => {
  assert.deepEqual(parseNatSpec('any:192.168.1.1'), { mechanism: 'any', gateway: '192.168.1.1' });
  assert.deepEqual(parseNatSpec('AUTO:192.168.1.1'), { mechanism: 'any', gateway: '192.168.1.1' });
  assert.deepEqual(parseNatSpec('any'), { mechanism: 'any' });
  assert.deepEqual(parseNatSpec('upnp:192.168.1.1'), { mechanism: 'upnp', gateway: '192.168.1.1' });
  assert.deepEqual(parseNatSpec('upnp:http://192.168.1.1:5000/rootDesc.xml'), { mechanism: 'upnp', descriptionUrl: 'http://192.168.1.1:5000/rootDesc.xml' });
  assert.deepEqual(parseNatSpec('stun'), { mechanism: 'stun' });
  assert.deepEqual(parseNatSpec('STUN:stun.example.net:3478'), { mechanism: 'stun', server: 'stun.example.net:3478' });
  assert.deepEqual(parseNatSpec('stun:192.0.2.1'), { mechanism: 'stun', server: '192.0.2.1' });
  assert.deepEqual(parseNatSpec('stun:[2001:db8::1]:3478'), { mechanism: 'stun', server: '[2001:db8::1]:3478' });
  for (const spec of ['any:127.0.0.1', 'upnp:127.0.0.1', 'stun', 'stun:127.0.0.1:3478']) assert.ok(isObservable(parseNat(spec)), spec);
});

test('stun:<server> gives a STUN NAT source, asking that server only (on loopback)', async () => {
  const server = await startLoopbackStunServer('203.0.113.9');
  try {
    const nat = await firstValueFrom(parseNat(`stun:127.0.0.1:${server.port}`, { stun: { logger: { debug: () => undefined } } })!);
    assert.equal(nat.kind, 'stun');
    assert.equal(await firstValueFrom(nat.externalIp()), '203.0.113.9');
  } finally {
    await server.close();
  }
});
