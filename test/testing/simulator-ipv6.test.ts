/**
 * The gateway simulator as an IPv6 gateway (`ipv6: true`, issue #12): PCP over IPv6 and the IGD's
 * firewall service on `::1`, and `discoverOptionsIpv6`, which finds them and nothing else.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { filter, firstValueFrom, Subject } from 'rxjs';
import { mapPort, type MappingState } from '../../src/core/map-port.js';
import type { Nat } from '../../src/core/nat.js';
import { discoverNat } from '../../src/discover.js';
import { startGatewaySimulator, type GatewaySimulator } from '../../src/testing/simulator.js';
import { ipv6LoopbackSkip } from '../support/ipv6.js';
import { waitFor } from '../support/net.js';

const skip = await ipv6LoopbackSkip();
/** Deadlines no loaded machine misses on loopback: these tests are about what is opened, not when. */
const SLOW = { timeoutMs: 10_000 } as const;

/** discoverOptionsIpv6 with generous deadlines, narrowed to `backends`. */
function options(sim: GatewaySimulator, backends: readonly ('pcp' | 'upnp')[], pinhole: object = {}) {
  const base = sim.discoverOptionsIpv6!;
  return {
    ...base,
    ...SLOW,
    backends,
    pcp: { ...base.pcp, probeTimeoutMs: 10_000, timeoutMs: 10_000 },
    upnp: { ...base.upnp, requestTimeoutMs: 10_000 },
    pinhole: { ...base.pinhole, requestTimeoutMs: 10_000, ...pinhole },
  };
}

/** Maps `port` on `nat$` until mapped, then stops and waits for the stream to complete. */
async function mapAndStop(nat$: Parameters<typeof mapPort>[0], port: number, whileMapped: (state: MappingState) => void): Promise<void> {
  const stop = new Subject<void>();
  const states = mapPort(nat$, { protocol: 'tcp', internalPort: port, family: 'ipv6', lifetimeSeconds: 600 }, { stop });
  const done = new Promise<void>((resolve, reject) => states.subscribe({ complete: resolve, error: reject }));
  try {
    whileMapped(await firstValueFrom(states.pipe(filter((s) => s.status === 'mapped'))));
  } finally {
    stop.next();
    await done;
  }
}

describe('startGatewaySimulator({ ipv6: true })', { skip }, () => {
  let sim: GatewaySimulator;
  before(async () => {
    sim = await startGatewaySimulator({ ipv6: true });
  });
  after(() => sim.close());

  it('serves PCP on ::1 and the IGD on ::1 at the IPv4 IGD ports, and IPv6 discovery options on loopback only', () => {
    assert.equal(sim.pcp6?.address, '::1');
    assert.equal(sim.pcp6.ipv6Table, sim.ipv6Table);
    assert.equal(sim.upnp6?.httpPort, sim.upnp.httpPort);
    assert.equal(sim.upnp6.ssdpPort, sim.upnp.ssdpPort);
    assert.equal(sim.upnp6.pinholes, sim.pinholes);
    assert.equal(sim.upnp.pinholes, sim.pinholes);
    assert.match(sim.upnp6.firewallControlUrl ?? '', /^http:\/\/\[::1\]:\d+\/ctl\/IP6FCtl$/);
    assert.deepEqual(sim.discoverOptionsIpv6, {
      family: 'ipv6',
      gateway: '::1',
      pcp: { port: sim.pcp6.port, localAddress: '::1' },
      upnp: { ssdpTargets: [sim.ssdpTarget], localAddress: '127.0.0.1' },
      pinhole: { controlHost: '::1', localAddress: '::1', internalClient: '2001:db8::10', ssdpTargets: [{ address: '::1', port: sim.upnp.ssdpPort }] },
    });
  });

  it('PCP over IPv6: discoverNat finds pcp([::1]); a mapping opens the IPv6 table and the stop closes it', async () => {
    const nat = await firstValueFrom(discoverNat(options(sim, ['pcp'])));
    assert.deepEqual([nat.kind, nat.family, nat.gateway], ['pcp', 'ipv6', '::1']);
    await mapAndStop(discoverNat(options(sim, ['pcp'])), 18_081, (state) => {
      assert.equal(state.backend, 'pcp(::1)');
      assert.deepEqual([state.externalIp, state.externalPort], ['2001:db8::10', 18_081]);
      assert.deepEqual(sim.ipv6Table.list().map((m) => [m.protocol, m.internalClient, m.internalPort]), [['tcp', '::1', 18_081]]);
    });
    await waitFor(() => sim.ipv6Table.list().length === 0, 10_000, 'the opening deleted');
  });

  it('pinholes through the IGD found over 127.0.0.1, its firewall service reached at [::1] (no IPv6 SSDP)', async () => {
    const searches = sim.upnp6!.counters['M-SEARCH'] ?? 0;
    const nat = await firstValueFrom(discoverNat(options(sim, ['upnp'], { ssdpTargets: [] })));
    assert.deepEqual([nat.kind, nat.family, nat.gateway], ['upnp-pinhole', 'ipv6', sim.descriptionUrl]);
    assert.equal((sim.upnp6!.counters['M-SEARCH'] ?? 0) - searches, 0, 'no IPv6 M-SEARCH');
    await mapAndStop(discoverNat(options(sim, ['upnp'], { ssdpTargets: [] })), 18_082, (state) => {
      assert.equal(state.backend, 'upnp-pinhole([::1])');
      assert.deepEqual([state.externalIp, state.externalPort], ['2001:db8::10', 18_082]);
      assert.deepEqual(sim.pinholes.list().map((p) => [p.protocol, p.internalClient, p.internalPort]), [['tcp', '2001:db8::10', 18_082]]);
    });
    await waitFor(() => sim.pinholes.list().length === 0, 10_000, 'the pinhole deleted');
  });

  it('pinholes found by an IPv6 M-SEARCH to [::1] alone (the IPv4 IGD out of reach)', async () => {
    const base = options(sim, ['upnp']);
    const nat: Nat = await firstValueFrom(discoverNat({ ...base, upnp: { ...base.upnp, ssdpTargets: [{ address: '127.0.0.1', port: 9 }], timeoutMs: 500 } }));
    assert.equal(nat.kind, 'upnp-pinhole');
    assert.equal(nat.gateway, `http://[::1]:${sim.upnp6!.httpPort}/rootDesc.xml`);
    assert.ok((sim.upnp6!.counters['M-SEARCH'] ?? 0) > 0);
  });

  it('the whole race (PCP and the firewall service) finds an IPv6 gateway; a reboot loses the pinholes', async () => {
    const nat = await firstValueFrom(discoverNat(options(sim, ['pcp', 'upnp'])));
    assert.equal(nat.family, 'ipv6');
    assert.ok(nat.kind === 'pcp' || nat.kind === 'upnp-pinhole', nat.kind);
    sim.pinholes.add({ remoteHost: '', remotePort: 0, internalClient: '::1', internalPort: 18_083, protocol: 'udp', leaseTimeSeconds: 600 });
    assert.equal(sim.pinholes.list().length, 1);
    await sim.reboot();
    assert.equal(sim.pinholes.list().length, 0);
  });
});

describe('startGatewaySimulator() without ipv6', () => {
  it('has no IPv6 servers and no IPv6 discovery options', async () => {
    const sim = await startGatewaySimulator();
    try {
      assert.equal(sim.pcp6, undefined);
      assert.equal(sim.upnp6, undefined);
      assert.equal(sim.discoverOptionsIpv6, undefined);
    } finally {
      await sim.close();
    }
  });
});
