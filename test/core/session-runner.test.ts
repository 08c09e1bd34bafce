/**
 * The shell around the session (`session-runner.ts`): router entries and when they are forgotten,
 * events raised while events run, the timers it keeps scheduled, odd answers of a backend, and
 * what it logs. Virtual time throughout (a {@link VirtualClock}); the NATs are scripted fakes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EMPTY, map, NEVER, type Observable, of, Subject, throwError, timer } from 'rxjs';
import { mapPort, type MappingState } from '../../src/core/map-port.js';
import { silentLogger, type Logger } from '../../src/core/logger.js';
import type { MappingGrant, NatMappingRequest } from '../../src/core/nat.js';
import { mayHaveApplied } from '../../src/core/session-runner.js';
import {
  GatewayError,
  GatewayTimeoutError,
  GatewayUnreachableError,
  ProtocolError,
  UnconfirmedDeleteError,
} from '../../src/errors.js';
import { fakeNat, grant } from '../../marbles/fake-nat.js';
import { VirtualClock } from '../support/virtual-clock.js';

const IP = '203.0.113.7';

/** The grant a well-behaved gateway gives for `request`. */
const granted = (request: NatMappingRequest, lifetimeSeconds = 60): MappingGrant =>
  grant(request.externalPort, lifetimeSeconds, request.protocol, request.internalPort);

const done = (): Observable<void> => of(undefined);

const options = (clock: VirtualClock, extra: Record<string, unknown> = {}) => ({ scheduler: clock, logger: silentLogger, random: () => 0.5, ...extra });

test('an entry that closed is forgotten: subscribing to its port again makes a new entry, even while the gateway context lives on', () => {
  const clock = new VirtualClock();
  const nat = fakeNat({ add: (r) => of(granted(r)), remove: done, ip: () => of(IP) });
  // Another mapping keeps the gateway context (and its map of entries) alive throughout.
  const keeper = mapPort(nat, { protocol: 'tcp', internalPort: 9090 }, options(clock)).subscribe();
  const first = mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, options(clock)).subscribe();
  first.unsubscribe();
  assert.equal(nat.deletes.length, 1);
  const states: string[] = [];
  const again = mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, options(clock)).subscribe((s) => states.push(s.status));
  assert.deepEqual(states, ['mapping', 'mapped']);
  assert.deepEqual(
    nat.adds.map((r) => r.internalPort),
    [9090, 8080, 8080],
    'the second stream on 8080 added its own mapping',
  );
  again.unsubscribe();
  keeper.unsubscribe();
  assert.equal(clock.pending, 0);
});

test('an entry that finishes closing after a new one took its port does not forget the new one', () => {
  const clock = new VirtualClock();
  const nat = fakeNat({
    add: (r) => of(granted(r)),
    remove: () => timer(100, clock).pipe(map(() => undefined)),
    ip: () => of(IP),
  });
  const request = { protocol: 'tcp', internalPort: 8080 } as const;
  const first = mapPort(nat, request, options(clock)).subscribe();
  clock.advance(10);
  first.unsubscribe(); // the delete takes 100 ms
  clock.advance(10);
  const second = mapPort(nat, request, options(clock)).subscribe(); // a new entry; the old one still closes
  clock.advance(200); // the old entry is done
  assert.equal(nat.adds.length, 2);
  const states: string[] = [];
  const third = mapPort(nat, request, options(clock)).subscribe((s) => states.push(s.status));
  assert.equal(nat.adds.length, 2, 'the third stream shares the second entry');
  assert.deepEqual(states, ['mapped']);
  third.unsubscribe();
  second.unsubscribe();
  clock.advance(200);
  assert.equal(clock.pending, 0);
});

test('an event raised while the entry tells its holders a state waits: no holder sees an older state after a newer one', () => {
  const clock = new VirtualClock();
  const resets = new Subject<void>();
  // The first add answers after 10 ms, the re-add after the reset at once (of(grant)).
  const nat = fakeNat({
    add: (r, call) => (call === 1 ? timer(10, clock).pipe(map(() => granted(r))) : of(granted(r))),
    remove: done,
    ip: () => of(IP),
    resets$: resets,
  });
  const request = { protocol: 'tcp', internalPort: 8080 } as const;
  const a: MappingState[] = [];
  const b: MappingState[] = [];
  let reset = false;
  const one = mapPort(nat, request, options(clock)).subscribe((s) => {
    a.push(s);
    if (s.status === 'mapped' && !reset) {
      reset = true;
      resets.next(); // the gateway reports a reset while the entry is still telling its holders `mapped`
    }
  });
  const two = mapPort(nat, request, options(clock)).subscribe((s) => b.push(s));
  clock.advance(20);
  const summary = (states: MappingState[]) => states.map((s) => `${s.status}/${s.renewals}`);
  assert.equal(nat.adds.length, 2);
  assert.deepEqual(summary(b), summary(a), 'both holders see the same states in the same order');
  assert.equal(b.at(-1)?.status, 'mapped');
  assert.equal(b.at(-1)?.renewals, 1, 'the last state is the re-add after the reset');
  one.unsubscribe();
  two.unsubscribe();
  assert.equal(clock.pending, 0);
});

