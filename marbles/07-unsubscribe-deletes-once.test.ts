import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapPort } from '../src/core/map-port.js';
import { fakeNat, grant } from './fake-nat.js';
import { scenario, testScheduler } from './contract.js';

const diagram = scenario(import.meta.url);

test(`${diagram.title}: ordinary teardown`, () => {
  let nat!: ReturnType<typeof fakeNat>;
  testScheduler().run(({ cold, expectSubscriptions, expectObservable }) => {
    const remove = cold<void>('-|');
    nat = fakeNat({ add: () => cold(diagram.row('add'), { g: grant(8080) }), remove: () => remove, ip: () => cold('(i|)', { i: '203.0.113.7' }) });
    expectObservable(mapPort(nat, { protocol: 'tcp', internalPort: 8080 }), diagram.row('sub')).toBe('ab', {
      a: expectStatus('mapping', nat.name),
      b: { ...expectStatus('mapped', nat.name), externalPort: 8080, externalIp: '203.0.113.7', lifetimeSeconds: 60 },
    });
    expectSubscriptions(remove.subscriptions).toBe(diagram.row('deletes'));
  });
  assert.deepEqual(nat.deletes.map((g) => g.externalPort), [8080]);
});

test(`${diagram.title}: teardown while the add is in flight`, () => {
  let nat!: ReturnType<typeof fakeNat>;
  testScheduler().run(({ cold, expectSubscriptions, expectObservable }) => {
    const add = cold(diagram.row('slowAdd'), { g: grant(8080) });
    const remove = cold<void>('-|');
    nat = fakeNat({ add: () => add, remove: () => remove, ip: () => cold('(i|)', { i: '203.0.113.7' }) });
    expectObservable(mapPort(nat, { protocol: 'tcp', internalPort: 8080 }), diagram.row('early')).toBe('a', { a: expectStatus('mapping', nat.name) });
    expectSubscriptions(add.subscriptions).toBe(diagram.row('slowAdds'));
    expectSubscriptions(remove.subscriptions).toBe(diagram.row('slowDels'));
  });
  assert.deepEqual(nat.deletes.map((g) => g.externalPort), [8080]);
});

test('a delete that fails is swallowed (logged), never thrown', () => {
  const logged: string[] = [];
  testScheduler().run(({ cold, expectObservable }) => {
    const nat = fakeNat({
      add: () => cold('-g|', { g: grant(8080) }),
      remove: () => cold<void>('-#', undefined, new Error('gateway gone')),
      ip: () => cold('(i|)', { i: '203.0.113.7' }),
    });
    const logger = { debug: (_ns: string, message: string) => logged.push(message) };
    expectObservable(mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, { logger }), '^--!').toBe('ab', {
      a: expectStatus('mapping', nat.name),
      b: { ...expectStatus('mapped', nat.name), externalPort: 8080, externalIp: '203.0.113.7', lifetimeSeconds: 60 },
    });
  });
  assert.ok(logged.some((m) => /delete of external port 8080 failed/.test(m)), logged.join('\n'));
});

function expectStatus(status: string, backend: string) {
  return { status, protocol: 'tcp', internalPort: 8080, externalPort: 0, externalIp: null, lifetimeSeconds: null, backend, doubleNat: false, renewals: 0, error: null };
}

test('an add that never answers is abandoned at the teardown bound (counted from when it was sent), and what was asked for is deleted', () => {
  let nat!: ReturnType<typeof fakeNat>;
  testScheduler().run(({ cold, expectSubscriptions, expectObservable }) => {
    const add = cold<never>('-');
    const remove = cold<void>('-|');
    nat = fakeNat({ add: () => add, remove: () => remove, ip: () => cold('(i|)', { i: '203.0.113.7' }) });
    expectObservable(mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, { teardownTimeoutMs: 100 }), '^!').toBe('a', {
      a: expectStatus('mapping', nat.name),
    });
    expectSubscriptions(add.subscriptions).toBe('^ 99ms !');
    expectSubscriptions(remove.subscriptions).toBe('- 99ms ^!');
  });
  assert.deepEqual(nat.deletes.map((g) => [g.externalPort, g.lifetimeSeconds]), [[8080, 0]]);
});
