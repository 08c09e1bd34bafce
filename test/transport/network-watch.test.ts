/**
 * The network watch in virtual time over a fake reader: what a snapshot says (router, interface,
 * the local address facing the router), that only changes are emitted, how often each source is
 * read (Linux: the routing table, never a child process; elsewhere the slower fallback), and
 * that failed or hung readings neither end the watch nor report a change.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { firstValueFrom, NEVER, type Observable, of, throwError } from 'rxjs';
import { DefaultGatewayError, InvalidOptionError } from '../../src/errors.js';
import type { DefaultGateway } from '../../src/transport/default-gateway.js';
import { parseRouteTable } from '../../src/transport/route-table.js';
import { localAddressFacing, networkWatch, snapshotKey, systemNetworkReader, type InterfaceAddress, type NetworkReader, type NetworkSnapshot } from '../../src/transport/network-watch.js';
import { VirtualClock } from '../support/virtual-clock.js';

const HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';

/** `192.168.1.1` → `0101A8C0` (little-endian, as the kernel prints it on x86). */
const hex = (address: string): string =>
  address
    .split('.')
    .map((p) => Number(p).toString(16).toUpperCase().padStart(2, '0'))
    .reverse()
    .join('');

/** A `/proc/net/route` text: a default route via `gateway` on `iface` (none when `gateway` is null), plus its subnet. */
function table(gateway: string | null, iface = 'lan0', extra: readonly string[] = []): string {
  const rows = [HEADER];
  if (gateway !== null) rows.push(`${iface}\t00000000\t${hex(gateway)}\t0003\t0\t0\t0\t00000000\t0\t0\t0`);
  rows.push(`${iface}\t${hex('192.168.77.0')}\t00000000\t0001\t0\t0\t0\t${hex('255.255.255.0')}\t0\t0\t0`, ...extra);
  return `${rows.join('\n')}\n`;
}

