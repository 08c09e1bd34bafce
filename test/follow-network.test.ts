/**
 * followNetwork in virtual time: a network change rediscovers and mapPort moves the mapping
 * (old gateway's delete, new gateway's add); the same network or the same gateway re-reported
 * changes nothing; a flapping route is rediscovered once, where it settles; a discovery in
 * flight is abandoned for a newer network; failures before and after the first NAT.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defer, filter, finalize, firstValueFrom, NEVER, type Observable, of, Subject, throwError, timeout } from 'rxjs';
import { mapPort, type MappingState } from '../src/core/map-port.js';
import { silentLogger } from '../src/core/logger.js';
import type { Nat } from '../src/core/nat.js';
import { InvalidOptionError, NoGatewayError } from '../src/errors.js';
import { discoverNat } from '../src/discover.js';
import { followNetwork } from '../src/follow-network.js';
import { startGatewaySimulator } from '../src/testing/simulator.js';
import { networkWatch, type NetworkReader, type NetworkSnapshot } from '../src/transport/network-watch.js';
import { recordingNat, type RecordingNat } from './facade/fake-nats.js';
import { VirtualClock } from './support/virtual-clock.js';

const request = { protocol: 'udp', internalPort: 4001 } as const;
const A: NetworkSnapshot = { defaultGateway: { gateway: '192.168.77.1', interface: 'lan0' }, localAddress: '192.168.77.10' };
const B: NetworkSnapshot = { defaultGateway: { gateway: '192.168.78.1', interface: 'lan1' }, localAddress: '192.168.78.10' };

/** One fake NAT per router, and a discovery that finds the snapshot's router (every call logged). */
function routers(clock: VirtualClock): { nats: Map<string, RecordingNat>; calls: Array<[number, string]>; discover: (s: NetworkSnapshot) => Observable<Nat> } {
  const nats = new Map<string, RecordingNat>([
    ['192.168.77.1', recordingNat('203.0.113.1')],
    ['192.168.78.1', recordingNat('203.0.113.2')],
  ]);
  const calls: Array<[number, string]> = [];
  const discover = (s: NetworkSnapshot): Observable<Nat> =>
    defer(() => {
      const gateway = s.defaultGateway?.gateway ?? '-';
      calls.push([clock.now(), gateway]);
      const nat = nats.get(gateway);
      return nat ? of(nat) : throwError(() => new NoGatewayError([]));
    });
  return { nats, calls, discover };
}

const mapOptions = (clock: VirtualClock) => ({ scheduler: clock, logger: silentLogger, random: () => 0.5 });
const followOptions = (clock: VirtualClock, watch: Observable<NetworkSnapshot>) => ({ watch, scheduler: clock, logger: silentLogger, random: () => 0.5 });

