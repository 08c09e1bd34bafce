import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defer } from 'rxjs';
import { mapPort } from '../src/core/map-port.js';
import { fakeNat, grant } from './fake-nat.js';
import { callFrames, scenario, testScheduler } from './contract.js';
import { state } from './states.js';

const diagram = scenario(import.meta.url);

test(diagram.title, () => {
  const scheduler = testScheduler();
  const addFrames: number[] = [];
  let nat!: ReturnType<typeof fakeNat>;
  scheduler.run(({ cold, expectObservable }) => {
    nat = fakeNat({
      add: () => defer(() => {
        addFrames.push(scheduler.now());
        return cold(diagram.row('add'), { g: grant(40000, 30) });
      }),
      remove: () => cold<void>('-|'),
      ip: () => cold('(i|)', { i: '203.0.113.7' }),
    });
    const legend = state(diagram.legend, nat.name);
    // The legend's `c` stands for both renewals: renewals 1, then 2.
    const values = { ...legend, c: legend['c']! };
    const mapping$ = mapPort(nat, { protocol: 'tcp', internalPort: 8080 });
    expectObservable(mapping$, diagram.row('sub')).toBe(diagram.row('out').replace(/c$/, 'd'), {
      ...values,
      d: { ...legend['c']!, renewals: 2 },
    });
  });
  assert.deepEqual(addFrames, callFrames(diagram.row('adds')));
  assert.deepEqual(nat.adds.map((r) => [r.externalPort, r.lifetimeSeconds]), [[8080, 60], [40000, 60], [40000, 60]]);
});