const v4 = (address: string, netmask = '255.255.255.0'): InterfaceAddress => ({ address, netmask, family: 'IPv4', internal: false });
const LAN_INTERFACES = {
  lo: [{ address: '127.0.0.1', netmask: '255.0.0.0', family: 'IPv4', internal: true }],
  lan0: [{ address: 'fd77::10', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', internal: false }, v4('192.168.77.10'), v4('192.168.78.10')],
  lan1: [v4('10.1.0.5', '255.255.0.0')],
};

/** A reader whose answers a test changes as it goes, every call counted. */
class FakeReader {
  route: () => Observable<string> = () => of(table('192.168.77.1'));
  fallback: () => Observable<DefaultGateway> = () => of({ gateway: '10.9.9.9', interface: null });
  interfaces: Record<string, readonly InterfaceAddress[]> = LAN_INTERFACES;
  readonly calls = { route: [] as number[], fallback: [] as number[] };
  constructor(
    private readonly clock: VirtualClock,
    readonly platform: NodeJS.Platform = 'linux',
  ) {}

  reader(): Partial<NetworkReader> {
    return {
      platform: this.platform,
      byteOrder: 'LE',
      readRouteTable: () => {
        this.calls.route.push(this.clock.now());
        return this.route();
      },
      lookupDefaultGateway: () => {
        this.calls.fallback.push(this.clock.now());
        return this.fallback();
      },
      networkInterfaces: () => this.interfaces,
    };
  }
}

function watch(clock: VirtualClock, fake: FakeReader, extra: { periodMs?: number; fallbackPeriodMs?: number } = {}): { seen: Array<[number, string]>; stop: () => void } {
  const seen: Array<[number, string]> = [];
  const subscription = networkWatch({ scheduler: clock, reader: fake.reader(), ...extra }).subscribe({
    next: (s: NetworkSnapshot) => seen.push([clock.now(), snapshotKey(s)]),
    error: (e: unknown) => assert.fail(`the watch errored: ${String(e)}`),
    complete: () => assert.fail('the watch completed'),
  });
  return { seen, stop: () => subscription.unsubscribe() };
}

describe('networkWatch', () => {
  it('reads the default route and the address facing its router at once, then emits only changes', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock);
    const { seen, stop } = watch(clock, fake);
    assert.deepEqual(seen, [[0, '192.168.77.1 lan0 192.168.77.10']]);
    clock.advance(5000);
    assert.equal(seen.length, 1, 'the same network re-read is not a change');
    // The default route moves to the other router on the same interface: the other address faces it.
    fake.route = () => of(table('192.168.78.1'));
    clock.advance(2000);
    assert.deepEqual(seen.slice(1), [[6000, '192.168.78.1 lan0 192.168.78.10']]);
    // The router's interface loses the address that faced it: the local address changes.
    fake.interfaces = { ...LAN_INTERFACES, lan0: [v4('192.168.77.10')] };
    clock.advance(2000);
    assert.deepEqual(seen.slice(2), [[8000, '192.168.78.1 lan0 192.168.77.10']]);
    // Another interface: another route, another address.
    fake.route = () => of(table('10.1.0.1', 'lan1'));
    clock.advance(2000);
    assert.deepEqual(seen.slice(3), [[10_000, '10.1.0.1 lan1 10.1.0.5']]);
    // Offline: the default route is gone.
    fake.route = () => of(table(null));
    clock.advance(2000);
    assert.deepEqual(seen.slice(4), [[12_000, '- - -']]);
    stop();
    assert.equal(clock.pending, 0, 'a timer outlived the subscription');
  });

  it('on Linux reads /proc/net/route every periodMs, never the child-process fallback', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock);
    const { stop } = watch(clock, fake, { periodMs: 1000 });
    clock.advance(4500);
    stop();
    assert.deepEqual(fake.calls.route, [0, 1000, 2000, 3000, 4000]);
    assert.deepEqual(fake.calls.fallback, []);
  });

  it('defaults to a 2 s period on Linux and 10 s elsewhere', () => {
    const clock = new VirtualClock();
    const linux = new FakeReader(clock);
    const mac = new FakeReader(clock, 'darwin');
    const a = watch(clock, linux);
    const b = watch(clock, mac);
    clock.advance(20_500);
    a.stop();
    b.stop();
    assert.deepEqual(linux.calls.route, [0, 2000, 4000, 6000, 8000, 10_000, 12_000, 14_000, 16_000, 18_000, 20_000]);
    assert.deepEqual(mac.calls, { route: [], fallback: [0, 10_000, 20_000] });
  });

  it('elsewhere asks the fallback lookup, and takes the address facing its router from any interface', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock, 'win32');
    fake.fallback = () => of({ gateway: '192.168.78.1', interface: null });
    const { seen, stop } = watch(clock, fake);
    assert.deepEqual(seen, [[0, '192.168.78.1 - 192.168.78.10']]);
    fake.fallback = () => throwError(() => new DefaultGatewayError('no-default-route', 'none'));
    clock.advance(10_000);
    assert.deepEqual(seen.slice(1), [[10_000, '- - -']], 'no default route is an answer: offline');
    stop();
  });

  it('on Linux with an unreadable or unparsable routing table, falls back at the slower period', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock);
    fake.route = () => throwError(() => Object.assign(new Error('EACCES'), { code: 'EACCES' }));
    fake.fallback = () => of({ gateway: '192.168.77.1', interface: 'lan0' });
    const { seen, stop } = watch(clock, fake);
    clock.advance(10_000);
    fake.route = () => of('not a routing table');
    clock.advance(10_000);
    stop();
    assert.deepEqual(fake.calls.route, [0, 10_000, 20_000]);
    assert.deepEqual(fake.calls.fallback, [0, 10_000, 20_000]);
    assert.deepEqual(seen, [[0, '192.168.77.1 lan0 192.168.77.10']]);
  });

  it('a failed or hung reading is no change and does not stop the watch; the first one reports offline', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock, 'darwin');
    fake.fallback = () => throwError(() => new DefaultGatewayError('ip-missing', 'no ip'));
    const { seen, stop } = watch(clock, fake);
    assert.deepEqual(seen, [[0, '- - -']], 'the watcher hears something at once');
    fake.fallback = () => of({ gateway: '192.168.77.1', interface: 'lan0' });
    clock.advance(10_000);
    fake.fallback = () => NEVER;
    clock.advance(10_000); // hangs; times out at 25 s
    fake.fallback = () => throwError(() => new Error('spawn EAGAIN'));
    clock.advance(20_000); // 35 s: fails
    fake.fallback = () => of({ gateway: '192.168.77.1', interface: 'lan0' });
    clock.advance(10_000); // 45 s: the same network
    stop();
    assert.deepEqual(fake.calls.fallback, [0, 10_000, 20_000, 35_000, 45_000]);
    assert.deepEqual(seen, [
      [0, '- - -'],
      [10_000, '192.168.77.1 lan0 192.168.77.10'],
    ]);
  });

  it('a default route without a router gives no gateway, and the address of its interface', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock);
    fake.route = () => of(`${HEADER}\nlan1\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n`);
    const { seen, stop } = watch(clock, fake);
    stop();
    assert.deepEqual(seen, [[0, '- - 10.1.0.5']]);
  });

  it('does nothing before subscribe, and each subscription polls on its own', () => {
    const clock = new VirtualClock();
    const fake = new FakeReader(clock);
    const watch$ = networkWatch({ scheduler: clock, reader: fake.reader() });
    clock.advance(5000);
    assert.deepEqual(fake.calls.route, []);
    const a = watch$.subscribe();
    const b = watch$.subscribe();
    assert.deepEqual(fake.calls.route, [5000, 5000]);
    a.unsubscribe();
    b.unsubscribe();
  });

  it('rejects periods that are not positive, at subscribe', () => {
    for (const option of ['periodMs', 'fallbackPeriodMs', 'readTimeoutMs'] as const) {
      for (const value of [0, -1, Number.NaN, Infinity]) {
        let seen: unknown;
        networkWatch({ [option]: value }).subscribe({ error: (e: unknown) => (seen = e) });
        assert.ok(seen instanceof InvalidOptionError && seen.option === option, `${option}: ${value}`);
      }
    }
  });
});