test('a forced re-add moves the renewal: the timer of the old grant is cancelled', () => {
  const clock = new VirtualClock();
  const addedAt: number[] = [];
  const nat = fakeNat({
    add: (r) => {
      addedAt.push(clock.now());
      return of(granted(r));
    },
    remove: done,
    // The address changes at the second lookup (15 s): many routers drop mappings then, so re-add.
    ip: (call) => of(call === 1 ? IP : '203.0.113.8'),
  });
  const subscription = mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, options(clock)).subscribe();
  clock.advance(40_000);
  // Renewals at a third of the 60 s lease after each grant: 20 s after the re-add at 15 s, not at 20 s.
  assert.deepEqual(addedAt, [0, 15_000, 35_000]);
  subscription.unsubscribe();
  assert.equal(clock.pending, 0);
});

for (const [name, answer] of [
  ['null', () => of(null as unknown as MappingGrant)],
  ['undefined', () => of(undefined as unknown as MappingGrant)],
] as const) {
  test(`an add answered with ${name} is a failed add: unmapped, then retried`, () => {
    const clock = new VirtualClock();
    const nat = fakeNat({ add: (r, call) => (call === 1 ? answer() : of(granted(r))), remove: done, ip: () => of(IP) });
    const states: MappingState[] = [];
    const subscription = mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, options(clock)).subscribe((s) => states.push(s));
    assert.deepEqual(
      states.map((s) => s.status),
      ['mapping', 'unmapped'],
    );
    assert.ok(states[1]!.error instanceof ProtocolError);
    clock.advance(1000);
    assert.equal(states.at(-1)?.status, 'mapped');
    subscription.unsubscribe();
  });
}

test('an add that completes without an answer is a failed add (ProtocolError "empty"), then retried', () => {
  const clock = new VirtualClock();
  const nat = fakeNat({ add: (r, call) => (call === 1 ? EMPTY : of(granted(r))), remove: done, ip: () => of(IP) });
  const states: MappingState[] = [];
  const subscription = mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, options(clock)).subscribe((s) => states.push(s));
  assert.deepEqual(
    states.map((s) => s.status),
    ['mapping', 'unmapped'],
  );
  const error = states[1]!.error;
  assert.ok(error instanceof ProtocolError);
  assert.equal(error.reason, 'empty');
  assert.match(error.message, /the gateway answered the add with nothing/);
  clock.advance(1000);
  assert.equal(nat.adds.length, 2);
  assert.equal(states.at(-1)?.status, 'mapped');
  subscription.unsubscribe();
});

test('a refusal that asks to wait (retryAfterSeconds) is retried no sooner than asked', () => {
  const clock = new VirtualClock();
  const addedAt: number[] = [];
  const refusal = new GatewayError({ protocol: 'pcp', resultCode: 8, resultName: 'NO_RESOURCES', gateway: '192.0.2.1', retryAfterSeconds: 30 });
  const nat = fakeNat({
    add: (r, call) => {
      addedAt.push(clock.now());
      return call === 1 ? throwError(() => refusal) : of(granted(r));
    },
    remove: done,
    ip: () => of(IP),
  });
  const subscription = mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, options(clock)).subscribe();
  clock.advance(31_000);
  assert.deepEqual(addedAt, [0, 30_000], 'not at the first backoff delay (1 s)');
  subscription.unsubscribe();
});

test('a retry-after that is not a positive number of seconds is ignored: the backoff applies', () => {
  for (const retryAfterSeconds of [Number.NaN, -5, 0]) {
    const clock = new VirtualClock();
    const addedAt: number[] = [];
    const refusal = new GatewayError({ protocol: 'pcp', resultCode: 8, resultName: 'NO_RESOURCES', gateway: '192.0.2.1', retryAfterSeconds });
    const nat = fakeNat({
      add: (r, call) => {
        addedAt.push(clock.now());
        return call === 1 ? throwError(() => refusal) : of(granted(r));
      },
      remove: done,
      ip: () => of(IP),
    });
    const subscription = mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, options(clock)).subscribe();
    clock.advance(5000);
    assert.deepEqual(addedAt, [0, 1000], `retryAfterSeconds ${retryAfterSeconds}`);
    subscription.unsubscribe();
  }
});