describe('followNetwork', () => {
  it('a route change rediscovers, and mapPort deletes on the old gateway and adds on the new one', () => {
    const clock = new VirtualClock();
    const { nats, calls, discover } = routers(clock);
    const watch = new Subject<NetworkSnapshot>();
    const states: Array<[number, MappingState['status'], string | null]> = [];
    const subscription = mapPort(followNetwork(discover, followOptions(clock, watch)), request, mapOptions(clock)).subscribe((s) =>
      states.push([clock.now(), s.status, s.externalIp]),
    );
    watch.next(A);
    clock.advance(10_000);
    watch.next(B);
    clock.advance(499);
    assert.equal(nats.get('192.168.78.1')!.adds.length, 0, 'rediscovered before the network settled');
    clock.advance(1);
    assert.deepEqual(calls, [
      [0, '192.168.77.1'],
      [10_500, '192.168.78.1'],
    ]);
    assert.equal(nats.get('192.168.77.1')!.deletes.length, 1, 'the old gateway\'s mapping is deleted');
    assert.equal(nats.get('192.168.78.1')!.adds.length, 1, 'the new gateway\'s mapping is added');
    assert.deepEqual(states.at(-1), [10_500, 'mapped', '203.0.113.2']);
    assert.ok(states.some(([at, status, ip]) => at === 0 && status === 'mapped' && ip === '203.0.113.1'));
    subscription.unsubscribe();
    assert.equal(nats.get('192.168.78.1')!.deletes.length, 1, 'unsubscribing deletes on the current gateway');
  });

  it('end to end over the network watch: mapped on the new router within the poll period and the settle time of the switch', () => {
    const clock = new VirtualClock();
    const { nats, discover } = routers(clock);
    let gateway = '192.168.77.1';
    const reader: Partial<NetworkReader> = {
      platform: 'linux',
      byteOrder: 'LE',
      readRouteTable: () => of(routeTable(gateway, gateway === '192.168.77.1' ? 'lan0' : 'lan1')),
      networkInterfaces: () => ({
        lan0: [{ address: '192.168.77.10', netmask: '255.255.255.0', family: 'IPv4', internal: false }],
        lan1: [{ address: '192.168.78.10', netmask: '255.255.255.0', family: 'IPv4', internal: false }],
      }),
    };
    const seen: NetworkSnapshot[] = [];
    const nat$ = followNetwork(
      (s) => {
        seen.push(s);
        return discover(s);
      },
      { watch: networkWatch({ scheduler: clock, reader }), scheduler: clock, logger: silentLogger },
    );
    let mappedOnB: number | undefined;
    const subscription = mapPort(nat$, request, mapOptions(clock)).subscribe((s) => {
      if (s.status === 'mapped' && s.externalIp === '203.0.113.2') mappedOnB ??= clock.now();
    });
    clock.advance(7300);
    gateway = '192.168.78.1'; // ip route replace default via 192.168.78.1 dev lan1, at 7.3 s
    clock.advance(10_000);
    subscription.unsubscribe();
    assert.deepEqual(seen, [A, B]);
    // Seen at the next poll (8 s), rediscovered once settled (8.5 s).
    assert.equal(mappedOnB, 8500);
    assert.equal(nats.get('192.168.77.1')!.deletes.length, 1);
  });

  it('the same network re-reported, or the same gateway found again, changes nothing', () => {
    const clock = new VirtualClock();
    const { nats, calls, discover } = routers(clock);
    const watch = new Subject<NetworkSnapshot>();
    const emitted: Nat[] = [];
    const subscription = followNetwork(discover, followOptions(clock, watch)).subscribe((nat) => emitted.push(nat));
    watch.next(A);
    clock.advance(1000);
    watch.next({ ...A }); // the same network, as a watch without distinctUntilChanged would say it
    clock.advance(1000);
    // Another interface name to the same router from the same address: rediscovered, the same NAT.
    watch.next({ ...A, defaultGateway: { gateway: '192.168.77.1', interface: 'br0' } });
    clock.advance(1000);
    subscription.unsubscribe();
    assert.deepEqual(calls, [
      [0, '192.168.77.1'],
      [2500, '192.168.77.1'],
    ]);
    assert.deepEqual(emitted, [nats.get('192.168.77.1')]);
  });

  it('the same gateway from a new local address is emitted again (its mapping points at the old address)', () => {
    const clock = new VirtualClock();
    const { nats, discover } = routers(clock);
    const watch = new Subject<NetworkSnapshot>();
    const emitted: Nat[] = [];
    const subscription = followNetwork(discover, followOptions(clock, watch)).subscribe((nat) => emitted.push(nat));
    watch.next(A);
    watch.next({ ...A, localAddress: '192.168.77.99' });
    clock.advance(1000);
    subscription.unsubscribe();
    const nat = nats.get('192.168.77.1');
    assert.deepEqual(emitted, [nat, nat]);
  });

  it('a flapping route is rediscovered once, where it settles; a flap back to where it was, not at all', () => {
    const clock = new VirtualClock();
    const { calls, discover } = routers(clock);
    const watch = new Subject<NetworkSnapshot>();
    const subscription = followNetwork(discover, followOptions(clock, watch)).subscribe();
    watch.next(A);
    clock.advance(5000);
    for (let i = 0; i < 20; i++) {
      watch.next(i % 2 === 0 ? B : A); // a change every 100 ms for 2 s, ending on A
      clock.advance(100);
    }
    clock.advance(5000);
    assert.deepEqual(calls, [[0, '192.168.77.1']], 'a flap back to the same network is no change');
    for (let i = 0; i < 21; i++) {
      watch.next(i % 2 === 0 ? B : A); // from 12 s, ending on B at 14 s
      if (i < 20) clock.advance(100);
    }
    clock.advance(5000);
    subscription.unsubscribe();
    assert.deepEqual(calls, [
      [0, '192.168.77.1'],
      [14_500, '192.168.78.1'],
    ]);
  });

  it('a change during a discovery abandons it for the new network', () => {
    const clock = new VirtualClock();
    const b = recordingNat('203.0.113.2');
    let abandoned = false;
    const watch = new Subject<NetworkSnapshot>();
    const emitted: Nat[] = [];
    const discover = (s: NetworkSnapshot): Observable<Nat> =>
      s.defaultGateway?.gateway === '192.168.77.1' ? NEVER.pipe(finalize(() => (abandoned = true))) : of(b);
    const subscription = followNetwork(discover, followOptions(clock, watch)).subscribe((nat) => emitted.push(nat));
    watch.next(A);
    clock.advance(1000);
    watch.next(B);
    clock.advance(500);
    assert.ok(abandoned, 'the discovery on the old network still runs');
    assert.deepEqual(emitted, [b]);
    subscription.unsubscribe();
  });

  it('a discovery that fails after a change is retried with backoff, the last NAT kept meanwhile', () => {
    const clock = new VirtualClock();
    const { nats, calls, discover } = routers(clock);
    const b = nats.get('192.168.78.1')!;
    nats.delete('192.168.78.1'); // B's router does not answer yet
    const watch = new Subject<NetworkSnapshot>();
    const emitted: Array<[number, Nat]> = [];
    let ended = false;
    const subscription = followNetwork(discover, followOptions(clock, watch)).subscribe({
      next: (nat) => emitted.push([clock.now(), nat]),
      error: () => (ended = true),
      complete: () => (ended = true),
    });
    watch.next(A);
    clock.advance(1000);
    watch.next(B); // settles at 1.5 s
    clock.advance(3600); // fails at 1.5 s, 2.5 s, 4.5 s
    nats.set('192.168.78.1', b);
    clock.advance(5000); // 8.5 s: found
    subscription.unsubscribe();
    assert.equal(ended, false, 'the stream ended on a failed rediscovery');
    assert.deepEqual(
      calls.map(([at]) => at),
      [0, 1500, 2500, 4500, 8500],
    );
    assert.deepEqual(
      emitted.map(([at, nat]) => [at, nat.gateway]),
      [
        [0, '203.0.113.1'],
        [8500, '203.0.113.2'],
      ],
    );
  });

  it('a first discovery that fails errors the stream; mapPort subscribes again and maps once a gateway answers', () => {
    const clock = new VirtualClock();
    const { nats, calls, discover } = routers(clock);
    const a = nats.get('192.168.77.1')!;
    nats.delete('192.168.77.1');
    let errored: unknown;
    followNetwork(discover, followOptions(clock, of(A))).subscribe({ error: (e: unknown) => (errored = e) });
    assert.ok(errored instanceof NoGatewayError);

    const statuses: Array<[number, string]> = [];
    const watch = defer(() => of(A)); // cold, as networkWatch: each subscription reads the network
    const subscription = mapPort(followNetwork(discover, followOptions(clock, watch)), request, mapOptions(clock)).subscribe((s) =>
      statuses.push([clock.now(), s.status]),
    );
    clock.advance(500);
    nats.set('192.168.77.1', a);
    clock.advance(2000);
    subscription.unsubscribe();
    assert.deepEqual(calls.slice(1).map(([at]) => at), [0, 1000], 'mapPort subscribes again after its 1 s backoff');
    // Unmapped (with why) until the rediscovered gateway maps: no "mapping" in between.
    assert.deepEqual(statuses, [
      [0, 'mapping'],
      [0, 'unmapped'],
      [1000, 'mapped'],
    ]);
  });

  it('rejects a settle time that is not a number of milliseconds, at subscribe', () => {
    for (const settleMs of [-1, Number.NaN, Infinity]) {
      let seen: unknown;
      followNetwork(() => NEVER, { settleMs, watch: NEVER }).subscribe({ error: (e: unknown) => (seen = e) });
      assert.ok(seen instanceof InvalidOptionError && seen.option === 'settleMs', String(settleMs));
    }
  });
});

