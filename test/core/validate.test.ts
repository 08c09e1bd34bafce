/** Options and requests are checked at subscribe: ranges, floors, types. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asyncScheduler, of } from 'rxjs';
import { InvalidOptionError } from '../../src/errors.js';
import { OPTION_LIMITS, resolveMapPortOptions } from '../../src/core/validate.js';
import { mapPort } from '../../src/core/map-port.js';
import { extIp } from '../../src/core/ext-ip.js';

test('defaults: 1/3, 15 s, 1 s → 60 s with 20 % jitter, 3 refusals, 10 s, asyncScheduler', () => {
  const o = resolveMapPortOptions({});
  assert.equal(o.renewFraction, 1 / 3);
  assert.equal(o.externalIpCacheMs, 15_000);
  assert.deepEqual(o.retry, { initialDelayMs: 1000, maxDelayMs: 60_000, jitter: 0.2 });
  assert.equal(o.maxConsecutiveUnreachable, 3);
  assert.equal(o.teardownTimeoutMs, 10_000);
  assert.equal(o.scheduler, asyncScheduler);
  assert.deepEqual(resolveMapPortOptions(undefined).retry, o.retry);
});

test('every option out of its range is an InvalidOptionError naming it', () => {
  const bad: Array<[Record<string, unknown>, string]> = [
    [{ renewFraction: 0 }, 'renewFraction'],
    [{ renewFraction: 1 }, 'renewFraction'],
    [{ renewFraction: Number.NaN }, 'renewFraction'],
    [{ renewFraction: -0.5 }, 'renewFraction'],
    [{ renewFraction: '0.3' }, 'renewFraction'],
    [{ externalIpCacheMs: 0 }, 'externalIpCacheMs'],
    [{ externalIpCacheMs: OPTION_LIMITS.minExternalIpCacheMs - 1 }, 'externalIpCacheMs'],
    [{ externalIpCacheMs: Infinity }, 'externalIpCacheMs'],
    [{ retry: { initialDelayMs: 0 } }, 'retry.initialDelayMs'],
    [{ retry: { initialDelayMs: OPTION_LIMITS.minInitialDelayMs - 1 } }, 'retry.initialDelayMs'],
    [{ retry: { maxDelayMs: 100 } }, 'retry.maxDelayMs'],
    [{ retry: { initialDelayMs: 5000, maxDelayMs: 1000 } }, 'retry.maxDelayMs'],
    [{ retry: { jitter: -0.1 } }, 'retry.jitter'],
    [{ retry: { jitter: 0.9 } }, 'retry.jitter'],
    [{ retry: null }, 'retry'],
    [{ maxConsecutiveUnreachable: 0 }, 'maxConsecutiveUnreachable'],
    [{ maxConsecutiveUnreachable: 1.5 }, 'maxConsecutiveUnreachable'],
    [{ teardownTimeoutMs: 0 }, 'teardownTimeoutMs'],
    [{ teardownTimeoutMs: 2 ** 31 }, 'teardownTimeoutMs'],
    [{ stop: 'now' }, 'stop'],
    [{ logger: {} }, 'logger'],
    [{ logger: null }, 'logger'],
    [{ random: 0.5 }, 'random'],
    [{ scheduler: null }, 'scheduler'],
    [{ scheduler: {} }, 'scheduler'],
  ];
  for (const [options, option] of bad) {
    assert.throws(
      () => resolveMapPortOptions(options as never),
      (e: unknown) => e instanceof InvalidOptionError && e.option === option && e.code === 'ERR_INVALID_OPTION',
      JSON.stringify(options),
    );
  }
  assert.throws(() => resolveMapPortOptions(7 as never), InvalidOptionError);
});

test('the limits themselves are accepted', () => {
  const o = resolveMapPortOptions({
    renewFraction: 0.99,
    externalIpCacheMs: OPTION_LIMITS.minExternalIpCacheMs,
    retry: { initialDelayMs: OPTION_LIMITS.minInitialDelayMs, maxDelayMs: OPTION_LIMITS.minMaxDelayMs, jitter: 0.5 },
    maxConsecutiveUnreachable: 1,
    teardownTimeoutMs: 1,
    stop: of(1),
  });
  assert.equal(o.retry.maxDelayMs, 500);
});

test('a random source that answers outside [0, 1) is tamed, never trusted', () => {
  const o = resolveMapPortOptions({ random: () => 7 });
  assert.equal(o.random(), 0.5);
});

test('mapPort errors at subscribe with the InvalidOptionError, before any request; a non-NAT is refused too', () => {
  let error: unknown;
  mapPort(extIp('203.0.113.7'), { protocol: 'tcp', internalPort: 8080 }, { renewFraction: 0 }).subscribe({ error: (e: unknown) => (error = e) });
  assert.ok(error instanceof InvalidOptionError && error.option === 'renewFraction');
  let second: unknown;
  mapPort(null as never, { protocol: 'tcp', internalPort: 8080 }).subscribe({ error: (e: unknown) => (second = e) });
  assert.ok(second instanceof InvalidOptionError && second.option === 'nat');
});
