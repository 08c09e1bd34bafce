/**
 * discoverNat per family (issue #12): `family: 'ipv6'` races PCP over IPv6 and the UPnP firewall
 * service, and a NAT of the other family never wins (no sockets here: fake probes; the backends
 * on ::1 are in test/testing/simulator-ipv6.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EMPTY, firstValueFrom, NEVER, of } from 'rxjs';
import { extIp } from '../src/core/ext-ip.js';
import type { Nat } from '../src/core/nat.js';
import { discoverNat } from '../src/discover.js';
import { NoGatewayError, ProtocolError } from '../src/errors.js';
import * as rxnat from '../src/index.js';

const v6: Nat = { name: 'fake6', kind: 'pcp', gateway: 'fd77::1', family: 'ipv6', addMapping: () => NEVER, deleteMapping: () => EMPTY, externalIp: () => of('2001:db8::10') };

test("family 'ipv6': a NAT of another family is that probe's failure (reason family), not the winner", async () => {
  const error = await firstValueFrom(discoverNat({ family: 'ipv6', backends: [], timeoutMs: 5000, probes: [{ name: 'v4', nat$: of(extIp('203.0.113.7')) }] })).then(
    () => assert.fail('an IPv4 NAT won IPv6 discovery'),
    (e: unknown) => e,
  );
  assert.ok(error instanceof NoGatewayError);
  const failure = error.failures[0]!.error;
  assert.ok(failure instanceof ProtocolError && failure.reason === 'family', String(failure));
  assert.match(failure.message, /maps ipv4, not ipv6/);
});

test("family 'ipv6': an IPv6 NAT wins over the IPv4 one, whichever answers first", async () => {
  const nat = await firstValueFrom(discoverNat({ family: 'ipv6', backends: [], timeoutMs: 5000, probes: [{ name: 'v4', nat$: of(extIp('203.0.113.7')) }, { name: 'v6', nat$: of(v6) }] }));
  assert.equal(nat, v6);
});

test("family 'ipv4' filters the other way; without family the probes race as before", async () => {
  const error = await firstValueFrom(discoverNat({ family: 'ipv4', backends: [], timeoutMs: 5000, probes: [{ name: 'v6', nat$: of(v6) }] })).catch((e: unknown) => e);
  assert.ok(error instanceof NoGatewayError && (error.failures[0]!.error as ProtocolError).reason === 'family');
  assert.equal(await firstValueFrom(discoverNat({ backends: [], timeoutMs: 5000, probes: [{ name: 'v6', nat$: of(v6) }] })), v6);
});

test("family 'ipv6' races no NAT-PMP (it has no IPv6): backends ['pmp'] alone finds nothing at once", async () => {
  const error = await firstValueFrom(discoverNat({ family: 'ipv6', backends: ['pmp'], timeoutMs: 60_000 })).catch((e: unknown) => e);
  assert.ok(error instanceof NoGatewayError);
  assert.deepEqual(error.failures, []);
});

test('the IPv6 API is exported from the package entry point', () => {
  for (const name of ['upnpPinhole', 'upnpPinholeVia', 'pinholeTokenOf', 'defaultIpv6Gateway', 'clearDefaultIpv6GatewayCache', 'listGlobalIpv6Addresses', 'globalIpv6Addresses', 'firewallControlService', 'firewallErrorName'] as const) {
    assert.equal(typeof rxnat[name], 'function', name);
  }
  assert.equal(rxnat.FIREWALL_ERROR_NAMES[703], 'InboundPinholeNotAllowed');
  assert.equal(rxnat.WAN_IPV6_FIREWALL_CONTROL_1, 'urn:schemas-upnp-org:service:WANIPv6FirewallControl:1');
  assert.deepEqual(rxnat.SSDP_IPV6_LINK_LOCAL_TARGET, { address: 'ff02::c', port: 1900 });
  assert.ok(rxnat.PINHOLE_SEARCH_TARGETS.length > 0 && rxnat.MAX_PINHOLE_PROBES > 0);
});
