/**
 * createDebugLogger's own edges; logging.test.ts has the DEBUG conventions (patterns, lists,
 * compiling once) and the backends' log lines. Here: where the `+…` delta switches unit, which
 * fields of a logged error survive, the default clock, what `namespaces` reads, and patterns that
 * name nothing.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createDebugLogger } from '../../src/core/logger.js';

/** A logger on an injected list, sink and clock. */
const harness = (namespaces: string | undefined, clock: { t: number } = { t: 0 }) => {
  const lines: string[] = [];
  let env = namespaces;
  const logger = createDebugLogger({ source: () => env, write: (line) => lines.push(line), now: () => clock.t });
  return { logger, lines, setEnv: (value: string | undefined) => void (env = value) };
};

test('the delta switches unit at exactly 1 s, 1 min and 1 h', () => {
  const clock = { t: 0 };
  const h = harness('*', clock);
  const deltas = [999, 1_000, 59_999, 60_000, 3_599_999, 3_600_000];
  h.logger.debug('x', 'start');
  for (const delta of deltas) {
    clock.t += delta;
    h.logger.debug('x', String(delta));
  }
  assert.deepEqual(h.lines.slice(1), ['x 999 +999ms', 'x 1000 +1.0s', 'x 59999 +60.0s', 'x 60000 +1.0m', 'x 3599999 +60.0m', 'x 3600000 +1.0h']);
});

test('a logged error keeps its code first, even one from a getter, then its own fields, then a non-enumerable cause', () => {
  const h = harness('*');
  class CodedError extends Error {
    get code(): string {
      return 'E_CODED';
    }
  }
  const refused = Object.assign(new Error('connect ECONNREFUSED'), { errno: -111, code: 'ECONNREFUSED' });
  const outer = new Error('add failed', { cause: refused });
  h.logger.debug('x', 'refused', { error: refused });
  h.logger.debug('x', 'coded', { error: new CodedError('coded') });
  h.logger.debug('x', 'caused', { error: outer });
  h.logger.debug('x', 'text cause', { error: new Error('outer', { cause: 'a reason' }) });
  h.logger.debug('x', 'plain', { error: new Error('plain') });
  assert.deepEqual(h.lines, [
    'x refused {"error":{"name":"Error","message":"connect ECONNREFUSED","code":"ECONNREFUSED","errno":-111}} +0ms',
    'x coded {"error":{"name":"Error","message":"coded","code":"E_CODED"}} +0ms',
    'x caused {"error":{"name":"Error","message":"add failed","cause":{"name":"Error","message":"connect ECONNREFUSED","code":"ECONNREFUSED","errno":-111}}} +0ms',
    'x text cause {"error":{"name":"Error","message":"outer","cause":"a reason"}} +0ms',
    'x plain {"error":{"name":"Error","message":"plain"}} +0ms',
  ]);
});

test('the default clock is performance.now(); without performance the deltas are +0ms, never a crash', (t) => {
  let now = 5_000;
  t.mock.method(performance, 'now', () => now);
  const lines: string[] = [];
  const logger = createDebugLogger({ source: () => '*', write: (line) => lines.push(line) });
  logger.debug('a', 'one');
  now += 250;
  logger.debug('a', 'two');
  assert.deepEqual(lines, ['a one +0ms', 'a two +250ms']);

  const descriptor = Object.getOwnPropertyDescriptor(globalThis, 'performance');
  Object.defineProperty(globalThis, 'performance', { value: undefined, configurable: true, writable: true });
  try {
    const bare: string[] = [];
    const without = createDebugLogger({ source: () => '*', write: (line) => bare.push(line) });
    without.debug('a', 'one');
    without.debug('a', 'two');
    assert.deepEqual(bare, ['a one +0ms', 'a two +0ms']);
  } finally {
    if (descriptor) Object.defineProperty(globalThis, 'performance', descriptor);
  }
});

test('namespaces reads the source on first use only, whichever call comes first', () => {
  const first = harness('rxnat:*');
  assert.equal(first.logger.namespaces, 'rxnat:*', 'read by namespaces itself');
  first.setEnv('other');
  assert.equal(first.logger.namespaces, 'rxnat:*', 'not re-read without enable()');

  assert.equal(harness(undefined).logger.namespaces, '', 'an unset source is the empty list');
  const afterCall = harness(undefined);
  assert.equal(afterCall.logger.enabled('x'), false);
  assert.equal(afterCall.logger.namespaces, '', 'the same when a call read it first');
});

test('an empty pattern or a lone "-" names no namespace, not even the empty one', () => {
  assert.equal(harness('rxnat:*,').logger.enabled(''), false, 'a trailing comma adds no pattern');
  assert.equal(harness('-rxnat:pmp').logger.enabled(''), false, 'exclusions alone include nothing');
  assert.equal(harness('*,-').logger.enabled(''), true, 'a lone - excludes nothing');
  assert.equal(harness('*').logger.enabled(''), true);
});

test('each namespace is tested once while the verdict cache holds; past 512 distinct names it starts over', () => {
  const tested: string[] = [];
  const logger = createDebugLogger({
    source: () => 'rxnat:*',
    write: () => undefined,
    compile: (source) => {
      const re = new RegExp(source);
      const test = re.test.bind(re);
      re.test = (s) => (tested.push(s), test(s));
      return re;
    },
  });
  for (let i = 0; i < 3; i++) for (const ns of ['a', 'b', 'rxnat:map']) logger.debug(ns, 'x');
  assert.deepEqual(tested, ['a', 'b', 'rxnat:map'], 'alternating names do not evict each other');

  tested.length = 0;
  for (let i = 3; i < 512; i++) logger.enabled(`n${i}`); // 512 distinct names cached now
  logger.enabled('a');
  assert.ok(!tested.includes('a'), 'still cached at 512 names');
  logger.enabled('n512'); // the 513th: the cache starts over
  tested.length = 0;
  logger.enabled('a');
  assert.deepEqual(tested, ['a'], 'tested again after the cache started over');
});