test('a delete that is not answered within teardownTimeoutMs is reported as a GatewayTimeoutError; another error as itself', () => {
  const refusal = new GatewayError({ protocol: 'pmp', resultCode: 2, resultName: 'NOT_AUTHORIZED', gateway: '192.0.2.1' });
  for (const [remove, check] of [
    [() => NEVER, (e: Error) => e instanceof GatewayTimeoutError && e.timeoutMs === 2000],
    [() => throwError(() => refusal), (e: Error) => e === refusal],
  ] as const) {
    const clock = new VirtualClock();
    const stop = new Subject<void>();
    const nat = fakeNat({ add: (r) => of(granted(r)), remove, ip: () => of(IP) });
    let last: MappingState | undefined;
    let completed = false;
    mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, options(clock, { stop, teardownTimeoutMs: 2000 })).subscribe({
      next: (s) => (last = s),
      complete: () => (completed = true),
    });
    stop.next();
    clock.advance(2000);
    assert.equal(completed, true);
    assert.equal(last?.status, 'unmapped');
    assert.ok(last?.error instanceof UnconfirmedDeleteError);
    const [unconfirmed] = last.error.deletes;
    assert.ok(check(unconfirmed!.error), `the delete's error: ${String(unconfirmed!.error)}`);
    assert.equal(clock.pending, 0);
  }
});

test('mayHaveApplied: an explicit refusal or a gateway that is gone made nothing; anything else may have', () => {
  const refused = new GatewayError({ protocol: 'pmp', resultCode: 3, resultName: 'NETWORK_FAILURE', gateway: '192.0.2.1' });
  const gone = new GatewayUnreachableError('pmp', '192.0.2.1', 'connection refused', { cause: { code: 'ECONNREFUSED' } });
  const reset = new GatewayUnreachableError('pmp', '192.0.2.1', 'connection reset', { cause: { code: 'ECONNRESET' } });
  assert.equal(mayHaveApplied(refused), false);
  assert.equal(mayHaveApplied(gone), false);
  assert.equal(mayHaveApplied(reset), true);
  assert.equal(mayHaveApplied(new GatewayTimeoutError('pmp', '192.0.2.1', 2000)), true);
  assert.equal(mayHaveApplied(new Error('late answer')), true);
});

/** A logger that keeps what it is told. */
function recording(): Logger & { readonly lines: Array<{ namespace: string; message: string; data?: Record<string, unknown> }> } {
  const lines: Array<{ namespace: string; message: string; data?: Record<string, unknown> }> = [];
  return { lines, debug: (namespace, message, data) => lines.push({ namespace, message, ...(data ? { data } : {}) }) };
}

test('the entry logs what it does under rxnat:map, with the error it acts on', () => {
  const clock = new VirtualClock();
  const logger = recording();
  const resets = new Subject<void>();
  const stop = new Subject<void>();
  const refusal = new GatewayError({ protocol: 'pmp', resultCode: 3, resultName: 'NETWORK_FAILURE', gateway: '192.0.2.1' });
  const nat = fakeNat({
    add: (r, call) => (call === 2 ? throwError(() => refusal) : of(granted(r))),
    remove: done,
    ip: () => of(IP),
    resets$: resets,
  });
  mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, { ...options(clock), logger, stop }).subscribe();
  clock.advance(21_000); // renewal at 20 s refused, retried at 21 s
  resets.next();
  stop.next();
  const prefix = `${nat.name} tcp/8080: `;
  const mine = logger.lines.filter((l) => l.message.startsWith(prefix));
  assert.ok(mine.every((l) => l.namespace === 'rxnat:map'));
  const messages = mine.map((l) => l.message.slice(prefix.length));
  for (const expected of [
    'adding, asking for external port 8080',
    'renewing external port 8080',
    'add failed (1 in a row)',
    'gateway lost its mappings (epoch reset)',
    'stopping',
    'deleted external port 8080',
  ]) {
    assert.ok(messages.includes(expected), `"${expected}" not in ${JSON.stringify(messages)}`);
  }
  assert.equal(mine.find((l) => l.message.endsWith('add failed (1 in a row)'))?.data?.error, refusal);

  // An unsubscribe whose delete fails, and a gateway that is gone.
  const failing = new GatewayError({ protocol: 'pmp', resultCode: 2, resultName: 'NOT_AUTHORIZED', gateway: '192.0.2.1' });
  const other = fakeNat({ name: 'other(192.0.2.2)', add: (r) => of(granted(r)), remove: () => throwError(() => failing), ip: () => of(IP) });
  mapPort(other, { protocol: 'udp', internalPort: 5000 }, { ...options(clock), logger }).subscribe().unsubscribe();
  const refused = new GatewayUnreachableError('pmp', '192.0.2.3', 'connection refused', { cause: { code: 'ECONNREFUSED' } });
  const goneNat = fakeNat({ name: 'gone(192.0.2.3)', add: () => throwError(() => refused), ip: () => of(IP) });
  mapPort(goneNat, { protocol: 'udp', internalPort: 6000 }, { ...options(clock), logger, maxConsecutiveUnreachable: 1 }).subscribe().unsubscribe();
  const line = (start: string) => logger.lines.find((l) => l.namespace === 'rxnat:map' && l.message.startsWith(start));
  assert.ok(line(`other(192.0.2.2) udp/5000: unsubscribed`));
  assert.equal(line(`other(192.0.2.2) udp/5000: delete of external port 5000 failed`)?.data?.error, failing);
  const lost = line(`gone(192.0.2.3) udp/6000: gateway keeps refusing connections; rediscovering`);
  assert.ok(lost?.data?.error instanceof Error, 'the lost line carries the error');
});
