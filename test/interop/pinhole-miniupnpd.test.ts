// rxnat's UPnP IPv6 pinholes (WANIPv6FirewallControl:1, issue #12) against a real router:
// miniupnpd 2.3.1 with IPv6 in the lab (`startLab({ ipv6: true })`: fd77::/64 on the LAN,
// 2001:db8:77::/64 on the WAN, no NAT66). Each pinhole is checked on the router side as the
// accept rule miniupnpd writes in `inet filter miniupnpd`, while open and after the delete.
// Skipped while the lab has no IPv6 option. rxnat runs in the lan namespace through
// test/interop/pinhole-driver.ts (JSON lines over stdin/stdout).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as labModule from '../lab/lab.js';
import type { LabOptions } from '../lab/lab.js';
import { labSkip, useLab } from '../lab/require-lab.js';
import { DriverClient, routerPinholes } from './driver-client.js';
import type { MappingGrant } from '../../src/index.js';

const DRIVER = 'test/interop/pinhole-driver.ts';
/** The IPv6 lab's addresses, once bench/lib/lab.ts has them. */
const V6 = (labModule as unknown as { LAB_IPV6_ADDRESSES?: { readonly lan: string; readonly gateway: string } }).LAB_IPV6_ADDRESSES;
const DESCRIPTION_V6 = V6 ? `http://[${V6.gateway}]:5000/rootDesc.xml` : '';
const DESCRIPTION_V4 = `http://${labModule.LAB_ADDRESSES.gateway}:5000/rootDesc.xml`;





async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`${what} not seen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const request = (protocol: 'tcp' | 'udp', port: number, lifetimeSeconds: number): Record<string, unknown> => ({
  protocol,
  internalPort: port,
  externalPort: port,
  description: 'rxnat pinhole',
  lifetimeSeconds,
});

const skip = V6 === undefined ? 'the gateway lab has no IPv6 yet (startLab({ ipv6: true }), bench/lib/lab.ts)' : await labSkip();

describe('rxnat UPnP pinholes against miniupnpd 2.3.1 (WANIPv6FirewallControl:1)', { skip }, () => {
  const lab = useLab({ ipv6: true } as unknown as LabOptions);

  it('over IPv6: AddPinhole opens the rule for the LAN host, UpdatePinhole keeps one rule, DeletePinhole closes it', async () => {
    const l = lab();
    const driver = DriverClient.start(l, DRIVER);
    try {
      const nat = await driver.call<{ kind: string; endpoint: string; internalClient: string; firewallStatus: unknown }>({
        op: 'nat',
        via: 'description',
        options: { descriptionUrl: DESCRIPTION_V6 },
      });
      assert.deepEqual([nat.kind, nat.endpoint, nat.internalClient], ['upnp-pinhole', `http://[${V6!.gateway}]:5000/ctl/IP6FCtl`, V6!.lan]);
      assert.deepEqual(nat.firewallStatus, { firewallEnabled: true, inboundPinholeAllowed: true });
      const grant = await driver.call<MappingGrant>({ op: 'add', key: 'a', request: request('tcp', 18080, 60) });
      assert.deepEqual([grant.externalIp, grant.externalPort, grant.lifetimeSeconds], [V6!.lan, 18080, 60]);
      assert.deepEqual(await routerPinholes(l), [{ protocol: 'tcp', port: 18080, address: V6!.lan }]);
      const renewed = await driver.call<MappingGrant>({ op: 'add', key: 'a', renew: true, request: request('tcp', 18080, 120) });
      assert.deepEqual(renewed.token, grant.token, 'the same UniqueID');
      assert.deepEqual(await routerPinholes(l), [{ protocol: 'tcp', port: 18080, address: V6!.lan }]);
      await driver.call({ op: 'delete', key: 'a' });
      assert.deepEqual(await routerPinholes(l), [], 'closed by DeletePinhole');
      // miniupnpd's rule: ports below 1024 are not for unauthenticated control points.
      const refused = await driver.reply({ op: 'add', key: 'b', request: request('udp', 80, 60) });
      assert.deepEqual([refused.error?.name, refused.error?.resultCode, refused.error?.resultName], ['GatewayError', 606, 'ActionNotAuthorized']);
    } finally {
      await driver.close();
    }
  });

  it('through the IGD found over IPv4: SOAP over IPv4 gets 606 (miniupnpd wants the InternalClient itself); with controlHost it opens', async () => {
    const l = lab();
    const driver = DriverClient.start(l, DRIVER);
    try {
      await driver.call({ op: 'nat', via: 'igd', descriptionUrl: DESCRIPTION_V4, options: { internalClient: V6!.lan } });
      const refused = await driver.reply({ op: 'add', key: 'a', request: request('udp', 18081, 60) });
      assert.deepEqual([refused.error?.resultCode, refused.error?.resultName], [606, 'ActionNotAuthorized']);
      assert.deepEqual(await routerPinholes(l), []);

      const nat = await driver.call<{ endpoint: string; internalClient: string; gateway: string }>({ op: 'nat', via: 'igd', descriptionUrl: DESCRIPTION_V4, options: { controlHost: V6!.gateway } });
      assert.deepEqual([nat.gateway, nat.endpoint, nat.internalClient], [DESCRIPTION_V4, `http://[${V6!.gateway}]:5000/ctl/IP6FCtl`, V6!.lan]);
      await driver.call({ op: 'add', key: 'a', request: request('udp', 18081, 60) });
      assert.deepEqual(await routerPinholes(l), [{ protocol: 'udp', port: 18081, address: V6!.lan }]);
      await driver.call({ op: 'delete', key: 'a' });
      assert.deepEqual(await routerPinholes(l), []);
    } finally {
      await driver.close();
    }
  });

  it('mapPort over the pinhole NAT: mapped (the host\'s own address and port) → renewed → stop → rule gone', async () => {
    const l = lab();
    const driver = DriverClient.start(l, DRIVER);
    try {
      await driver.call({ op: 'nat', via: 'description', options: { descriptionUrl: DESCRIPTION_V6 } });
      await driver.call({ op: 'mapPort', key: 's', request: { protocol: 'tcp', internalPort: 18082, lifetimeSeconds: 3 } });
      const mapped = (await driver.event('s', (e) => e.state?.status === 'mapped')).state!;
      assert.deepEqual([mapped.externalIp, mapped.externalPort, mapped.doubleNat], [V6!.lan, 18082, false]);
      assert.deepEqual(await routerPinholes(l), [{ protocol: 'tcp', port: 18082, address: V6!.lan }]);
      await driver.event('s', (e) => e.state?.status === 'mapped' && e.state.renewals >= 1);
      assert.equal((await routerPinholes(l)).length, 1, 'renewed in place');
      await driver.call({ op: 'stop', key: 's' });
      const last = await driver.event('s', (e) => e.state?.status === 'unmapped');
      assert.equal(last.state!.error, null, 'the delete was confirmed');
      await driver.event('s', (e) => e.event === 'complete');
      await waitUntil(async () => (await routerPinholes(l)).length === 0, 5_000, 'the rule removed');
    } finally {
      await driver.close();
    }
  });
});
