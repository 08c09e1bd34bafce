/** The per-gateway queue (most urgent first) and who shares a gateway context. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defer, NEVER, Observable, of, Subject, throwError, timer, type Subscriber } from 'rxjs';
import { ProtocolError } from '../../src/errors.js';
import { acquireGatewayContext, ADD_PRIORITY, createGatewayRegistry, DELETE_PRIORITY, isGatewayRegistry, priorityQueue, protocolOf } from '../../src/core/gateway-context.js';
import { silentLogger } from '../../src/core/logger.js';
import type { Nat } from '../../src/core/nat.js';
import { heapAfterGc } from '../support/heap.js';
import { VirtualClock } from '../support/virtual-clock.js';

/** A call that starts when subscribed and ends when the test says so. */
function manual(name: string, started: string[], open: Map<string, Subscriber<string>>): Observable<string> {
  return new Observable<string>((subscriber) => {
    started.push(name);
    open.set(name, subscriber);
  });
}

test('the queue serves deletes first, then renewals by the end of their lease, then adds in arrival order', () => {
  const queue = priorityQueue(1);
  const started: string[] = [];
  const open = new Map<string, Subscriber<string>>();
  queue(manual('running', started, open), ADD_PRIORITY).subscribe();
  queue(manual('add1', started, open), ADD_PRIORITY).subscribe();
  queue(manual('renew@900', started, open), 900).subscribe();
  queue(manual('add2', started, open), ADD_PRIORITY).subscribe();
  queue(manual('renew@300', started, open), 300).subscribe();
  queue(manual('delete1', started, open), DELETE_PRIORITY).subscribe();
  queue(manual('delete2', started, open), DELETE_PRIORITY).subscribe();
  const order = ['running', 'delete1', 'delete2', 'renew@300', 'renew@900', 'add1', 'add2'];
  for (const name of order) {
    assert.equal(started.at(-1), name);
    open.get(name)!.complete();
  }
  assert.deepEqual(started, order);
});

test('unsubscribing a waiting call removes it; unsubscribing a running one frees its slot', () => {
  const queue = priorityQueue(1);
  const started: string[] = [];
  const open = new Map<string, Subscriber<string>>();
  const running = queue(manual('a', started, open), ADD_PRIORITY).subscribe();
  const waiting = queue(manual('b', started, open), ADD_PRIORITY).subscribe();
  queue(manual('c', started, open), ADD_PRIORITY).subscribe();
  waiting.unsubscribe();
  running.unsubscribe();
  assert.deepEqual(started, ['a', 'c']);
});

test('two slots run two calls at once; an error frees the slot too', () => {
  const queue = priorityQueue(2);
  const started: string[] = [];
  const open = new Map<string, Subscriber<string>>();
  for (const name of ['a', 'b', 'c', 'd']) queue(manual(name, started, open), ADD_PRIORITY).subscribe({ error: () => undefined });
  assert.deepEqual(started, ['a', 'b']);
  open.get('a')!.error(new Error('x'));
  assert.deepEqual(started, ['a', 'b', 'c']);
});

test('100,000 calls that finish at once run in a loop, without growing the stack', () => {
  const queue = priorityQueue(1);
  const gate = new Subject<void>();
  let done = 0;
  queue(gate, ADD_PRIORITY).subscribe();
  for (let i = 0; i < 100_000; i++) queue(defer(() => [i]), ADD_PRIORITY).subscribe({ complete: () => done++ });
  assert.doesNotThrow(() => gate.complete());
  assert.equal(done, 100_000);
});

const nat = (name: string, endpoint?: string): Nat => ({
  name,
  kind: 'pmp',
  gateway: '192.0.2.1',
  ...(endpoint ? { endpoint } : {}),
  addMapping: () => NEVER,
  deleteMapping: () => NEVER,
  externalIp: () => NEVER,
});

test('one context per gateway and scheduler: two NAT objects for one gateway share it, another scheduler does not', () => {
  const clock = new VirtualClock();
  const other = new VirtualClock();
  const options = (scheduler: VirtualClock) => ({ externalIpCacheMs: 15_000, logger: silentLogger, scheduler });
  const a = acquireGatewayContext(nat('pmp(192.0.2.1)'), options(clock));
  const b = acquireGatewayContext(nat('pmp(192.0.2.1)'), options(clock));
  const c = acquireGatewayContext(nat('pmp(192.0.2.1)'), options(other));
  const d = acquireGatewayContext(nat('pmp(192.0.2.1)', '192.0.2.1:5352'), options(clock));
  assert.equal(a.context, b.context);
  assert.notEqual(a.context, c.context, 'options (the scheduler) never leak between users on different schedulers');
  assert.notEqual(a.context, d.context, 'another endpoint is another gateway');
  a.release();
  a.release(); // once only
  const e = acquireGatewayContext(nat('pmp(192.0.2.1)'), options(clock));
  assert.equal(e.context, b.context, 'still held by b');
  b.release();
  e.release();
  const f = acquireGatewayContext(nat('pmp(192.0.2.1)'), options(clock));
  assert.notEqual(f.context, a.context, 'made anew once every user released it');
  for (const held of [c, d, f]) held.release();
});