describe('followNetwork over real sockets (two gateway simulators on loopback)', () => {
  it('the intended use: followNetwork(() => discoverNat(…)) given to mapPort moves the mapping when the network changes', async () => {
    const a = await startGatewaySimulator({ externalIp: '203.0.113.1' });
    const b = await startGatewaySimulator({ externalIp: '203.0.113.2' });
    // The snapshots stand for two networks; each one's "router" is a simulator (nothing is sent to 192.0.2.x).
    const simulators = new Map([
      ['192.0.2.1', a],
      ['192.0.2.2', b],
    ]);
    const network = (gateway: string): NetworkSnapshot => ({ defaultGateway: { gateway, interface: 'lo' }, localAddress: '127.0.0.1' });
    const watch = new Subject<NetworkSnapshot>();
    const nat$ = followNetwork((snapshot) => discoverNat({ ...simulators.get(snapshot.defaultGateway!.gateway)!.discoverOptions, logger: silentLogger }), {
      watch,
      settleMs: 50,
      logger: silentLogger,
    });
    const stop = new Subject<void>();
    const states = new Subject<MappingState>();
    const completed = new Promise<void>((resolve) => {
      mapPort(nat$, { protocol: 'udp', internalPort: 4001 }, { stop, logger: silentLogger }).subscribe({ next: (s) => states.next(s), complete: resolve });
    });
    const mappedOn = (ip: string): Promise<MappingState> =>
      firstValueFrom(states.pipe(filter((s) => s.status === 'mapped' && s.externalIp === ip), timeout(10_000)));
    try {
      const onA = mappedOn('203.0.113.1');
      watch.next(network('192.0.2.1'));
      await onA;
      assert.equal(a.table.list().length, 1);
      const onB = mappedOn('203.0.113.2');
      watch.next(network('192.0.2.2'));
      await onB;
      assert.equal(b.table.list().length, 1);
      for (let i = 0; i < 100 && a.table.list().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      assert.deepEqual(a.table.list(), [], 'the old gateway still holds the mapping');
      stop.next();
      await completed;
      assert.deepEqual(b.table.list(), [], 'the stop did not delete on the new gateway');
    } finally {
      stop.next();
      await Promise.all([a.close(), b.close()]);
    }
  });
});

const HEADER = 'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT';
const hex = (address: string): string =>
  address
    .split('.')
    .map((p) => Number(p).toString(16).toUpperCase().padStart(2, '0'))
    .reverse()
    .join('');
function routeTable(gateway: string, iface: string): string {
  return `${HEADER}\n${iface}\t00000000\t${hex(gateway)}\t0003\t0\t0\t0\t00000000\t0\t0\t0\n`;
}
