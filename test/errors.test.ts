/**
 * Errors serialise: `JSON.stringify` of any RxnatError (alone, or as a MappingState's `error`)
 * gives `name`, `code`, `message`, its own fields and its `cause`, nested errors included, and
 * never throws (cycles, bigints). `serializeError` does the same for errors that are not ours.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { unestablished } from '../src/core/mapping-state.js';
import {
  DefaultGatewayError,
  GatewayError,
  GatewayLostError,
  GatewayResetError,
  GatewayTimeoutError,
  GatewayUnreachableError,
  InvalidMappingRequestError,
  InvalidOptionError,
  LeaseExpiredError,
  NatSpecError,
  NoGatewayError,
  NoMappingError,
  ProtocolError,
  RxnatError,
  serializeError,
  UnconfirmedDeleteError,
} from '../src/errors.js';
import { CloseTimeoutError } from '../src/facade/pending-delete.js';
import * as rxnat from '../src/index.js';

const json = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

const refused = (): GatewayError =>
  new GatewayError({ protocol: 'pcp', resultCode: 8, resultName: 'NO_RESOURCES', gateway: '192.168.1.1', retryAfterSeconds: 30 });

describe('RxnatError.toJSON', () => {
  it('a GatewayError: name, code, message and every field', () => {
    const text = JSON.stringify(refused());
    assert.deepEqual(JSON.parse(text), {
      name: 'GatewayError',
      code: 'ERR_GATEWAY_REFUSED',
      message: 'pcp gateway 192.168.1.1 refused: 8 NO_RESOURCES',
      protocol: 'pcp',
      resultCode: 8,
      resultName: 'NO_RESOURCES',
      gateway: '192.168.1.1',
      retryAfterSeconds: 30,
    });
    assert.deepEqual(Object.keys(JSON.parse(text) as object).slice(0, 3), ['name', 'code', 'message'], 'name, code, message first');
    assert.ok(!text.includes('stack'), 'no stack');
  });

  it('a MappingState with an UnconfirmedDeleteError: its deletes, each with its own error serialised (plain Errors too)', () => {
    const error = new UnconfirmedDeleteError([
      { protocol: 'udp', internalPort: 4001, externalPort: 14001, gateway: 'pmp(192.168.1.1)', leaseEndsAtMs: 1_700_000_060_000, error: refused() },
      { protocol: 'tcp', internalPort: 8080, externalPort: 8080, gateway: 'pmp(192.168.1.1)', leaseEndsAtMs: null, error: new Error('socket closed') },
      { protocol: 'tcp', internalPort: 8081, externalPort: 8081, gateway: 'pmp(192.168.1.1)', leaseEndsAtMs: null, error: new CloseTimeoutError('pmp(192.168.1.1)', 25_000) },
    ]);
    const state = { ...unestablished('udp', 4001, 'unmapped', 'pmp(192.168.1.1)', error) };
    const parsed = json(state) as { error: { name: string; code: string; message: string; deletes: Array<Record<string, unknown>> } };
    assert.equal(parsed.error.name, 'UnconfirmedDeleteError');
    assert.equal(parsed.error.code, 'ERR_DELETE_UNCONFIRMED');
    assert.equal(parsed.error.message, error.message);
    assert.deepEqual(parsed.error.deletes[0], {
      protocol: 'udp',
      internalPort: 4001,
      externalPort: 14001,
      gateway: 'pmp(192.168.1.1)',
      leaseEndsAtMs: 1_700_000_060_000,
      error: json(refused()),
    });
    assert.deepEqual(parsed.error.deletes[1]!.error, { name: 'Error', message: 'socket closed' });
    assert.deepEqual(parsed.error.deletes[2]!.error, {
      name: 'CloseTimeoutError',
      code: 'ERR_CLOSE_TIMEOUT',
      message: 'pmp(192.168.1.1) did not confirm the delete within 25000 ms (gave up waiting)',
      timeoutMs: 25_000,
      gateway: 'pmp(192.168.1.1)',
    });
    assert.equal(parsed.error.deletes[1]!.leaseEndsAtMs, null);
  });

  it('the cause is serialised: a Node.js system error keeps code, errno, syscall', () => {
    const cause = Object.assign(new Error('connect ECONNREFUSED 192.168.1.1:5351'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect', address: '192.168.1.1', port: 5351 });
    const error = new GatewayUnreachableError('pmp', '192.168.1.1', 'connection refused', { cause });
    assert.deepEqual(json(error), {
      name: 'GatewayUnreachableError',
      code: 'ERR_GATEWAY_UNREACHABLE',
      message: 'pmp gateway 192.168.1.1 unreachable: connection refused',
      protocol: 'pmp',
      gateway: '192.168.1.1',
      socketCode: 'ECONNREFUSED',
      cause: { name: 'Error', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 192.168.1.1:5351', errno: -111, syscall: 'connect', address: '192.168.1.1', port: 5351 },
    });
    const lost = new GatewayLostError('upnp(192.168.1.1)', error);
    assert.equal((json(lost) as { cause: { cause: { errno: number } } }).cause.cause.errno, -111, 'a chain of causes');
  });

  it('never throws: a circular cause, an error among its own deletes, a bigint, a cyclic field', () => {
    const a = new RxnatError('ERR_A', 'a');
    const b = new RxnatError('ERR_B', 'b', { cause: a });
    Object.defineProperty(a, 'cause', { value: b, enumerable: false });
    assert.deepEqual(json(a), {
      name: 'RxnatError',
      code: 'ERR_A',
      message: 'a',
      cause: { name: 'RxnatError', code: 'ERR_B', message: 'b', cause: '[circular RxnatError: a]' },
    });

    const entries: Array<{ protocol: 'tcp'; internalPort: number; externalPort: number; gateway: string; leaseEndsAtMs: null; error: Error }> = [];
    const self = new UnconfirmedDeleteError(entries);
    entries.push({ protocol: 'tcp', internalPort: 1, externalPort: 1, gateway: 'g', leaseEndsAtMs: null, error: self });
    assert.equal((json(self) as { deletes: Array<{ error: unknown }> }).deletes[0]!.error, `[circular UnconfirmedDeleteError: ${self.message}]`);

    const odd = Object.assign(new Error('odd'), { big: 10n ** 20n, fn: () => 1, loop: {} as Record<string, unknown> });
    odd.loop.self = odd.loop;
    const withOdd = new RxnatError('ERR_ODD', 'odd', { cause: odd });
    assert.deepEqual((json(withOdd) as { cause: unknown }).cause, { name: 'Error', message: 'odd', big: '100000000000000000000', loop: { self: '[circular]' } });
  });

  it('the same error twice (not a cycle) is written twice', () => {
    const shared = refused();
    const error = new NoGatewayError([
      { backend: 'pcp', error: shared },
      { backend: 'pmp', error: shared },
    ]);
    const parsed = json(error) as { failures: Array<{ backend: string; error: unknown }> };
    assert.deepEqual(parsed.failures.map((f) => f.error), [json(shared), json(shared)]);
    assert.deepEqual(parsed.failures.map((f) => (f.error as { message?: string }).message), [shared.message, shared.message]);
  });

  it('every error class rxnat exports serialises with its name, code and message', () => {
    const errors: RxnatError[] = [
      new InvalidMappingRequestError('internalPort', 'port 70000 is out of range'),
      new InvalidOptionError('renewFraction', 'renewFraction 2 is not in (0, 1)'),
      new NatSpecError('pigeon', 'unknown NAT spec "pigeon"'),
      new NoGatewayError([{ backend: 'pmp', error: new GatewayTimeoutError('pmp', '192.168.1.1', 3000) }]),
      new NoMappingError(),
      refused(),
      new GatewayTimeoutError('upnp', 'http://192.168.1.1:5000/ctl', 3000),
      new GatewayUnreachableError('pcp', '192.168.1.1', 'reset'),
      new ProtocolError('pmp', 'short', '3 bytes', '192.168.1.1'),
      new GatewayLostError('upnp(192.168.1.1)', new Error('refused')),
      new DefaultGatewayError('no-default-route', 'no default route'),
      new UnconfirmedDeleteError([]),
      new GatewayResetError('pmp(192.168.1.1)'),
      new LeaseExpiredError('pmp(192.168.1.1)', 8080),
      new CloseTimeoutError('pmp(192.168.1.1)', 100),
    ];
    for (const error of errors) {
      const parsed = json(error) as Record<string, unknown>;
      assert.deepEqual([parsed.name, parsed.code, parsed.message], [error.name, error.code, error.message], error.name);
    }
    assert.deepEqual((json(errors[3]) as { failures: Array<{ error: { code: string } }> }).failures[0]!.error.code, 'ERR_GATEWAY_TIMEOUT');
    assert.equal((json(errors[0]) as { field: string }).field, 'internalPort');
  });
});

describe('serializeError', () => {
  it('is exported and serialises errors that are not rxnat\'s: a plain Error, an AggregateError', () => {
    assert.equal(rxnat.serializeError, serializeError);
    assert.deepEqual(serializeError(new TypeError('bad')), { name: 'TypeError', message: 'bad' });
    const aggregate = new AggregateError([new Error('one'), refused()], 'both failed');
    assert.deepEqual(json(serializeError(aggregate)), { name: 'AggregateError', message: 'both failed', errors: [{ name: 'Error', message: 'one' }, json(refused())] });
    // What a state with a plain error needs (JSON.stringify alone writes it as {}).
    const state = unestablished('tcp', 8080, 'unmapped', null, new Error('plain'));
    assert.deepEqual((json(state) as { error: unknown }).error, {});
    assert.deepEqual((json({ ...state, error: state.error && serializeError(state.error) }) as { error: unknown }).error, { name: 'Error', message: 'plain' });
  });
});
