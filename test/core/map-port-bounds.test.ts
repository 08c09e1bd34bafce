/**
 * Work per mapping is bounded whatever the gateway does: retries loop without growing the stack
 * or the heap, and unsubscribe still deletes and completes after 10,000 failures.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defer, Observable, throwError } from 'rxjs';
import { GatewayError, GatewayTimeoutError, NoGatewayError } from '../../src/errors.js';
import { mapPort, type MappingState } from '../../src/core/map-port.js';
import type { MappingGrant, Nat } from '../../src/core/nat.js';
import { heapAfterGc } from '../support/heap.js';
import { VirtualClock } from '../support/virtual-clock.js';


const retry = { initialDelayMs: 50, maxDelayMs: 500, jitter: 0 };

/** Runs the clock until `count()` reaches 1,000, then 10,000, and fails if the heap grew by 1 MB or more in between. */
function assertFlatHeap(clock: VirtualClock, count: () => number): void {
  const runUntil = (n: number): void => {
    while (count() < n) clock.advance(500);
  };
  runUntil(1000);
  const before = heapAfterGc();
  runUntil(10_000);
  const after = heapAfterGc();
  assert.ok(after - before < 1_000_000, `heap grew by ${after - before} bytes over 9,000 failures`);
}

test('10,000 failed discoveries in a row: heap flat, no stack growth, and the stream still tears down', () => {
  const clock = new VirtualClock();
  let discoveries = 0;
  const discovery$ = defer(() => {
    discoveries++;
    return throwError(() => new NoGatewayError([]));
  });
  const states: MappingState[] = [];
  const subscription = mapPort(discovery$, { protocol: 'tcp', internalPort: 8080 }, { scheduler: clock, retry }).subscribe((s) => {
    if (states.length < 4) states.push(s);
  });
  assertFlatHeap(clock, () => discoveries);
  assert.doesNotThrow(() => subscription.unsubscribe());
  assert.equal(clock.pending, 0, 'no timer left');
  assert.equal(states[0]?.status, 'mapping');
  assert.equal(states[1]?.status, 'unmapped');
});

test('10,000 failed adds in a row, the last of which may have been made: heap flat; unsubscribe deletes it and completes', () => {
  const clock = new VirtualClock();
  let adds = 0;
  const deletes: MappingGrant[] = [];
  const refused = new GatewayError({ protocol: 'pmp', resultCode: 3, resultName: 'NETWORK_FAILURE', gateway: '192.0.2.1' });
  const nat: Nat = {
    name: 'bounds(192.0.2.1)',
    kind: 'pmp',
    gateway: '192.0.2.1',
    addMapping: () =>
      defer(() => {
        adds++;
        // Refused, except the 10,000th: no answer (it may have been made).
        return throwError(() => (adds === 10_000 ? new GatewayTimeoutError('pmp', '192.0.2.1', 250) : refused));
      }),
    deleteMapping: (grant) =>
      new Observable<void>((subscriber) => {
        deletes.push(grant);
        subscriber.complete();
      }),
    externalIp: () => defer(() => ['203.0.113.7']),
  };
  let completed = false;
  const subscription = mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, { scheduler: clock, retry }).subscribe({ complete: () => (completed = true) });
  assertFlatHeap(clock, () => adds);
  assert.doesNotThrow(() => subscription.unsubscribe());
  clock.advance(20_000);
  assert.deepEqual(deletes.map((g) => g.externalPort), [8080], 'the add that got no answer is deleted');
  assert.equal(completed, false, 'unsubscribed, not completed');
  assert.equal(clock.pending, 0, 'no timer left');
});

test('a gateway that grants 1 s leases is renewed no more than once a second', () => {
  const clock = new VirtualClock();
  let adds = 0;
  const nat: Nat = {
    name: 'short(192.0.2.1)',
    kind: 'pmp',
    gateway: '192.0.2.1',
    addMapping: (request) =>
      defer(() => {
        adds++;
        return [{ protocol: request.protocol, internalPort: request.internalPort, externalPort: request.externalPort, lifetimeSeconds: 1 }];
      }),
    deleteMapping: () => defer(() => []),
    externalIp: () => defer(() => ['203.0.113.7']),
  };
  const subscription = mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, { scheduler: clock }).subscribe();
  clock.advance(60_000);
  subscription.unsubscribe();
  assert.ok(adds <= 61, `${adds} adds in 60 s`);
});

test('a mapping that lives on keeps the heap flat: 40,000 s of renewals, table checks and address lookups, one of each every 1-2 s', () => {
  const clock = new VirtualClock();
  let adds = 0;
  let checks = 0;
  let lookups = 0;
  const nat: Nat = {
    name: 'long(192.0.2.1)',
    kind: 'upnp',
    gateway: '192.0.2.1',
    addMapping: (request) =>
      defer(() => {
        adds++;
        return [{ protocol: request.protocol, internalPort: request.internalPort, externalPort: request.externalPort, lifetimeSeconds: 6 }];
      }),
    deleteMapping: () => defer(() => []),
    externalIp: () => defer(() => (lookups++, ['203.0.113.7'])),
    checkMapping: () => defer(() => (checks++, [true])),
  };
  const subscription = mapPort(nat, { protocol: 'tcp', internalPort: 8080, lifetimeSeconds: 6 }, { scheduler: clock, externalIpCacheMs: 1000, checkIntervalMs: 1000 }).subscribe();
  const runFor = (seconds: number): void => {
    for (let i = 0; i < seconds; i++) clock.advance(1000);
  };
  runFor(2000);
  const before = heapAfterGc();
  runFor(40_000);
  const after = heapAfterGc();
  assert.ok(adds > 20_000 && checks > 20_000 && lookups > 40_000, `${adds} adds, ${checks} checks, ${lookups} lookups`);
  assert.ok(after - before < 1_000_000, `heap grew by ${after - before} bytes over 40,000 s`);
  subscription.unsubscribe();
  clock.advance(10_000);
  assert.equal(clock.pending, 0, 'no timer left');
});
