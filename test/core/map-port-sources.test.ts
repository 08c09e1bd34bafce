/**
 * mapPort over a source of NATs: states across a switch, the rediscovery backoff (its growth and
 * its reset once mapped), a stop while waiting to rediscover, a source that fails with an
 * invalid request or option, what counts as a NAT, and what it logs. Virtual time throughout.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defer, NEVER, type Observable, of, Subject, take, throwError } from 'rxjs';
import { mapPort, type MappingState } from '../../src/core/map-port.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import type { Nat, NatMappingRequest } from '../../src/core/nat.js';
import { GatewayUnreachableError, InvalidMappingRequestError, InvalidOptionError, NoGatewayError } from '../../src/errors.js';
import { fakeNat, grant } from '../../marbles/fake-nat.js';
import { VirtualClock } from '../support/virtual-clock.js';

const IP = '203.0.113.7';
const request = { protocol: 'tcp', internalPort: 8080 } as const;
const done = (): Observable<void> => of(undefined);
const granted = (r: NatMappingRequest) => grant(r.externalPort, 60, r.protocol, r.internalPort);
const options = (clock: VirtualClock, extra: Record<string, unknown> = {}) => ({ scheduler: clock, logger: silentLogger, random: () => 0.5, ...extra });

test('a new NAT object for the same gateway while the first add is under way emits no second identical state', () => {
  const clock = new VirtualClock();
  const nats = new Subject<Nat>();
  const make = () => fakeNat({ add: () => NEVER, remove: done, ip: () => of(IP) });
  const states: Array<[string, string | null]> = [];
  const subscription = mapPort(nats, request, options(clock)).subscribe((s) => states.push([s.status, s.backend]));
  nats.next(make());
  nats.next(make()); // what a second discovery of the same gateway gives
  assert.deepEqual(states, [
    ['mapping', null],
    ['mapping', 'fake(192.0.2.1)'],
  ]);
  subscription.unsubscribe();
  clock.advance(20_000);
});

/**
 * A source that finds no gateway twice, then a NAT that grants once and then refuses connections
 * (so it is lost at the renewal, 20 s after the grant), then finds nothing again.
 */
function flakySource(clock: VirtualClock): { readonly source: Observable<Nat>; readonly calls: number[] } {
  const calls: number[] = [];
  const refused = new GatewayUnreachableError('pmp', '192.0.2.1', 'connection refused', { cause: { code: 'ECONNREFUSED' } });
  const nat = fakeNat({ add: (r, call) => (call === 1 ? of(granted(r)) : throwError(() => refused)), remove: done, ip: () => of(IP) });
  const source = defer(() => {
    calls.push(clock.now());
    return calls.length === 3 ? of<Nat>(nat) : throwError(() => new NoGatewayError([]));
  });
  return { source, calls };
}

test('rediscovery backs off 1 s, 2 s, …, and starts again at 1 s after a mapped period', () => {
  const clock = new VirtualClock();
  const { source, calls } = flakySource(clock);
  const statuses: string[] = [];
  const subscription = mapPort(source, request, options(clock, { maxConsecutiveUnreachable: 1 })).subscribe((s) => statuses.push(s.status));
  clock.advance(26_000);
  // 0 and 1 s: no gateway; 3 s: found, mapped; 23 s: the renewal is refused, lost; 24 s, 26 s: no gateway.
  assert.deepEqual(calls, [0, 1000, 3000, 24_000, 26_000]);
  assert.ok(statuses.includes('mapped'));
  subscription.unsubscribe();
});

test('a graceful stop while waiting to rediscover a lost gateway completes the stream at once', () => {
  const clock = new VirtualClock();
  const { source } = flakySource(clock);
  const stop = new Subject<void>();
  let completed = false;
  let last: MappingState | undefined;
  mapPort(source, request, options(clock, { maxConsecutiveUnreachable: 1, stop })).subscribe({
    next: (s) => (last = s),
    complete: () => (completed = true),
  });
  clock.advance(23_500); // lost at 23 s; the next discovery is due at 24 s
  assert.equal(last?.status, 'unmapped');
  stop.next();
  assert.equal(completed, true);
  assert.equal(last?.error, null, 'nothing is left on a gateway');
});

