import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filter, firstValueFrom } from 'rxjs';
import { mapPort } from '../../src/core/map-port.js';
import { createDebugLogger, debugLogger, enableDebug, type Logger } from '../../src/core/logger.js';
import { RxnatError } from '../../src/errors.js';
import { pmp } from '../../src/protocols/pmp/client.js';
import { pcp } from '../../src/protocols/pcp/client.js';
import { upnp } from '../../src/protocols/upnp/client.js';
import { startGatewaySimulator } from '../../src/testing/simulator.js';

test('every backend logs its requests and replies under rxnat:<protocol>, and the stream its steps under rxnat:map', async () => {
  const sim = await startGatewaySimulator();
  const lines: string[] = [];
  const logger: Logger = { debug: (namespace, message) => lines.push(`${namespace} ${message}`) };
  try {
    for (const nat$ of [
      pmp('127.0.0.1', { port: sim.pmpPort, logger }),
      pcp('127.0.0.1', { port: sim.pmpPort, logger }),
      upnp({ descriptionUrl: sim.descriptionUrl, logger }),
    ]) {
      const state = await firstValueFrom(mapPort(nat$, { protocol: 'tcp', internalPort: 8080 }, { logger }).pipe(filter((s) => s.status === 'mapped')));
      assert.equal(state.externalPort, 8080, 'mapped');
    }
  } finally {
    await sim.close();
  }
  for (const expected of [/^rxnat:pmp send to 127\.0\.0\.1:\d+: 0000$/, /^rxnat:pmp reply from 127\.0\.0\.1:\d+: 0080/, /^rxnat:pcp send to /, /^rxnat:pcp reply from /, /^rxnat:upnp AddPortMapping .*: sent$/, /^rxnat:upnp AddPortMapping .*: answered/, /^rxnat:map .*granted external port 8080/]) {
    assert.ok(lines.some((line) => expected.test(line)), `no log line matches ${expected}:\n${lines.join('\n')}`);
  }
});

// ---------------------------------------------------------------------------------------------
// The default logger's DEBUG handling: the conventions of the `debug` package.

/** A logger on an injected namespace list, sink, clock and counting compile hook. */
const harness = (namespaces: string, clock: { t: number } = { t: 0 }) => {
  const lines: string[] = [];
  const compiled: string[] = [];
  let env: string | undefined = namespaces;
  const logger = createDebugLogger({
    source: () => env,
    write: (line) => lines.push(line),
    now: () => clock.t,
    compile: (source) => {
      compiled.push(source);
      return new RegExp(source);
    },
  });
  const setEnv = (value: string | undefined): void => {
    env = value;
  };
  /** The namespaces among `candidates` that print a line. */
  const printed = (...candidates: string[]): string[] => {
    lines.length = 0;
    for (const ns of candidates) logger.debug(ns, 'hello');
    return lines.map((line) => line.split(' ')[0] ?? '');
  };
  return { logger, lines, compiled, setEnv, printed };
};

const ALL = ['rxnat:map', 'rxnat:discover', 'rxnat:pmp', 'rxnat:pcp', 'rxnat:upnp', 'rxnat:cli', 'other:thing'];

test('an exclusion wins over an inclusion, wherever it stands in the list', () => {
  const expected = ['rxnat:map', 'rxnat:discover', 'rxnat:pcp', 'rxnat:upnp', 'rxnat:cli'];
  assert.deepEqual(harness('rxnat:*,-rxnat:pmp').printed(...ALL), expected);
  assert.deepEqual(harness('-rxnat:pmp,rxnat:*').printed(...ALL), expected);
  assert.deepEqual(harness('rxnat:pmp,-rxnat:pmp').printed(...ALL), [], 'naming it explicitly does not beat the exclusion');
  assert.deepEqual(harness('*,-rxnat:*').printed(...ALL), ['other:thing']);
  assert.deepEqual(harness('rxnat:*,-rxnat:p*').printed(...ALL), ['rxnat:map', 'rxnat:discover', 'rxnat:upnp', 'rxnat:cli'], 'wildcard exclusion');
  assert.deepEqual(harness('-rxnat:pmp').printed(...ALL), [], 'exclusions alone enable nothing');
});

