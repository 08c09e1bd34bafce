/**
 * The network watch's IPv6 view (`ipv6: true`), in virtual time over a fake reader: the IPv6
 * default router from `/proc/net/ipv6_route` (a link-local one with its zone) and the global
 * addresses of its interface, what changes are emitted (a new router, a new prefix, not a
 * link-local address), IPv6 off in the kernel, the fallback lookup elsewhere, and that without
 * `ipv6` nothing of IPv6 is read.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NEVER, type Observable, of, throwError } from 'rxjs';
import { DefaultGatewayError } from '../../src/errors.js';
import type { DefaultGateway } from '../../src/transport/default-gateway.js';
import { networkWatch, snapshotKey, type InterfaceAddress, type NetworkReader, type NetworkSnapshot } from '../../src/transport/network-watch.js';
import { VirtualClock } from '../support/virtual-clock.js';

const HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';
/** `/proc/net/route` with a default route via 192.168.77.1 on lan0 (little-endian). */
const ROUTE4 = `${HEADER}\nlan0\t00000000\t014DA8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\nlan0\t004DA8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n`;

/** `fe80::1` → 32 hex digits, as the kernel prints an IPv6 address. */
function hex6(address: string): string {
  const [head = '', tail = ''] = address.includes('::') ? address.split('::') : [address, ''];
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return groups.map((g) => g.padStart(4, '0')).join('');
}

/** One `/proc/net/ipv6_route` line. */
function route6(destination: string, prefixLength: number, nextHop: string, flags: number, iface: string, metric = 1024): string {
  const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');
  return `${hex6(destination)} ${hex(prefixLength, 2)} ${hex6('::')} 00 ${hex6(nextHop)} ${hex(metric, 8)} 00000001 00000000 ${hex(flags, 8)} ${iface.padStart(8)}`;
}

/** A `/proc/net/ipv6_route` text: the default route via `router` on `iface` (none when `router` is null), the on-link prefix and the kernel's `lo` catch-all. */
function table6(router: string | null, iface = 'lan0'): string {
  const rows = [route6('2001:db8:1::', 64, '::', 0x0001, iface, 256)];
  if (router !== null) rows.push(route6('::', 0, router, 0x0003, iface));
  rows.push(route6('::', 0, '::', 0x00200200, 'lo', 0xffffffff));
  return `${rows.join('\n')}\n`;
}

