/**
 * Following the network for IPv6, in virtual time over a fake reader: a new IPv6 default router
 * or a new prefix rediscovers (the same gateway from a new address is emitted again), a flapping
 * IPv6 route is rediscovered once, IPv6 off changes nothing, and
 * `discoverNat({ family: 'ipv6', followNetwork })` aims PCP over IPv6 at the router the watch
 * read (a fake network: no datagram leaves the process).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defer, type Observable, of, throwError } from 'rxjs';
import { silentLogger } from '../src/core/logger.js';
import type { Nat } from '../src/core/nat.js';
import { NoGatewayError } from '../src/errors.js';
import { discoverNat } from '../src/discover.js';
import { followNetwork } from '../src/follow-network.js';
import type { InterfaceAddress, NetworkReader, NetworkSnapshot } from '../src/transport/network-watch.js';
import { recordingNat } from './facade/fake-nats.js';
import { FakeNetwork } from './support/fake-network.js';
import { VirtualClock } from './support/virtual-clock.js';

const HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';
/** `/proc/net/route` with a default route via 192.168.77.1 on lan0 (little-endian). */
const ROUTE4 = `${HEADER}\nlan0\t00000000\t014DA8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n`;
const ZERO = '0'.repeat(32);
/** The kernel's hex of `fe80::<last>` and of `fd77::<last>`. */
const HEX = new Map([
  ['fe80::1', `fe80${'0'.repeat(27)}1`],
  ['fe80::2', `fe80${'0'.repeat(27)}2`],
  ['fd77::1', `fd77${'0'.repeat(27)}1`],
]);
/** `/proc/net/ipv6_route` with a default route via `router` on lan0. */
const table6 = (router: string): string => `${ZERO} 00 ${ZERO} 00 ${HEX.get(router)!} 00000400 00000001 00000000 00000003     lan0\n`;