for (const error of [new InvalidOptionError('nat', 'a bad NAT spec'), new InvalidMappingRequestError('internalPort', 'a bad port')]) {
  test(`a source that fails with ${error.name} ends the stream with it, without retrying`, () => {
    const clock = new VirtualClock();
    let calls = 0;
    const source = defer(() => {
      calls++;
      return throwError(() => error);
    });
    let seen: unknown;
    mapPort(source, request, options(clock)).subscribe({ error: (e: unknown) => (seen = e) });
    clock.advance(10_000);
    assert.equal(seen, error);
    assert.equal(calls, 1);
    assert.equal(clock.pending, 0);
  });
}

test('a NAT needs both addMapping and deleteMapping', () => {
  const half: Array<Partial<Nat>> = [
    { name: 'half', kind: 'pmp', addMapping: () => NEVER, externalIp: () => NEVER },
    { name: 'half', kind: 'pmp', deleteMapping: () => NEVER, externalIp: () => NEVER },
  ];
  for (const nat of half) {
    let seen: unknown;
    mapPort(nat as Nat, request, { logger: silentLogger }).subscribe({ error: (e: unknown) => (seen = e) });
    assert.ok(seen instanceof InvalidOptionError, `accepted ${Object.keys(nat).join(', ')}`);
    assert.equal(seen.option, 'nat');
    assert.equal(seen.message, 'the first argument must be a Nat or an Observable of Nats');
  }
});

test('a failed discovery and a stop are logged under rxnat:map', () => {
  const clock = new VirtualClock();
  const lines: Array<{ namespace: string; message: string; data?: Record<string, unknown> }> = [];
  const logger: Logger = { debug: (namespace, message, data) => lines.push({ namespace, message, ...(data ? { data } : {}) }) };
  const failure = new NoGatewayError([]);
  const stop = new Subject<void>();
  mapPort(
    defer(() => throwError(() => failure)),
    request,
    { ...options(clock), logger, stop },
  ).subscribe();
  stop.next();
  assert.deepEqual(lines, [
    { namespace: 'rxnat:map', message: 'no gateway for tcp/8080; retrying in 1000 ms', data: { error: failure } },
    { namespace: 'rxnat:map', message: 'stopping tcp/8080' },
  ]);
});

test('a subscriber that leaves on the first state of a NAT from a source leaves no mapping behind', () => {
  for (const leave of ['unsubscribe', 'stop'] as const) {
    const clock = new VirtualClock();
    const nat = fakeNat({ add: (r) => of(granted(r)), remove: done, ip: () => of(IP) });
    const nats = new Subject<Nat>();
    const stop = new Subject<void>();
    let completed = false;
    const states = mapPort(nats, request, options(clock, { stop }));
    // take(2): the searching state, then the first state of the NAT, told while the entry is joined.
    (leave === 'unsubscribe' ? states.pipe(take(2)) : states).subscribe({
      next: (s) => {
        if (leave === 'stop' && s.backend !== null) stop.next();
      },
      complete: () => (completed = true),
    });
    nats.next(nat);
    clock.advance(60_000);
    assert.equal(completed, true, leave);
    assert.equal(nat.adds.length, nat.deletes.length, `${leave}: every add was deleted`);
    assert.ok(nat.adds.length <= 1, `${leave}: no renewals of a mapping nobody holds (${nat.adds.length} adds)`);
    assert.equal(clock.pending, 0, `${leave}: no timers left`);
  }
});

test('a gateway lost while the stream joins it (a synchronous refusal) is not kept: a stop then ends the stream', () => {
  const clock = new VirtualClock();
  const refused = new GatewayUnreachableError('pmp', '192.0.2.1', 'connection refused', { cause: { code: 'ECONNREFUSED' } });
  const nat = fakeNat({ add: () => throwError(() => refused), remove: done, ip: () => of(IP) });
  const stop = new Subject<void>();
  let completed = false;
  mapPort(defer(() => of<Nat>(nat)), request, options(clock, { stop, maxConsecutiveUnreachable: 1 })).subscribe({ complete: () => (completed = true) });
  clock.advance(500); // lost at once; rediscovery is due at 1 s
  stop.next();
  assert.equal(completed, true);
  clock.advance(10_000);
  assert.equal(clock.pending, 0);
});

