/**
 * The edges of src/core/validate.ts that validate.test.ts leaves open: the bounds of ports and
 * lifetimes, requests that are not objects, the default description, what each error says, a
 * scheduler missing one of its two methods, and that a valid random value is used as it is.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidMappingRequestError, InvalidOptionError } from '../../src/errors.js';
import { resolveMapPortOptions, resolveMappingRequest } from '../../src/core/validate.js';

/** Asserts `run` throws an InvalidMappingRequestError for `field` whose message is `message`. */
const refusesRequest = (run: () => unknown, field: string, message: string): void => {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof InvalidMappingRequestError, String(e));
    assert.equal(e.field, field);
    assert.equal(e.message, message);
    return true;
  });
};

/** Asserts `run` throws an InvalidOptionError for `option` whose message is `message`. */
const refusesOption = (run: () => unknown, option: string, message: string): void => {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof InvalidOptionError, String(e));
    assert.equal(e.option, option);
    assert.equal(e.message, message);
    return true;
  });
};

test('ports 1 and 65535 are accepted, internal and external; 0 and 65536 are not', () => {
  assert.equal(resolveMappingRequest({ protocol: 'tcp', internalPort: 1 }).externalPort, 1);
  assert.equal(resolveMappingRequest({ protocol: 'udp', internalPort: 65535 }).externalPort, 65535);
  assert.equal(resolveMappingRequest({ protocol: 'tcp', internalPort: 80, externalPort: 1 }).externalPort, 1);
  assert.equal(resolveMappingRequest({ protocol: 'tcp', internalPort: 80, externalPort: 65535 }).externalPort, 65535);
  refusesRequest(() => resolveMappingRequest({ protocol: 'tcp', internalPort: 0 }), 'internalPort', 'internal port 0 is not an integer in 1-65535');
  refusesRequest(() => resolveMappingRequest({ protocol: 'tcp', internalPort: 80, externalPort: 65536 }), 'externalPort', 'external port 65536 is not an integer in 1-65535');
});

test('the defaults of a request: external port = internal port, description "rxnat", lifetime 60 s', () => {
  assert.deepEqual(resolveMappingRequest({ protocol: 'tcp', internalPort: 8080 }), {
    protocol: 'tcp',
    internalPort: 8080,
    externalPort: 8080,
    description: 'rxnat',
    lifetimeSeconds: 60,
  });
  assert.equal(resolveMappingRequest({ protocol: 'tcp', internalPort: 8080, description: '' }).description, '');
});

test('a request that is not an object is refused as "request", before any field is read', () => {
  for (const request of [null, undefined, 'tcp/8080', 8080, true]) {
    refusesRequest(() => resolveMappingRequest(request as never), 'request', 'a mapping request must be an object');
  }
});

test('an unknown protocol is refused with the protocol in the message', () => {
  refusesRequest(() => resolveMappingRequest({ protocol: 'sctp', internalPort: 1 } as never), 'protocol', `unknown protocol "sctp": use 'tcp' or 'udp'`);
});

test('lifetimes: whole seconds from 0 (permanent) to 2^32-1; fractions, NaN, strings, negatives and more are refused', () => {
  assert.equal(resolveMappingRequest({ protocol: 'tcp', internalPort: 1, lifetimeSeconds: 0 }).lifetimeSeconds, 0);
  assert.equal(resolveMappingRequest({ protocol: 'tcp', internalPort: 1, lifetimeSeconds: 0xffffffff }).lifetimeSeconds, 0xffffffff);
  for (const lifetimeSeconds of [1.5, Number.NaN, -1, 2 ** 32, Infinity, '60']) {
    refusesRequest(
      () => resolveMappingRequest({ protocol: 'tcp', internalPort: 1, lifetimeSeconds } as never),
      'lifetimeSeconds',
      `lifetime ${String(lifetimeSeconds)} is not a whole number of seconds >= 0`,
    );
  }
});

test('a description that is not a string is refused', () => {
  for (const description of [5, null, { text: 'x' }]) {
    refusesRequest(() => resolveMappingRequest({ protocol: 'tcp', internalPort: 1, description } as never), 'description', 'the description must be a string');
  }
});

test('what each refused option says: its name, its range (open or closed) and the value', () => {
  refusesOption(() => resolveMapPortOptions('fast' as never), 'options', 'the options must be an object');
  refusesOption(() => resolveMapPortOptions({ renewFraction: 1 }), 'renewFraction', 'renewFraction must be a finite number in (0, 1), not 1');
  refusesOption(() => resolveMapPortOptions({ externalIpCacheMs: 10 }), 'externalIpCacheMs', `externalIpCacheMs must be a finite number in [250, ${2 ** 31 - 1}], not 10`);
  refusesOption(() => resolveMapPortOptions({ maxConsecutiveUnreachable: 2.5 }), 'maxConsecutiveUnreachable', 'maxConsecutiveUnreachable must be a whole number, not 2.5');
  refusesOption(() => resolveMapPortOptions({ stop: 'now' as never }), 'stop', 'stop must be an Observable');
  refusesOption(() => resolveMapPortOptions({ logger: {} as never }), 'logger', 'logger must be an object with a debug(namespace, message, data) method');
  refusesOption(() => resolveMapPortOptions({ random: 0.5 as never }), 'random', 'random must be a function returning a number in [0, 1)');
  refusesOption(() => resolveMapPortOptions({ scheduler: {} as never }), 'scheduler', 'scheduler must be an rxjs SchedulerLike (with now() and schedule())');
});

test('retry must be an object: a number or a string is refused, not read as "the defaults"', () => {
  for (const retry of [5, 'fast', true]) {
    refusesOption(() => resolveMapPortOptions({ retry } as never), 'retry', 'retry must be an object');
  }
});

test('a scheduler needs both now() and schedule(): either one alone is refused', () => {
  refusesOption(() => resolveMapPortOptions({ scheduler: { schedule: () => undefined } as never }), 'scheduler', 'scheduler must be an rxjs SchedulerLike (with now() and schedule())');
  refusesOption(() => resolveMapPortOptions({ scheduler: { now: () => 0 } as never }), 'scheduler', 'scheduler must be an rxjs SchedulerLike (with now() and schedule())');
  const scheduler = { now: () => 0, schedule: () => undefined };
  assert.equal(resolveMapPortOptions({ scheduler: scheduler as never }).scheduler, scheduler);
});

test('a random value in [0, 1) is used as it is; anything else (1, negative, NaN, a string) becomes 0.5', () => {
  const table: Array<[unknown, number]> = [
    [0, 0],
    [0.25, 0.25],
    [0.999, 0.999],
    [1, 0.5],
    [-0.1, 0.5],
    [Number.NaN, 0.5],
    ['0.3', 0.5],
    [undefined, 0.5],
  ];
  for (const [value, expected] of table) {
    const o = resolveMapPortOptions({ random: () => value as number });
    assert.equal(o.random(), expected, String(value));
  }
});
