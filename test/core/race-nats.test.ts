/**
 * raceNats beyond the marble contract (marbles/10-discovery-race): the scheduler it is given is
 * the one its deadline runs on, and each probe that fails is logged under rxnat:discover.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { map, NEVER, of, throwError, timer, VirtualTimeScheduler } from 'rxjs';
import { extIp } from '../../src/core/ext-ip.js';
import type { Nat } from '../../src/core/nat.js';
import { NoGatewayError } from '../../src/errors.js';
import { raceNats } from '../../src/core/race-nats.js';
import type { Logger } from '../../src/core/logger.js';

test('the deadline runs on the scheduler passed in, not on the default one', () => {
  // Outside TestScheduler.run(), so the default asyncScheduler would be real time.
  const scheduler = new VirtualTimeScheduler();
  const seen: { error?: unknown } = {};
  const subscription = raceNats([{ name: 'pmp', nat$: NEVER }], 2000, { scheduler }).subscribe({ error: (e: unknown) => (seen.error = e) });
  try {
    assert.ok(!('error' in seen), 'nothing before the deadline');
    scheduler.flush();
    const failure = seen.error;
    assert.ok(failure instanceof NoGatewayError, String(failure));
    assert.equal(scheduler.now(), 2000);
    assert.deepEqual(failure.failures.map((f) => [f.backend, f.error.message]), [['pmp', 'no answer within 2000 ms']]);
  } finally {
    subscription.unsubscribe();
  }
});

test('a probe that finds no gateway is logged under rxnat:discover with its name and why', () => {
  const lines: string[] = [];
  const logger: Logger = { debug: (namespace, message) => lines.push(`${namespace} ${message}`) };
  let failure: unknown;
  raceNats(
    [
      { name: 'pcp', nat$: throwError(() => new Error('connection refused')) },
      { name: 'upnp', nat$: throwError(() => 'not an error') }, // a probe may fail with a non-Error,
    ],
    2000,
    { logger },
  ).subscribe({ error: (e: unknown) => (failure = e) });
  assert.ok(failure instanceof NoGatewayError);
  assert.deepEqual(lines, ['rxnat:discover pcp found no gateway: connection refused', 'rxnat:discover upnp found no gateway: not an error']);
});

test('a NAT that refused to map lately does not win while another probe can still find one', () => {
  const scheduler = new VirtualTimeScheduler();
  const refused = extIpNamed('pcp(192.0.2.1)');
  const other = extIpNamed('pmp(192.0.2.1)');
  const why = new Error('2 NOT_AUTHORIZED');
  const lines: string[] = [];
  let winner: Nat | undefined;
  raceNats(
    [
      { name: 'pcp', nat$: of(refused) },
      { name: 'pmp', nat$: timer(30, scheduler).pipe(map(() => other)) },
    ],
    2000,
    { scheduler, unusable: (nat) => (nat === refused ? why : null), logger: { debug: (ns, m) => lines.push(`${ns} ${m}`) } },
  ).subscribe((nat) => (winner = nat));
  assert.equal(winner, undefined, 'the refused one did not win at once');
  scheduler.flush();
  assert.equal(winner, other);
  assert.equal(scheduler.now(), 30);
  assert.deepEqual(lines, ['rxnat:discover pcp found pcp(192.0.2.1), which refused to map lately: 2 NOT_AUTHORIZED']);
});

test('when nothing else is found, the NAT that refused lately is the result (at the end, or at the deadline)', () => {
  const scheduler = new VirtualTimeScheduler();
  const refused = extIpNamed('pcp(192.0.2.1)');
  const why = new Error('2 NOT_AUTHORIZED');
  const unusable = (nat: Nat): Error | null => (nat === refused ? why : null);
  let ended: Nat | undefined;
  raceNats([{ name: 'pcp', nat$: of(refused) }, { name: 'pmp', nat$: throwError(() => new Error('silent')) }], 2000, { scheduler, unusable }).subscribe((nat) => (ended = nat));
  assert.equal(ended, refused, 'every other probe failed: no need to wait');
  let atDeadline: Nat | undefined;
  raceNats([{ name: 'pcp', nat$: of(refused) }, { name: 'upnp', nat$: NEVER }], 2000, { scheduler, unusable }).subscribe((nat) => (atDeadline = nat));
  assert.equal(atDeadline, undefined);
  scheduler.flush();
  assert.equal(atDeadline, refused);
  let failure: unknown;
  raceNats([{ name: 'pmp', nat$: NEVER }], 2000, { scheduler: new VirtualTimeScheduler(), unusable }).subscribe({ error: (e: unknown) => (failure = e) });
  assert.equal(failure, undefined);
});

function extIpNamed(name: string): Nat {
  return { ...extIp('203.0.113.7'), name };
}
