/**
 * backoffDelayMs: the base doubles per attempt up to the cap, and jitter spreads it by ± the
 * jitter fraction as `random` goes from 0 to 1. The other tests pin `random: () => 0.5`, which
 * makes the jitter term zero; here it is not.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backoffDelayMs } from '../../src/core/backoff.js';

test('without jitter the delay doubles from initialDelayMs and stops at maxDelayMs', () => {
  const half = (): number => 0.5;
  assert.deepEqual(
    [1, 2, 3, 4, 7, 8, 100].map((attempt) => backoffDelayMs(attempt, {}, half)),
    [1000, 2000, 4000, 8000, 60_000, 60_000, 60_000],
  );
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((attempt) => backoffDelayMs(attempt, { initialDelayMs: 500, maxDelayMs: 3000 }, half)),
    [500, 500, 1000, 2000, 3000],
  );
});

test('random 0 takes the jitter off the delay, random near 1 adds it, 0.75 adds half of it', () => {
  const at = (value: number, jitter?: number): number => backoffDelayMs(1, jitter === undefined ? {} : { jitter }, () => value);
  assert.equal(at(0), 800, 'default jitter 0.2: 1000 × (1 − 0.2)');
  assert.equal(at(0.75), 1100, '1000 × (1 + 0.2 × 0.5)');
  assert.equal(at(0.999), 1200, '1000 × (1 + 0.2 × 0.998), rounded');
  assert.equal(at(0.25, 0.5), 750, '1000 × (1 − 0.5 × 0.5)');
  assert.equal(at(0, 0), 1000, 'no jitter');
  assert.equal(backoffDelayMs(3, { jitter: 0.1 }, () => 0), 3600, 'the jitter scales the doubled base: 4000 × 0.9');
});