test('wildcards match any run of characters, anywhere; everything else is literal', () => {
  assert.deepEqual(harness('*').printed(...ALL), ALL);
  assert.deepEqual(harness('rxnat:*').printed(...ALL), ALL.slice(0, 6));
  assert.deepEqual(harness('rxnat:p*p').printed(...ALL), ['rxnat:pmp', 'rxnat:pcp']);
  assert.deepEqual(harness('*:upnp').printed(...ALL), ['rxnat:upnp']);
  assert.deepEqual(harness('rxnat').printed(...ALL), [], 'no implicit prefix match');
  assert.deepEqual(harness('rxnat.pmp').printed('rxnat:pmp', 'rxnat.pmp'), ['rxnat.pmp'], '. is literal, not a regex dot');
  assert.deepEqual(harness('rxnat:(pmp|pcp)').printed('rxnat:pmp', 'rxnat:(pmp|pcp)'), ['rxnat:(pmp|pcp)'], 'regex syntax is literal');
  assert.deepEqual(harness('RXNAT:*').printed('rxnat:pmp'), [], 'case-sensitive, like debug');
  assert.deepEqual(harness('').printed(...ALL), [], 'empty enables nothing');
});

test('lists are separated by commas, spaces or both, and tolerate stray separators', () => {
  assert.deepEqual(harness('rxnat:pmp,rxnat:upnp').printed(...ALL), ['rxnat:pmp', 'rxnat:upnp']);
  assert.deepEqual(harness('rxnat:pmp rxnat:upnp').printed(...ALL), ['rxnat:pmp', 'rxnat:upnp']);
  assert.deepEqual(harness(' ,rxnat:pmp, \t rxnat:upnp,, -rxnat:upnp ,').printed(...ALL), ['rxnat:pmp']);
  assert.deepEqual(harness('rxnat:map,-').printed(...ALL), ['rxnat:map'], 'a lone - is ignored');
});

test('patterns are compiled once; disabled and enabled calls do not rebuild them', () => {
  const h = harness('rxnat:*,-rxnat:pmp');
  assert.equal(h.compiled.length, 0, 'nothing is compiled before the first call');
  for (let i = 0; i < 1000; i++) h.logger.debug('rxnat:pmp', 'dropped', { i });
  assert.equal(h.compiled.length, 2, 'one include and one exclude expression, built on the first call only');
  for (let i = 0; i < 1000; i++) h.logger.debug('rxnat:map', 'kept');
  for (let i = 0; i < 1000; i++) h.logger.debug('other:thing', 'dropped');
  assert.equal(h.compiled.length, 2, 'still the same two expressions');
  assert.equal(h.lines.length, 1000);

  const lone = harness('rxnat:map');
  lone.logger.debug('rxnat:map', 'x');
  assert.deepEqual(lone.compiled, ['^(?:rxnat:map)$'], 'no exclude expression when there are no exclusions');
});

test('the disabled path tests each namespace once, then only looks its verdict up', () => {
  let tests = 0;
  const counting = createDebugLogger({
    source: () => 'rxnat:map',
    write: () => undefined,
    compile: (source) => {
      const re = new RegExp(source);
      const test = re.test.bind(re);
      re.test = (s) => (tests++, test(s));
      return re;
    },
  });
  for (let i = 0; i < 1000; i++) counting.debug('rxnat:pmp', 'dropped');
  assert.equal(tests, 1, 'one regex test for the first call, none after');
});

test('a changed list is recompiled by enable(); an unchanged one is not', () => {
  const h = harness('rxnat:pmp');
  assert.deepEqual(h.printed(...ALL), ['rxnat:pmp']);
  assert.equal(h.compiled.length, 1);

  h.setEnv('rxnat:*,-rxnat:pmp');
  assert.deepEqual(h.printed(...ALL), ['rxnat:pmp'], 'the source is not polled on every call');
  h.logger.enable();
  assert.deepEqual(h.printed(...ALL), ['rxnat:map', 'rxnat:discover', 'rxnat:pcp', 'rxnat:upnp', 'rxnat:cli'], 're-read on enable()');
  assert.equal(h.compiled.length, 3);
  assert.equal(h.logger.namespaces, 'rxnat:*,-rxnat:pmp');

  h.logger.enable();
  h.logger.enable('rxnat:*,-rxnat:pmp');
  assert.equal(h.compiled.length, 3, 'the same list again is not recompiled');

  h.logger.enable('rxnat:upnp');
  assert.deepEqual(h.printed(...ALL), ['rxnat:upnp'], 'an explicit list');
  assert.equal(h.logger.enabled('rxnat:upnp'), true);
  assert.equal(h.logger.enabled('rxnat:pmp'), false);

  h.logger.enable('');
  assert.deepEqual(h.printed(...ALL), [], 'the empty list silences it');
  h.setEnv(undefined);
  h.logger.enable();
  assert.deepEqual(h.printed(...ALL), [], 'an unset source enables nothing');
  assert.equal(h.logger.namespaces, '');
});

