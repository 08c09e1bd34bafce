import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asyncScheduler, Subject, type SchedulerLike } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { mapPort, type MappingState } from '../../src/core/map-port.js';
import { extIp } from '../../src/core/ext-ip.js';
import { NoGatewayError } from '../../src/errors.js';
import { fakeNat, grant } from '../../marbles/fake-nat.js';

const scheduler = (): TestScheduler => new TestScheduler((a, b) => assert.deepStrictEqual(a, b));

test('a stop sent in reaction to a failed discovery is not lost: the stream completes', () => {
  const statuses: string[] = [];
  let last: MappingState | undefined;
  let completed = false;
  scheduler().run(({ cold }) => {
    const stop = new Subject<void>();
    const discovery = cold<never>('-#', undefined, new NoGatewayError([]));
    // Bounded: were the stop lost, the stream would retry forever; this turns that into a failure.
    const subscription = mapPort(discovery, { protocol: 'tcp', internalPort: 8080 }, { stop }).subscribe({
      next: (state: MappingState) => {
        statuses.push(state.status);
        last = state;
        if (state.status === 'unmapped' && state.error !== null) stop.next(); // synchronously, between two discoveries
      },
      complete: () => (completed = true),
    });
    cold('- 10m x').subscribe(() => subscription.unsubscribe());
  });
  assert.equal(completed, true, `did not complete after the stop; saw ${statuses.join(',')}`);
  // The last state of a graceful stop says what remains: nothing (no gateway was ever found).
  assert.deepEqual(statuses, ['mapping', 'unmapped', 'unmapped']);
  assert.equal(last?.error, null);
});

test('a lease longer than a timer can wait never asks the scheduler for a longer delay', () => {
  // Node fires a timer longer than 2^31-1 ms after 1 ms: a 2^32-1 s lease would renew in a loop.
  // Virtual time has no such limit, so the test records what the stream asks its scheduler for.
  const delays: number[] = [];
  const virtual = scheduler();
  virtual.run(() => {
    const recording: SchedulerLike = {
      now: () => virtual.now(),
      schedule: (work, delay, state) => {
        delays.push(delay ?? 0);
        return asyncScheduler.schedule(work as never, delay, state);
      },
    };
    const mapping$ = mapPort(extIp('203.0.113.7'), { protocol: 'udp', internalPort: 30303, lifetimeSeconds: 4294967295 }, { scheduler: recording });
    const subscription = mapping$.subscribe();
    asyncScheduler.schedule(() => subscription.unsubscribe(), 5);
  });
  assert.ok(delays.length > 0, 'the stream scheduled nothing');
  assert.ok(delays.every((d) => d <= 2 ** 31 - 1), `delays asked for: ${delays.join(', ')}`);
});

test('two NAT objects for one gateway (two discoveries) share its request limit and its address lookups', () => {
  let ipCalls = 0;
  scheduler().run(({ cold, expectSubscriptions }) => {
    const ip = () => {
      ipCalls++;
      return cold('(i|)', { i: '203.0.113.7' });
    };
    const first = cold('--g|', { g: grant(8080) });
    const second = cold('--g|', { g: { ...grant(9090), internalPort: 9090 } });
    // Same kind, name and gateway: what two subscriptions to discoverNat() produce.
    const a = fakeNat({ add: () => first, remove: () => cold<void>('-|'), ip });
    const b = fakeNat({ add: () => second, remove: () => cold<void>('-|'), ip });
    const one = mapPort(a, { protocol: 'tcp', internalPort: 8080 }).subscribe();
    const two = mapPort(b, { protocol: 'tcp', internalPort: 9090 }).subscribe();
    cold('- 10ms x').subscribe(() => {
      one.unsubscribe();
      two.unsubscribe();
    });
    expectSubscriptions(first.subscriptions).toBe('^-!');
    expectSubscriptions(second.subscriptions).toBe('--^-!');
  });
  assert.equal(ipCalls, 1);
});

test('a NAT whose grants carry the address (PCP): the first add goes out at once and `mapped` carries the grant\'s address', () => {
  const seen: Array<[number, string, string | null]> = [];
  let ipCallsAtMapped = -1;
  let ipCalls = -1;
  const virtual = scheduler();
  virtual.run(({ cold }) => {
    const base = fakeNat({
      add: () => cold('5ms (g|)', { g: { ...grant(8080), externalIp: '203.0.113.9' } }),
      remove: () => cold('1ms |'),
      ip: () => cold('5ms (i|)', { i: '203.0.113.9' }),
    });
    const nat = Object.assign(base, { grantsCarryExternalIp: true });
    const subscription = mapPort(cold('(n|)', { n: nat }), { protocol: 'tcp', internalPort: 8080 }).subscribe((state) => {
      seen.push([virtual.now(), state.status, state.externalIp]);
      if (state.status === 'mapped' && ipCallsAtMapped < 0) ipCallsAtMapped = nat.ipCalls;
    });
    cold('20s x').subscribe(() => {
      ipCalls = nat.ipCalls;
      subscription.unsubscribe();
    });
  });
  // Asked ahead of the add, the address would make it `mapped` at 10 ms, after one lookup.
  assert.deepEqual(
    seen.find(([, status]) => status === 'mapped'),
    [5, 'mapped', '203.0.113.9'],
  );
  assert.equal(ipCallsAtMapped, 0);
  // ...and asked right behind it (the baseline for what the gateway says later), then every 15 s.
  assert.equal(ipCalls, 2);
});
