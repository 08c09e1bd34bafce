import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mapPort } from '../src/core/map-port.js';
import { fakeNat, grant } from './fake-nat.js';
import { callFrames, scenario, testScheduler } from './contract.js';
import { state } from './states.js';

const diagram = scenario(import.meta.url);

test(diagram.title, () => {
  let nat!: ReturnType<typeof fakeNat>;
  testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
    const first = cold(diagram.row('add'), { g: grant(8080) });
    const second = cold(diagram.row('add'), { g: { ...grant(8080), internalPort: 9090, externalPort: 9090 } });
    nat = fakeNat({
      add: (request) => (request.internalPort === 8080 ? first : second),
      remove: () => cold<void>('-|'),
      ip: () => cold('(i|)', { i: '203.0.113.7' }),
    });
    const values = state(diagram.legend, nat.name);
    const valuesB = state(diagram.legend, nat.name, {}, { internalPort: 9090 });
    valuesB['b'] = { ...valuesB['b']!, externalPort: 9090 };
    expectObservable(mapPort(nat, { protocol: 'tcp', internalPort: 8080 }), diagram.row('sub')).toBe(diagram.row('outA'), values);
    expectObservable(mapPort(nat, { protocol: 'tcp', internalPort: 9090 }), diagram.row('sub')).toBe(diagram.row('outB'), valuesB);
    expectSubscriptions(first.subscriptions).toBe(diagram.row('adds'));
    expectSubscriptions(second.subscriptions).toBe(diagram.row('adds2'));
  });
  assert.equal(nat.ipCalls, callFrames(diagram.row('ipCalls')).length);
});
