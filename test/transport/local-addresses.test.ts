/** Choosing this host's global IPv6 source address on an interface (for a link-local router). */
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { test } from 'node:test';
import { firstValueFrom } from 'rxjs';
import { globalIpv6Addresses, listGlobalIpv6Addresses } from '../../src/transport/local-addresses.js';

const v6 = (address: string, internal = false): { address: string; family: string; internal: boolean } => ({ address, family: 'IPv6', internal });

test('global addresses first, then unique-local; link-local, loopback, IPv4 and IPv4-mapped left out', () => {
  const interfaces = {
    eth0: [
      v6('fe80::1c2d:3eff:fe4f:5a6b%eth0'),
      v6('fd00::10'),
      { address: '192.168.1.10', family: 'IPv4', internal: false },
      v6('2001:db8::10'),
      v6('::ffff:192.0.2.1'),
      v6('fd00::11'),
      { address: '2001:db8::11', family: 6, internal: false },
    ],
    lo: [v6('::1', true)],
  };
  assert.deepEqual(globalIpv6Addresses(interfaces, 'eth0'), ['2001:db8::10', '2001:db8::11', 'fd00::10', 'fd00::11']);
  assert.deepEqual(globalIpv6Addresses(interfaces, 'lo'), []);
  assert.deepEqual(globalIpv6Addresses(interfaces, 'wlan9'), []);
});

test('an internal interface contributes nothing, whatever its addresses', () => {
  assert.deepEqual(globalIpv6Addresses({ tun0: [v6('2001:db8::99', true)] }, 'tun0'), []);
});

test('listGlobalIpv6Addresses reads this host (read only)', async () => {
  const [name] = Object.keys(networkInterfaces());
  assert.ok(name !== undefined);
  assert.deepEqual(await firstValueFrom(listGlobalIpv6Addresses(name)), globalIpv6Addresses(networkInterfaces(), name));
});
