// The rxnat command over IPv6 against miniupnpd 2.3.1 in the IPv6 lab, run inside the lan
// namespace as a user would run it: map --ipv6 through PCP over IPv6 and through UPnP pinholes
// (the description over IPv6, and the IGD found over IPv4 with --control-host), the router's
// nftables accept rule present while map runs and gone after SIGINT; list --pinholes. No
// multicast: every spec names its router or description.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LAB_DESCRIPTION_URL, LAB_IPV6_ADDRESSES } from '../lab/lab.js';
import type { Lab } from '../lab/lab.js';
import { labSkip, useLab } from '../lab/require-lab.js';

const { lan: LAN6, gateway: GW6 } = LAB_IPV6_ADDRESSES;
const CLI = 'src/cli/main.ts';
const DESCRIPTION6 = `http://[${GW6}]:5000/rootDesc.xml`;

/** Whether the router has an IPv6 accept rule for `port` to the LAN host (`inet filter miniupnpd`). */
async function ruleFor(lab: Lab, port: number): Promise<boolean> {
  const result = await lab.execIn('gw', 'nft', ['list', 'chain', 'inet', 'filter', 'miniupnpd']);
  assert.equal(result.code, 0, result.stderr);
  // fd77::10 as the 128-bit destination address the rule matches (32 hex digits).
  return new RegExp(`dport ${port} @nh,192,128 0xfd77${'0'.repeat(26)}10 `).test(result.stdout);
}

const skip = await labSkip();

describe('the rxnat command over IPv6 against miniupnpd', { skip }, () => {
  const lab = useLab({ ipv6: true });

  for (const [label, port, args] of [
    ['--ipv6 --nat pcp6 (the IPv6 default router)', 18_180, ['--ipv6', '--nat', 'pcp6']],
    ['--nat pinhole:<IPv6 description URL>', 18_181, ['--nat', `pinhole:${DESCRIPTION6}`]],
    ['--ipv6 --nat upnp:<IPv4 description URL> --control-host', 18_182, ['--ipv6', '--nat', `upnp:${LAB_DESCRIPTION_URL}`, '--control-host', GW6]],
  ] as const) {
    it(`map tcp ${port} ${label}: the host's address is opened while map runs, closed after SIGINT`, async () => {
      const l = lab();
      const map = l.spawnNodeIn('lan', CLI, ['map', 'tcp', String(port), ...args, '--json']);
      try {
        for (;;) {
          const state = await map.next<{ status: string; externalPort: number; externalIp: string; doubleNat: boolean }>(15_000);
          if (state.status === 'mapped') {
            assert.deepEqual([state.externalIp, state.externalPort, state.doubleNat], [LAN6, port, false]);
            break;
          }
        }
        assert.ok(await ruleFor(l, port), 'accept rule while map runs');
        assert.ok(map.pid !== undefined, 'map runs');
        process.kill(map.pid, 'SIGINT');
        const done = await map.done(15_000);
        assert.equal(done.code, 0, done.stderr);
        assert.equal(await ruleFor(l, port), false, 'rule gone after SIGINT');
      } finally {
        map.kill();
      }
    });
  }

  it('list --pinholes: the firewall is on and lets pinholes in; no router list, said so', async () => {
    const result = await lab().runNodeIn('lan', CLI, ['list', '--pinholes', '--nat', `pinhole:${DESCRIPTION6}`], { timeoutMs: 20_000 });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, `firewall upnp-pinhole([${GW6}]): on, inbound pinholes allowed\npinholes held by this process: none\n`);
    assert.match(result.stderr, /WANIPv6FirewallControl has no action that lists pinholes/);
  });
});