const v6 = (address: string): InterfaceAddress => ({ address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', internal: false });
const interfaces = (...addresses: string[]): Record<string, readonly InterfaceAddress[]> => ({
  lan0: [{ address: '192.168.77.10', netmask: '255.255.255.0', family: 'IPv4', internal: false }, v6('fe80::10'), ...addresses.map(v6)],
});

/** The reader's state, changed by the tests; `route6Reads` counts the reads of the IPv6 table. */
class Network {
  router: string | null = 'fe80::1';
  addresses = ['2001:db8:1::10'];
  route6Reads = 0;

  reader(): Partial<NetworkReader> {
    return {
      platform: 'linux',
      byteOrder: 'LE',
      readRouteTable: () => of(ROUTE4),
      readIpv6RouteTable: () =>
        defer(() => {
          this.route6Reads++;
          return this.router === null ? throwError(() => Object.assign(new Error('ENOENT'), { code: 'ENOENT' })) : of(table6(this.router));
        }),
      lookupDefaultIpv6Gateway: () => throwError(() => new Error('the child-process lookup was used on Linux')),
      networkInterfaces: () => interfaces(...this.addresses),
    };
  }
}

/** A discovery that finds one fake NAT per IPv6 router (every call logged with the snapshot). */
function routers(clock: VirtualClock): { nats: Map<string, Nat>; calls: Array<[number, NetworkSnapshot]>; discover: (s: NetworkSnapshot) => Observable<Nat> } {
  const nats = new Map<string, Nat>([
    ['fe80::1%lan0', recordingNat('2001:db8:ff::1')],
    ['fe80::2%lan0', recordingNat('2001:db8:ff::2')],
  ]);
  const calls: Array<[number, NetworkSnapshot]> = [];
  const discover = (s: NetworkSnapshot): Observable<Nat> =>
    defer(() => {
      calls.push([clock.now(), s]);
      const nat = nats.get(s.defaultIpv6Gateway?.gateway ?? '-');
      return nat ? of(nat) : throwError(() => new NoGatewayError([]));
    });
  return { nats, calls, discover };
}

const follow = (clock: VirtualClock, network: Network, periodMs = 2000) => ({
  watchOptions: { reader: network.reader(), ipv6: true, periodMs },
  scheduler: clock,
  logger: silentLogger,
  random: () => 0.5,
});

describe('followNetwork over networkWatch({ ipv6: true })', () => {
  it('a new IPv6 router rediscovers; a new prefix on the same router emits its NAT again (the mapping must move to the new address)', () => {
    const clock = new VirtualClock();
    const network = new Network();
    const { nats, calls, discover } = routers(clock);
    const emitted: Array<[number, Nat]> = [];
    const subscription = followNetwork(discover, follow(clock, network)).subscribe((nat) => emitted.push([clock.now(), nat]));
    clock.advance(3000);
    network.router = 'fe80::2'; // the IPv4 view stays the same
    clock.advance(4000); // seen at 4 s, settled at 4.5 s
    network.addresses = ['2001:db8:2::10']; // the ISP's new prefix
    clock.advance(4000); // seen at 8 s, settled at 8.5 s
    subscription.unsubscribe();
    assert.deepEqual(
      calls.map(([at, s]) => [at, s.defaultIpv6Gateway?.gateway, s.ipv6Addresses]),
      [
        [0, 'fe80::1%lan0', ['2001:db8:1::10']],
        [4500, 'fe80::2%lan0', ['2001:db8:1::10']],
        [8500, 'fe80::2%lan0', ['2001:db8:2::10']],
      ],
    );
    assert.deepEqual(emitted, [
      [0, nats.get('fe80::1%lan0')],
      [4500, nats.get('fe80::2%lan0')],
      [8500, nats.get('fe80::2%lan0')],
    ]);
  });

  it('a flapping IPv6 route is rediscovered once, where it settles', () => {
    const clock = new VirtualClock();
    const network = new Network();
    const { calls, discover } = routers(clock);
    const subscription = followNetwork(discover, follow(clock, network, 100)).subscribe();
    clock.advance(1000);
    for (let i = 0; i < 20; i++) {
      network.router = i % 2 === 0 ? 'fe80::2' : 'fe80::1'; // a new router at each 100 ms poll for 2 s
      clock.advance(100);
    }
    network.router = 'fe80::2'; // where it settles: seen at the 3.1 s poll
    clock.advance(3000);
    subscription.unsubscribe();
    assert.deepEqual(
      calls.map(([at, s]) => [at, s.defaultIpv6Gateway?.gateway]),
      [
        [0, 'fe80::1%lan0'],
        [3600, 'fe80::2%lan0'],
      ],
    );
  });

  it('IPv6 off in the kernel, the IPv4 view unchanged: one discovery, no failed reading; unwatched, IPv6 is never read', () => {
    const clock = new VirtualClock();
    const network = new Network();
    network.router = null;
    network.addresses = [];
    const seen: NetworkSnapshot[] = [];
    const discover = (s: NetworkSnapshot): Observable<Nat> => {
      seen.push(s);
      return of(recordingNat());
    };
    const watched = followNetwork(discover, follow(clock, network)).subscribe();
    clock.advance(10_000);
    watched.unsubscribe();
    assert.equal(seen.length, 1);
    assert.deepEqual(seen[0], { defaultGateway: { gateway: '192.168.77.1', interface: 'lan0' }, localAddress: '192.168.77.10', defaultIpv6Gateway: null, ipv6Addresses: [] });
    assert.equal(network.route6Reads, 6, 'the IPv6 table was not read at each 2 s poll');

    const unwatched = new Network();
    seen.length = 0;
    const subscription = followNetwork(discover, { ...follow(clock, unwatched), watchOptions: { reader: unwatched.reader() } }).subscribe();
    clock.advance(3000);
    unwatched.router = 'fe80::2';
    unwatched.addresses = ['2001:db8:2::10'];
    clock.advance(7000);
    subscription.unsubscribe();
    assert.equal(seen.length, 1);
    assert.equal(unwatched.route6Reads, 0, 'IPv6 read without ipv6');
  });
});

describe("discoverNat({ family: 'ipv6', followNetwork })", () => {
  /** Where the PCP probes went, in order, each address once (a fake network: nothing is sent). */
  const probed = (net: FakeNetwork): string[] => [...new Set(net.sent.map((d) => d.to.address))];

  it('aims PCP over IPv6 at the IPv6 router the watch read, and at the new one after a change', () => {
    const clock = new VirtualClock();
    const net = new FakeNetwork(clock, '2001:db8:1::10');
    const network = new Network();
    // Were the watched router not passed, PCP would ask the transport for one: this one.
    const transport = net.transport('192.168.77.1', { defaultIpv6Gateway: () => of({ gateway: 'fd00:bad::1', interface: 'lan0' }), globalIpv6Addresses: () => of(['2001:db8:1::10']) });
    const errors: unknown[] = [];
    const subscription = discoverNat({
      family: 'ipv6',
      backends: ['pcp'],
      timeoutMs: 60_000,
      pcp: { transport, probeTimeoutMs: 60_000 },
      scheduler: clock,
      logger: silentLogger,
      followNetwork: { watchOptions: { reader: network.reader() } },
    }).subscribe({ error: (e: unknown) => errors.push(e) });
    clock.advance(1000);
    assert.deepEqual(probed(net), ['fe80::1%lan0']);
    network.router = 'fd77::1';
    clock.advance(3000);
    subscription.unsubscribe();
    assert.deepEqual(errors, []);
    assert.deepEqual(probed(net), ['fe80::1%lan0', 'fd77::1']);
    assert.ok(net.sent.every((d) => d.to.port === 5351));
  });

  it('a gateway given by the caller wins over the watched router', () => {
    const clock = new VirtualClock();
    const net = new FakeNetwork(clock, '2001:db8:1::10');
    const network = new Network();
    const errors: unknown[] = [];
    const subscription = discoverNat({
      family: 'ipv6',
      gateway: 'fd77::1',
      backends: ['pcp'],
      timeoutMs: 60_000,
      pcp: { transport: net.transport(), probeTimeoutMs: 60_000 },
      scheduler: clock,
      logger: silentLogger,
      followNetwork: { watchOptions: { reader: network.reader() } },
    }).subscribe({ error: (e: unknown) => errors.push(e) });
    clock.advance(1000);
    network.router = 'fe80::2';
    clock.advance(3000);
    subscription.unsubscribe();
    assert.deepEqual(errors, []);
    assert.deepEqual(probed(net), ['fd77::1']);
  });
});