test('the default logger reads process.env.DEBUG, and enableDebug() re-reads or replaces it', (t) => {
  const saved = process.env.DEBUG;
  const lines: string[] = [];
  t.mock.method(console, 'error', (line: string) => void lines.push(line));
  try {
    process.env.DEBUG = 'rxnat:*,-rxnat:pmp';
    enableDebug();
    debugLogger.debug('rxnat:pmp', 'hidden');
    debugLogger.debug('rxnat:upnp', 'shown');
    enableDebug('rxnat:pmp');
    debugLogger.debug('rxnat:pmp', 'now shown');
    debugLogger.debug('rxnat:upnp', 'now hidden');
    assert.deepEqual(
      lines.map((line) => line.replace(/ \+\d+ms$/, '')),
      ['rxnat:upnp shown', 'rxnat:pmp now shown'],
    );
  } finally {
    if (saved === undefined) delete process.env.DEBUG;
    else process.env.DEBUG = saved;
    enableDebug();
  }
});

test('each line ends with the time since the previous line in its namespace, like debug', () => {
  const clock = { t: 1_000 };
  const h = harness('*', clock);
  h.logger.debug('rxnat:map', 'first');
  clock.t += 12.4;
  h.logger.debug('rxnat:map', 'second');
  h.logger.debug('rxnat:pmp', 'other namespace');
  clock.t += 1_500;
  h.logger.debug('rxnat:map', 'third');
  clock.t += 90_000;
  h.logger.debug('rxnat:pmp', 'later');
  clock.t += 2 * 3_600_000;
  h.logger.debug('rxnat:pmp', 'much later');
  assert.deepEqual(h.lines, [
    'rxnat:map first +0ms',
    'rxnat:map second +12ms',
    'rxnat:pmp other namespace +0ms',
    'rxnat:map third +1.5s',
    'rxnat:pmp later +1.5m',
    'rxnat:pmp much later +2.0h',
  ]);
});

test('the default clock gives real, non-negative deltas', async () => {
  const lines: string[] = [];
  const logger = createDebugLogger({ source: () => '*', write: (line) => lines.push(line) });
  logger.debug('a', 'one');
  await new Promise((resolve) => setTimeout(resolve, 5));
  logger.debug('a', 'two');
  assert.match(lines[0] ?? '', /^a one \+0ms$/);
  assert.match(lines[1] ?? '', /^a two \+\d+ms$/);
});

test('data is JSON; errors keep name, message, code, their own fields and cause', () => {
  const h = harness('*');
  const cause = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5351'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' });
  const error = new RxnatError('ERR_NO_GATEWAY', 'no gateway answered', { cause });
  h.logger.debug('rxnat:map', 'failed', { error, port: 8080, nested: [{ backend: 'pmp', error: new TypeError('bad') }] });
  const line = h.lines[0] ?? '';
  assert.match(line, /^rxnat:map failed \{.*\} \+0ms$/);
  const data = JSON.parse(line.slice('rxnat:map failed '.length, line.lastIndexOf(' +'))) as Record<string, unknown>;
  assert.deepEqual(data, {
    error: {
      name: 'RxnatError',
      message: 'no gateway answered',
      code: 'ERR_NO_GATEWAY',
      cause: { name: 'Error', message: 'connect ECONNREFUSED 127.0.0.1:5351', code: 'ECONNREFUSED', errno: -111, syscall: 'connect' },
    },
    port: 8080,
    nested: [{ backend: 'pmp', error: { name: 'TypeError', message: 'bad' } }],
  });

  h.lines.length = 0;
  h.logger.debug('rxnat:map', 'no data');
  assert.deepEqual(h.lines, ['rxnat:map no data +0ms'], 'no data, no trailing JSON');
});

test('serialising data never throws: bigints, cycles and self-causing errors', () => {
  const h = harness('*');
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const loop = new Error('loop');
  loop.cause = loop;
  const aggregate = new AggregateError([new Error('one'), new RangeError('two')], 'both failed');
  assert.doesNotThrow(() => {
    h.logger.debug('x', 'big', { n: 2n ** 70n });
    h.logger.debug('x', 'cyclic', { cyclic });
    h.logger.debug('x', 'loop', { loop });
    h.logger.debug('x', 'aggregate', { aggregate });
  });
  assert.equal(h.lines[0], 'x big {"n":"1180591620717411303424"} +0ms');
  assert.match(h.lines[1] ?? '', /^x cyclic \[unserialisable data: .*circular.*\] \+0ms$/i);
  assert.equal(h.lines[2], 'x loop {"loop":{"name":"Error","message":"loop","cause":"[repeated Error: loop]"}} +0ms');
  assert.equal(
    h.lines[3],
    'x aggregate {"aggregate":{"name":"AggregateError","message":"both failed","errors":[{"name":"Error","message":"one"},{"name":"RangeError","message":"two"}]}} +0ms',
  );
});