const v4 = (address: string): InterfaceAddress => ({ address, netmask: '255.255.255.0', family: 'IPv4', internal: false });
const v6 = (address: string): InterfaceAddress => ({ address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', internal: false });
const lan0 = (...ipv6: string[]): Record<string, readonly InterfaceAddress[]> => ({
  lo: [{ address: '::1', netmask: 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', family: 'IPv6', internal: true }],
  lan0: [v4('192.168.77.10'), v6('fe80::10'), ...ipv6.map(v6)],
  lan1: [v6('2001:db8:99::5')],
});

/** A reader whose answers a test changes as it goes, every call counted. */
class FakeReader {
  route: () => Observable<string> = () => of(ROUTE4);
  route6: () => Observable<string> = () => of(table6('fe80::1'));
  fallback: () => Observable<DefaultGateway> = () => of({ gateway: '192.168.77.1', interface: 'lan0' });
  fallback6: () => Observable<DefaultGateway> = () => of({ gateway: 'fe80::1%lan0', interface: 'lan0' });
  interfaces: Record<string, readonly InterfaceAddress[]> = lan0('2001:db8:1::10');
  readonly calls = { route: [] as number[], route6: [] as number[], fallback: [] as number[], fallback6: [] as number[], interfaces: [] as number[] };
  constructor(
    private readonly clock: VirtualClock,
    readonly platform: NodeJS.Platform = 'linux',
  ) {}

  reader(): Partial<NetworkReader> {
    const count = <T>(calls: number[], answer: () => Observable<T>) => (): Observable<T> => {
      calls.push(this.clock.now());
      return answer();
    };
    return {
      platform: this.platform,
      byteOrder: 'LE',
      readRouteTable: count(this.calls.route, () => this.route()),
      readIpv6RouteTable: count(this.calls.route6, () => this.route6()),
      lookupDefaultGateway: count(this.calls.fallback, () => this.fallback()),
      lookupDefaultIpv6Gateway: count(this.calls.fallback6, () => this.fallback6()),
      networkInterfaces: () => {
        this.calls.interfaces.push(this.clock.now());
        return this.interfaces;
      },
    };
  }
}

function watch(clock: VirtualClock, fake: FakeReader, ipv6 = true): { seen: Array<[number, string]>; snapshots: NetworkSnapshot[]; stop: () => void } {
  const seen: Array<[number, string]> = [];
  const snapshots: NetworkSnapshot[] = [];
  const subscription = networkWatch({ scheduler: clock, reader: fake.reader(), ipv6 }).subscribe({
    next: (s) => {
      snapshots.push(s);
      seen.push([clock.now(), snapshotKey(s)]);
    },
    error: (e: unknown) => assert.fail(`the watch errored: ${String(e)}`),
    complete: () => assert.fail('the watch completed'),
  });
  return { seen, snapshots, stop: () => subscription.unsubscribe() };
}

const IPV4 = '192.168.77.1 lan0 192.168.77.10';

describe('networkWatch({ ipv6: true })', () => {
  it('reads the IPv6 default router (link-local, zoned) and the global addresses of its interface, then emits only changes', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock);
    const { seen, snapshots, stop } = watch(clock, fake);
    assert.deepEqual(snapshots[0], {
      defaultGateway: { gateway: '192.168.77.1', interface: 'lan0' },
      localAddress: '192.168.77.10',
      defaultIpv6Gateway: { gateway: 'fe80::1%lan0', interface: 'lan0' },
      ipv6Addresses: ['2001:db8:1::10'],
    });
    assert.deepEqual(seen, [[0, `${IPV4} fe80::1%lan0 lan0 2001:db8:1::10`]]);
    clock.advance(5000);
    assert.equal(seen.length, 1, 'the same network re-read is not a change');
    // Another IPv6 router (a new one advertised), the IPv4 view unchanged: a change.
    fake.route6 = () => of(table6('fe80::2'));
    clock.advance(2000);
    assert.deepEqual(seen.slice(1), [[6000, `${IPV4} fe80::2%lan0 lan0 2001:db8:1::10`]]);
    // The ISP hands out a new prefix: the old address goes, the new one comes (sorted, each once).
    fake.interfaces = lan0('2001:db8:2::10', '2001:db8:2::10', 'fd00:77::10');
    clock.advance(2000);
    assert.deepEqual(seen.slice(2), [[8000, `${IPV4} fe80::2%lan0 lan0 2001:db8:2::10,fd00:77::10`]]);
    // A new link-local address, or an address on another interface, is no change.
    fake.interfaces = { ...lan0('fd00:77::10', '2001:db8:2::10'), lan0: [v6('fe80::99'), v4('192.168.77.10'), v6('fd00:77::10'), v6('2001:db8:2::10')], lan1: [v6('2001:db8:98::5')] };
    clock.advance(2000);
    assert.equal(seen.length, 3, `not a change: ${JSON.stringify(seen.slice(3))}`);
    // A global router on another interface: its addresses.
    fake.route6 = () => of(table6('2001:db8:99::1', 'lan1'));
    clock.advance(2000);
    assert.deepEqual(seen.slice(3), [[12_000, `${IPV4} 2001:db8:99::1 lan1 2001:db8:98::5`]]);
    // The IPv6 default route is gone (the IPv4 one stays).
    fake.route6 = () => of(table6(null));
    clock.advance(2000);
    assert.deepEqual(seen.slice(4), [[14_000, `${IPV4} - - -`]]);
    stop();
    assert.equal(clock.pending, 0, 'a timer outlived the subscription');
    assert.deepEqual(fake.calls.fallback6, [], 'the child-process lookup was used on Linux');
    assert.deepEqual(fake.calls.route6, fake.calls.route, 'each poll reads both tables');
    assert.deepEqual(fake.calls.interfaces, fake.calls.route, 'each poll asks getifaddrs once');
  });

  it('a default IPv6 route without a router (default dev ppp0) gives no router, and the addresses of its interface', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock);
    fake.route6 = () => of(`${route6('::', 0, '::', 0x0001, 'lan1')}\n`);
    const { seen, stop } = watch(clock, fake);
    stop();
    assert.deepEqual(seen, [[0, `${IPV4} - - 2001:db8:99::5`]]);
  });

  it('IPv6 off in the kernel (no /proc/net/ipv6_route) is no IPv6 router, read at the Linux period, never the fallback', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock);
    fake.route6 = () => throwError(() => Object.assign(new Error("ENOENT: no such file or directory, open '/proc/net/ipv6_route'"), { code: 'ENOENT' }));
    const { seen, snapshots, stop } = watch(clock, fake);
    clock.advance(6500);
    stop();
    assert.deepEqual(seen, [[0, `${IPV4} - - -`]]);
    assert.equal(snapshots[0]!.defaultIpv6Gateway, null);
    assert.deepEqual(snapshots[0]!.ipv6Addresses, []);
    assert.deepEqual(fake.calls.route6, [0, 2000, 4000, 6000]);
    assert.deepEqual(fake.calls.fallback6, []);
  });

  it('an IPv6 table that cannot be read or parsed falls back to the lookup, at the slower period', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock);
    fake.route6 = () => throwError(() => Object.assign(new Error('EACCES'), { code: 'EACCES' }));
    const { seen, stop } = watch(clock, fake);
    clock.advance(10_000);
    fake.route6 = () => of('not a routing table');
    clock.advance(10_000);
    stop();
    assert.deepEqual(fake.calls.route6, [0, 10_000, 20_000]);
    assert.deepEqual(fake.calls.fallback6, [0, 10_000, 20_000]);
    assert.deepEqual(seen, [[0, `${IPV4} fe80::1%lan0 lan0 2001:db8:1::10`]]);
  });

  it('elsewhere the IPv6 router is looked up at the fallback period; no IPv6 route is an answer, a failed lookup no change', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock, 'darwin');
    fake.fallback6 = () => of({ gateway: 'fe80::1%lan0', interface: null }); // the interface taken from the zone
    const { seen, stop } = watch(clock, fake);
    assert.deepEqual(seen, [[0, `${IPV4} fe80::1%lan0 - 2001:db8:1::10`]]);
    fake.fallback6 = () => throwError(() => new Error('spawn EAGAIN'));
    clock.advance(10_000);
    assert.equal(seen.length, 1, 'a failed IPv6 lookup reported a change');
    fake.fallback6 = () => NEVER;
    clock.advance(10_000); // hangs, times out at 25 s
    fake.fallback6 = () => throwError(() => new DefaultGatewayError('no-default-route', 'none'));
    clock.advance(15_000); // 35 s
    stop();
    assert.deepEqual(seen.slice(1), [[35_000, `${IPV4} - - -`]]);
    assert.deepEqual(fake.calls.fallback6, [0, 10_000, 20_000, 35_000]);
    assert.deepEqual(fake.calls.route6, []);
  });

  it('a first reading that fails reports offline in both families', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock, 'darwin');
    fake.fallback6 = () => throwError(() => new Error('spawn EAGAIN'));
    const { seen, stop } = watch(clock, fake);
    stop();
    assert.deepEqual(seen, [[0, '- - - - - -']]);
  });

  it('without ipv6, nothing of IPv6 is read and an IPv6 change is no change', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock);
    const { seen, snapshots, stop } = watch(clock, fake, false);
    clock.advance(2000);
    fake.route6 = () => of(table6('fe80::2'));
    fake.interfaces = lan0('2001:db8:2::10');
    clock.advance(4000);
    stop();
    assert.deepEqual(seen, [[0, IPV4]]);
    assert.equal('defaultIpv6Gateway' in snapshots[0]!, false);
    assert.equal('ipv6Addresses' in snapshots[0]!, false);
    assert.deepEqual(fake.calls.route6, []);
    assert.deepEqual(fake.calls.fallback6, []);
  });
});

describe('snapshotKey with the IPv6 view', () => {
  it('adds the IPv6 router, its interface and the addresses; the IPv4-only key is as before', () => {
    const ipv4: NetworkSnapshot = { defaultGateway: { gateway: '192.168.1.1', interface: 'eth0' }, localAddress: '192.168.1.20' };
    assert.equal(snapshotKey(ipv4), '192.168.1.1 eth0 192.168.1.20');
    assert.equal(snapshotKey({ ...ipv4, defaultIpv6Gateway: { gateway: 'fe80::1%eth0', interface: 'eth0' }, ipv6Addresses: ['2001:db8::20', 'fd00::20'] }), '192.168.1.1 eth0 192.168.1.20 fe80::1%eth0 eth0 2001:db8::20,fd00::20');
    assert.equal(snapshotKey({ ...ipv4, defaultIpv6Gateway: null, ipv6Addresses: [] }), '192.168.1.1 eth0 192.168.1.20 - - -');
  });
});