test('the address watcher: a failed lookup is retried sooner than the cache time, an unusable answer is reported', () => {
  const clock = new VirtualClock();
  let calls = 0;
  const answers: Array<() => Observable<string>> = [
    () => new Observable<string>((s) => s.error(new Error('timeout'))),
    () => defer(() => ['0.0.0.0']),
    () => defer(() => ['203.0.113.7']),
  ];
  const watched: Nat = { ...nat('watch(192.0.2.1)'), externalIp: () => answers[Math.min(calls++, answers.length - 1)]!() };
  const { context, release } = acquireGatewayContext(watched, { externalIpCacheMs: 15_000, logger: silentLogger, scheduler: clock });
  const readings: Array<[number, string | null, string | undefined]> = [];
  const subscription = context.externalIp$.subscribe((r) => readings.push([clock.now(), r.ip, (r.error as { reason?: string } | null)?.reason]));
  clock.advance(20_000);
  assert.deepEqual(readings, [
    [1000, null, 'external-address'],
    [16_000, '203.0.113.7', undefined],
  ]);
  subscription.unsubscribe();
  release();
  assert.equal(clock.pending, 0);
});

test('the queue keeps a later priority behind earlier ones that wait', () => {
  const queue = priorityQueue(1);
  const started: string[] = [];
  const open = new Map<string, Subscriber<string>>();
  queue(manual('running', started, open), ADD_PRIORITY).subscribe();
  queue(manual('renew@300', started, open), 300).subscribe();
  queue(manual('renew@900', started, open), 900).subscribe();
  queue(manual('add', started, open), ADD_PRIORITY).subscribe();
  queue(manual('renew@600', started, open), 600).subscribe();
  const order = ['running', 'renew@300', 'renew@600', 'renew@900', 'add'];
  for (const name of order) {
    assert.equal(started.at(-1), name);
    open.get(name)!.complete();
  }
  assert.deepEqual(started, order);
});

test('the address watcher: every new reason the address is unusable is reported; other failures are retried 1 s, 2 s, … later and logged', () => {
  const clock = new VirtualClock();
  const lines: Array<[string, string, unknown]> = [];
  const logger = { debug: (namespace: string, message: string, data?: Record<string, unknown>) => lines.push([namespace, message, data?.error]) };
  const malformed = new ProtocolError('pmp', 'length', 'a short reply', '192.0.2.1');
  const silent = new Error('timeout');
  const answers: Array<() => Observable<string>> = [
    () => throwError(() => new ProtocolError('pmp', 'external-address', 'not connected (1)', '192.0.2.1')), // 0 s
    () => throwError(() => new ProtocolError('pmp', 'external-address', 'not connected (2)', '192.0.2.1')), // 15 s
    () => throwError(() => malformed), // 30 s: not about the address: retried after 1 s
    () => throwError(() => silent), // 31 s: again, after 2 s
    () => of('0.0.0.0'), // 33 s
    () => of('203.0.113.7'), // 48 s
  ];
  let calls = 0;
  const watched: Nat = { ...nat('watch2(192.0.2.1)'), externalIp: () => answers[Math.min(calls++, answers.length - 1)]!() };
  const { context, release } = acquireGatewayContext(watched, { externalIpCacheMs: 15_000, logger, scheduler: clock });
  const readings: Array<[number, string | null, string | undefined]> = [];
  const subscription = context.externalIp$.subscribe((r) => readings.push([clock.now(), r.ip, r.error?.message]));
  clock.advance(50_000);
  assert.deepEqual(readings, [
    [0, null, 'pmp from 192.0.2.1: not connected (1)'],
    [15_000, null, 'pmp from 192.0.2.1: not connected (2)'],
    [33_000, null, 'pmp from watch2(192.0.2.1): external address "0.0.0.0" is not usable (not connected)'],
    [48_000, '203.0.113.7', undefined],
  ]);
  assert.deepEqual(lines, [
    ['rxnat:map', 'external address lookup on watch2(192.0.2.1) failed', malformed],
    ['rxnat:map', 'external address lookup on watch2(192.0.2.1) failed', silent],
  ]);
  subscription.unsubscribe();
  release();
  assert.equal(clock.pending, 0);
});