describe('systemNetworkReader', () => {
  it('reads this namespace\'s routing table and interfaces (nothing is sent anywhere)', { skip: process.platform !== 'linux' && 'Linux only' }, async () => {
    const text = await firstValueFrom(systemNetworkReader.readRouteTable());
    assert.notEqual(parseRouteTable(text, systemNetworkReader.byteOrder), null);
    assert.ok(Object.values(systemNetworkReader.networkInterfaces()).flat().some((a) => a?.internal), 'no loopback interface listed');
  });
});

describe('localAddressFacing', () => {
  it('prefers the address whose subnet holds the router, else the interface\'s first IPv4 address', () => {
    assert.equal(localAddressFacing('192.168.78.1', 'lan0', LAN_INTERFACES), '192.168.78.10');
    assert.equal(localAddressFacing('192.168.77.1', 'lan0', LAN_INTERFACES), '192.168.77.10');
    assert.equal(localAddressFacing('172.16.0.1', 'lan0', LAN_INTERFACES), '192.168.77.10', 'a router outside every subnet (a /32 route): the interface faces it');
    assert.equal(localAddressFacing(null, 'lan1', LAN_INTERFACES), '10.1.0.5');
  });

  it('without a known interface, only an address in the router\'s subnet faces it', () => {
    assert.equal(localAddressFacing('10.1.200.1', null, LAN_INTERFACES), '10.1.0.5');
    assert.equal(localAddressFacing('10.1.200.1', 'gone0', LAN_INTERFACES), '10.1.0.5');
    assert.equal(localAddressFacing('172.16.0.1', null, LAN_INTERFACES), null);
    assert.equal(localAddressFacing(null, null, LAN_INTERFACES), null);
  });

  it('ignores loopback, IPv6 and malformed entries', () => {
    assert.equal(localAddressFacing('127.0.0.1', 'lo', LAN_INTERFACES), null);
    assert.equal(localAddressFacing('192.168.1.1', 'x', { x: [{ address: 'bogus', netmask: '255.255.255.0', family: 'IPv4', internal: false }, v4('192.168.1.7')] }), '192.168.1.7');
    assert.equal(localAddressFacing('192.168.1.1', 'x', { x: [{ address: '192.168.1.8', netmask: '255.255.255.0', family: 4, internal: false }] }), '192.168.1.8');
  });
});
