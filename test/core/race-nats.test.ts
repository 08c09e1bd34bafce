/**
 * raceNats beyond the marble contract (marbles/10-discovery-race): the scheduler it is given is
 * the one its deadline runs on, and each probe that fails is logged under rxnat:discover.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NEVER, throwError, VirtualTimeScheduler } from 'rxjs';
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