test('a synchronous source that gives two NATs: a subscriber that leaves on the first one never reaches the second', () => {
  for (const leave of ['unsubscribe', 'stop'] as const) {
    const clock = new VirtualClock();
    const first = fakeNat({ add: (r) => of(granted(r)), remove: done, ip: () => of(IP) });
    const second = fakeNat({ name: 'second(192.0.2.9)', add: (r) => of(granted(r)), remove: done, ip: () => of(IP) });
    const stop = new Subject<void>();
    const states = mapPort(of(first as Nat, second as Nat), request, options(clock, { stop }));
    (leave === 'unsubscribe' ? states.pipe(take(2)) : states).subscribe((s) => {
      if (leave === 'stop' && s.backend !== null) stop.next();
    });
    clock.advance(10_000);
    assert.equal(second.adds.length, 0, `${leave}: the second NAT was used`);
    assert.equal(first.adds.length, first.deletes.length, leave);
    assert.equal(clock.pending, 0, leave);
  }
});

test('a subscriber that unsubscribes on the "no gateway" state stops the rediscovery', () => {
  const clock = new VirtualClock();
  let calls = 0;
  const source = defer(() => {
    calls++;
    return throwError(() => new NoGatewayError([]));
  });
  const subscription: { current: { unsubscribe(): void } | null } = { current: null };
  let unmapped = 0;
  subscription.current = mapPort(source, request, options(clock)).subscribe((s) => {
    if (s.status === 'unmapped' && ++unmapped === 2) subscription.current?.unsubscribe(); // while the retry is being scheduled
  });
  clock.advance(120_000);
  assert.equal(calls, 2, 'no discovery after the unsubscribe');
  assert.equal(clock.pending, 0);
});

test('a stop that has emitted before subscribe, or a subscriber that takes only the searching state, never asks the source', () => {
  for (const how of ['stop', 'take(1)'] as const) {
    const clock = new VirtualClock();
    let calls = 0;
    const source = defer(() => {
      calls++;
      return of<Nat>(fakeNat({ add: (r) => of(granted(r)), remove: done, ip: () => of(IP) }));
    });
    let completed = false;
    const states = mapPort(source, request, options(clock, how === 'stop' ? { stop: of(true) } : {}));
    (how === 'take(1)' ? states.pipe(take(1)) : states).subscribe({ complete: () => (completed = true) });
    clock.advance(10_000);
    assert.equal(completed, true, how);
    assert.equal(calls, 0, `${how}: the source was subscribed`);
    assert.equal(clock.pending, 0, how);
  }
});

test('a subscriber that unsubscribes on a "no gateway" state leaves no retry timer behind, not even until it fires', () => {
  const clock = new VirtualClock();
  const source = defer(() => throwError(() => new NoGatewayError([])));
  const subscription: { current: { unsubscribe(): void } | null } = { current: null };
  subscription.current = mapPort(source, request, options(clock)).subscribe((s) => {
    if (s.status === 'unmapped' && clock.now() === 1000) subscription.current?.unsubscribe();
  });
  clock.advance(1000); // the second discovery fails at 1 s; the subscriber leaves on its state
  assert.equal(clock.pending, 0, 'no retry was scheduled after the subscriber left');
});

test('a second stop while the first one waits for the deletes does nothing', () => {
  const clock = new VirtualClock();
  const lines: string[] = [];
  const logger: Logger = { debug: (_namespace, message) => lines.push(message) };
  const nat = fakeNat({ add: (r) => of(granted(r)), remove: () => NEVER, ip: () => of(IP) });
  const stop = new Subject<void>();
  let completed = false;
  mapPort(defer(() => of<Nat>(nat)), request, { ...options(clock), logger, stop }).subscribe({ complete: () => (completed = true) });
  clock.advance(10);
  stop.next();
  assert.equal(completed, false, 'the delete is still unanswered');
  stop.next();
  assert.equal(lines.filter((line) => line.startsWith('stopping')).length, 1, lines.join('\n'));
  clock.advance(60_000);
});
