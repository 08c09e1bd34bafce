import { test } from 'node:test';
import assert from 'node:assert/strict';
import { firstValueFrom, isObservable } from 'rxjs';
import { parseNat } from '../../src/parse-nat.js';
import { parseNatSpec } from '../../src/nat-spec.js';
import { startLoopbackStunServer } from '../support/stun-server.js';
import { NatSpecError } from '../../src/errors.js';
import { startGatewaySimulator } from '../../src/testing/simulator.js';
import { ipv6LoopbackSkip } from '../support/ipv6.js';

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

test('IPv6 specs: any6, pcp6, pinhole/upnp6, and IPv6 routers bracketed or not, a link-local one with its zone', () => {
  assert.deepEqual(parseNatSpec('any6'), { mechanism: 'any', family: 'ipv6' });
  assert.deepEqual(parseNatSpec('ANY6:[2001:db8::1]'), { mechanism: 'any', gateway: '2001:db8::1', family: 'ipv6' });
  assert.deepEqual(parseNatSpec('any:[fe80::1%eth0]'), { mechanism: 'any', gateway: 'fe80::1%eth0', family: 'ipv6' });
  assert.deepEqual(parseNatSpec('pcp6'), { mechanism: 'pcp', family: 'ipv6' });
  assert.deepEqual(parseNatSpec('pcp:[fe80::1%eth0]'), { mechanism: 'pcp', gateway: 'fe80::1%eth0', family: 'ipv6' });
  assert.deepEqual(parseNatSpec('pcp:fe80::1%wlan0.5'), { mechanism: 'pcp', gateway: 'fe80::1%wlan0.5', family: 'ipv6' });
  assert.deepEqual(parseNatSpec('pcp:2001:db8::1'), { mechanism: 'pcp', gateway: '2001:db8::1', family: 'ipv6' });
  assert.deepEqual(parseNatSpec('pcp6:[fd77::1]'), { mechanism: 'pcp', gateway: 'fd77::1', family: 'ipv6' });
  assert.deepEqual(parseNatSpec('pcp:192.168.1.1'), { mechanism: 'pcp', gateway: '192.168.1.1' });
  assert.deepEqual(parseNatSpec('pinhole'), { mechanism: 'pinhole' });
  assert.deepEqual(parseNatSpec('upnp6'), { mechanism: 'pinhole' });
  assert.deepEqual(parseNatSpec('pinhole:http://[fd77::1]:5000/rootDesc.xml'), { mechanism: 'pinhole', descriptionUrl: 'http://[fd77::1]:5000/rootDesc.xml' });
  assert.deepEqual(parseNatSpec('upnp6:http://192.168.1.1:5000/rootDesc.xml'), { mechanism: 'pinhole', descriptionUrl: 'http://192.168.1.1:5000/rootDesc.xml' });
  for (const spec of ['any6', 'pcp6', 'pcp:[::1]', 'pinhole', 'upnp6:http://[::1]:5000/rootDesc.xml']) assert.ok(isObservable(parseNat(spec)), spec);
});

test('IPv6 specs that are wrong are NatSpecErrors naming the spec', () => {
  for (const spec of ['pcp6:192.168.1.1', 'any6:10.0.0.1', 'pcp:[192.168.1.1]', 'pcp:[fe80::1', 'pcp:[nonsense]', 'pcp:fe80::1%', 'pcp:fe80::1%eth 0', 'pcp:10.0.0.1%eth0', 'pmp:[2001:db8::1]', 'pinhole:ftp://[::1]/x', 'pinhole:not a url']) {
    assert.throws(() => parseNatSpec(spec), (error: unknown) => error instanceof NatSpecError && error.spec === spec, spec);
  }
});

test('pcp:[::1] and any6 reach PCP over IPv6 on loopback (family ipv6), and pinhole:<URL> the firewall service', { skip: await ipv6LoopbackSkip() }, async () => {
  const sim = await startGatewaySimulator({ ipv6: true });
  try {
    const o = sim.discoverOptionsIpv6!;
    const slow = { ...o, timeoutMs: 10_000, pcp: { ...o.pcp, probeTimeoutMs: 10_000 }, upnp: { ...o.upnp, requestTimeoutMs: 10_000 } };
    const nat = await firstValueFrom(parseNat('pcp:[::1]', slow)!);
    assert.deepEqual([nat.kind, nat.family], ['pcp', 'ipv6']);
    const raced = await firstValueFrom(parseNat('any6', { ...slow, backends: ['pcp'] })!);
    assert.equal(raced.family, 'ipv6');
    const pinhole = await firstValueFrom(parseNat(`pinhole:${sim.upnp6!.descriptionUrl}`, slow)!);
    assert.deepEqual([pinhole.kind, pinhole.family], ['upnp-pinhole', 'ipv6']);
    const viaIgd = await firstValueFrom(parseNat('pinhole', { ...slow, pinhole: { ...o.pinhole, ssdpTargets: [] } })!);
    assert.equal(viaIgd.kind, 'upnp-pinhole');
  } finally {
    await sim.close();
  }
});