test('two registries share no context, and neither sees the options of the other', () => {
  const clock = new VirtualClock();
  const other = new VirtualClock();
  const lines: Record<string, string[]> = { a: [], b: [], c: [] };
  const logger = (name: string) => ({ debug: (_namespace: string, message: string) => lines[name]!.push(message) });
  const failing: Nat = { ...nat('reg(192.0.2.1)'), externalIp: () => throwError(() => new Error('timeout')) };
  const one = createGatewayRegistry();
  const two = createGatewayRegistry();
  const a = acquireGatewayContext(failing, { externalIpCacheMs: 15_000, logger: logger('a'), scheduler: clock, registry: one });
  const b = acquireGatewayContext(failing, { externalIpCacheMs: 15_000, logger: logger('b'), scheduler: clock, registry: two });
  const c = acquireGatewayContext(failing, { externalIpCacheMs: 15_000, logger: logger('c'), scheduler: other, registry: two });
  const again = acquireGatewayContext(failing, { externalIpCacheMs: 15_000, logger: silentLogger, scheduler: clock, registry: one });
  const byDefault = acquireGatewayContext(failing, { externalIpCacheMs: 15_000, logger: silentLogger, scheduler: clock });
  assert.equal(again.context, a.context, 'one registry, one scheduler, one gateway: one context');
  assert.notEqual(a.context, b.context);
  assert.notEqual(b.context, c.context, 'another scheduler in the same registry is another context');
  assert.notEqual(byDefault.context, a.context, 'the process-wide registry is another registry');
  const watching = [a, b, c].map((held) => held.context.externalIp$.subscribe());
  assert.deepEqual(lines, {
    a: ['external address lookup on reg(192.0.2.1) failed'],
    b: ['external address lookup on reg(192.0.2.1) failed'],
    c: ['external address lookup on reg(192.0.2.1) failed'],
  });
  for (const s of watching) s.unsubscribe();
  for (const held of [a, b, c, again, byDefault]) held.release();
  assert.equal(isGatewayRegistry(one), true);
  assert.equal(isGatewayRegistry({}), false);
  assert.equal(isGatewayRegistry(null), false);
  assert.equal(isGatewayRegistry('registry'), false);
  assert.equal(isGatewayRegistry(undefined), false);
});

test('protocolOf: a UPnP pinhole reports as upnp, extip as pmp, the others as themselves', () => {
  const nat = (kind: Nat['kind']): Nat => ({ kind } as unknown as Nat);
  assert.equal(protocolOf(nat('upnp-pinhole')), 'upnp');
  assert.equal(protocolOf(nat('extip')), 'pmp');
  for (const kind of ['upnp', 'pmp', 'pcp', 'stun'] as const) assert.equal(protocolOf(nat(kind)), kind);
});

test('the address watcher: a NAT whose grants carry the address is first asked right behind the adds queued at subscribe, not ahead of them', () => {
  const clock = new VirtualClock();
  const asked: number[] = [];
  const carrying: Nat = { ...nat('carry(192.0.2.1)'), grantsCarryExternalIp: true, externalIp: () => defer(() => (asked.push(clock.now()), ['203.0.113.7'])) };
  const { context, release } = acquireGatewayContext(carrying, { externalIpCacheMs: 15_000, logger: silentLogger, scheduler: clock });
  const readings: Array<[number, string | null]> = [];
  const added: number[] = [];
  const subscription = context.externalIp$.subscribe((r) => readings.push([clock.now(), r.ip]));
  // The add a stream sends when it subscribes, answered after 5 ms: it goes first.
  subscription.add(context.queue(timer(5, clock), ADD_PRIORITY).subscribe(() => added.push(clock.now())));
  clock.advance(31_000);
  assert.deepEqual(added, [5]);
  assert.deepEqual(asked, [5, 15_005, 30_005]);
  assert.deepEqual(readings, [[5, '203.0.113.7']]);
  subscription.unsubscribe();
  release();
  assert.equal(clock.pending, 0);
});


test('the address watcher keeps nothing per lookup: 50,000 lookups of a watch that lives on leave the heap flat', () => {
  // A long-lived mapping asks the address every externalIpCacheMs for as long as it lives; each
  // lookup's timer must be let go once it has fired (rxjs does not unsubscribe a fired action).
  const clock = new VirtualClock();
  let asked = 0;
  const watched: Nat = { ...nat('flat(192.0.2.1)'), externalIp: () => defer(() => (asked++, ['203.0.113.7'])) };
  const { context, release } = acquireGatewayContext(watched, { externalIpCacheMs: 1000, logger: silentLogger, scheduler: clock });
  const subscription = context.externalIp$.subscribe();
  const runUntil = (n: number): void => {
    while (asked < n) clock.advance(1000);
  };
  runUntil(1000);
  const before = heapAfterGc();
  runUntil(50_000);
  const after = heapAfterGc();
  assert.ok(after - before < 1_000_000, `heap grew by ${after - before} bytes over 49,000 lookups`);
  subscription.unsubscribe();
  release();
  assert.equal(clock.pending, 0, 'no timer left');
});
