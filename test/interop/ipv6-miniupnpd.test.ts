// rxnat's PCP over IPv6 against a real router (issue #12): miniupnpd 2.3.1 with IPv6 in the lab
// (`startLab({ ipv6: true })`: fd77::/64 on the LAN, 2001:db8:77::/64 on the WAN, no NAT66).
// A MAP opens the router's IPv6 firewall for the LAN host: checked on the router side as the
// accept rule miniupnpd puts in `inet filter miniupnpd` while mapped, and gone after the delete.
// rxnat runs inside the lan namespace through test/interop/rxnat-driver.ts (JSON lines).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LAB_IPV6_ADDRESSES } from '../lab/lab.js';
import { labSkip, useLab } from '../lab/require-lab.js';
import { DriverClient, routerPinholes } from './driver-client.js';
import type { MappingGrant } from '../../src/index.js';

const { lan: LAN6, gateway: GW6 } = LAB_IPV6_ADDRESSES;
const DRIVER = 'test/interop/rxnat-driver.ts';





async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) assert.fail(`${what} not seen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const skip = await labSkip();

describe('rxnat PCP over IPv6 against miniupnpd 2.3.1 (firewall openings, no NAT66)', { skip }, () => {
  const lab = useLab({ ipv6: true });

  it('MAP opens the firewall for the LAN host (rule on the router), renew keeps one rule, delete closes it', async (t) => {
    const l = lab();
    const driver = DriverClient.start(l, DRIVER);
    try {
      const nat = await driver.call<{ kind: string; gateway: string }>({ op: 'nat', backend: 'pcp', gateway: GW6, options: { timeoutMs: 4000 } });
      assert.deepEqual([nat.kind, nat.gateway], ['pcp', GW6]);
      const grant = await driver.call<MappingGrant>({ op: 'add', key: 'a', request: { protocol: 'tcp', internalPort: 18080, externalPort: 18080, description: 'v6', lifetimeSeconds: 60, family: 'ipv6' } });
      assert.deepEqual([grant.externalIp, grant.externalPort], [LAN6, 18080], "the router opened the host's own address and port");
      assert.deepEqual(await routerPinholes(l), [{ protocol: 'tcp', port: 18080, address: LAN6 }]);
      await driver.call({ op: 'delete', key: 'a' });
      assert.deepEqual(await routerPinholes(l), [], 'closed by the delete');

      await driver.call({ op: 'add', key: 'b', request: { protocol: 'udp', internalPort: 18081, externalPort: 18081, description: 'v6', lifetimeSeconds: 60, family: 'ipv6' } });
      const renewed = await driver.call<MappingGrant>({ op: 'add', key: 'b', renew: true, request: { protocol: 'udp', internalPort: 18081, externalPort: 18081, description: 'v6', lifetimeSeconds: 120, family: 'ipv6' } });
      assert.equal(renewed.lifetimeSeconds, 120, 'the renewal is granted (same nonce)');
      assert.deepEqual(await routerPinholes(l), [{ protocol: 'udp', port: 18081, address: LAN6 }], 'one rule, not two');
      const deleted = await driver.reply({ op: 'delete', key: 'b' });
      if (deleted.error) {
        // miniupnpd 2.3.1 (fixed in 2.3.6): after a renewal it refuses the delete (NOT_AUTHORIZED)
        // and keeps the pinhole until its lifetime ends. rxnat reports it as the router said.
        assert.equal(deleted.error.resultCode, 2, JSON.stringify(deleted.error));
        assert.deepEqual(await routerPinholes(l), [{ protocol: 'udp', port: 18081, address: LAN6 }]);
        t.diagnostic('delete after renewal refused with NOT_AUTHORIZED (the miniupnpd 2.3.1 bug); the pinhole stays until its lease ends');
      } else {
        assert.deepEqual(await routerPinholes(l), []);
        t.diagnostic('delete after renewal accepted (a miniupnpd without the 2.3.1 bug)');
      }
    } finally {
      await driver.close();
    }
  });

  it('an IPv4 request to the IPv6 PCP gateway is refused (reason family) and opens nothing', async () => {
    const l = lab();
    const driver = DriverClient.start(l, DRIVER);
    try {
      await driver.call({ op: 'nat', backend: 'pcp', gateway: GW6 });
      const reply = await driver.reply({ op: 'add', key: 'x', request: { protocol: 'tcp', internalPort: 18085, externalPort: 18085, description: 'v4', lifetimeSeconds: 60 } });
      assert.match(reply.error?.message ?? '', /ipv4 mapping asked of an ipv6 PCP gateway/);
      assert.equal((await routerPinholes(l)).filter((p) => p.port === 18085).length, 0);
    } finally {
      await driver.close();
    }
  });

  it("family 'ipv6' finds the IPv6 default router from the lan namespace's routing table", async () => {
    const l = lab();
    const driver = DriverClient.start(l, DRIVER);
    try {
      const nat = await driver.call<{ name: string; gateway: string }>({ op: 'nat', backend: 'pcp', options: { family: 'ipv6' } });
      assert.equal(nat.gateway, GW6);
    } finally {
      await driver.close();
    }
  });

  it("a link-local router address with its zone (fe80::…%lan0): sent from the host's global address, so the pinhole is for it", async () => {
    const l = lab();
    let linkLocal = '';
    await waitUntil(
      async () => {
        const shown = await l.execIn('gw', 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'gw-lan', 'scope', 'link']);
        const match = /inet6 (fe80::[0-9a-f:]+)\/64 scope link(?! tentative)/.exec(shown.stdout);
        linkLocal = match?.[1] ?? '';
        return linkLocal !== '';
      },
      10_000,
      "the router's link-local address (after DAD)",
    );
    await waitUntil(
      async () => !/tentative/.test((await l.execIn('lan', 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'lan0', 'scope', 'link'])).stdout),
      10_000,
      "the host's link-local address (after DAD)",
    );
    const driver = DriverClient.start(l, DRIVER);
    try {
      const nat = await driver.call<{ gateway: string }>({ op: 'nat', backend: 'pcp', gateway: `${linkLocal}%lan0` });
      assert.equal(nat.gateway, `${linkLocal}%lan0`);
      const grant = await driver.call<MappingGrant>({ op: 'add', key: 'l', request: { protocol: 'tcp', internalPort: 18086, externalPort: 18086, description: 'll', lifetimeSeconds: 60, family: 'ipv6' } });
      assert.equal(grant.externalIp, LAN6);
      assert.deepEqual((await routerPinholes(l)).filter((p) => p.port === 18086), [{ protocol: 'tcp', port: 18086, address: LAN6 }]);
      await driver.call({ op: 'delete', key: 'l' });
      assert.deepEqual((await routerPinholes(l)).filter((p) => p.port === 18086), []);
    } finally {
      await driver.close();
    }
  });

  it('mapPort: mapped (the host address, doubleNat false) → renewed → stop → the rule is gone', async (t) => {
    const l = lab();
    const driver = DriverClient.start(l, DRIVER);
    try {
      await driver.call({ op: 'nat', backend: 'pcp', gateway: GW6, options: { timeoutMs: 4000 } });
      await driver.call({ op: 'mapPort', key: 'm', request: { protocol: 'udp', internalPort: 18090, family: 'ipv6', lifetimeSeconds: 4 } });
      const mapped = await driver.event('m', (e) => e.event !== 'state' || e.state?.status === 'mapped');
      assert.equal(mapped.event, 'state', JSON.stringify(mapped));
      assert.equal(mapped.state?.externalIp, LAN6);
      assert.equal(mapped.state?.externalPort, 18090);
      assert.equal(mapped.state?.doubleNat, false);
      assert.deepEqual((await routerPinholes(l)).filter((p) => p.port === 18090), [{ protocol: 'udp', port: 18090, address: LAN6 }]);
      const renewed = await driver.event('m', (e) => e.event !== 'state' || (e.state?.status === 'mapped' && e.state.renewals >= 1));
      assert.equal(renewed.event, 'state', JSON.stringify(renewed));
      assert.deepEqual((await routerPinholes(l)).filter((p) => p.port === 18090).length, 1, 'still one rule after the renewal');
      await driver.call({ op: 'stop', key: 'm' });
      const last = await driver.event('m', (e) => e.event === 'state' && e.state?.status === 'unmapped');
      await driver.event('m', (e) => e.event === 'complete');
      // miniupnpd 2.3.1 refuses the delete after a renewal (see above): the stream says so
      // (UnconfirmedDeleteError), and the rule lasts until the 4 s lease ends.
      if (last.state?.error) assert.match(last.state.error.name, /UnconfirmedDelete/);
      t.diagnostic(`last state after stop: unmapped, error ${last.state?.error?.name ?? 'none'}`);
      await waitUntil(async () => (await routerPinholes(l)).every((p) => p.port !== 18090), 20_000, 'the rule gone after stop (delete, or the lease ending)');
    } finally {
      await driver.close();
    }
  });
});
