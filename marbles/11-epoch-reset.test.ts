import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defer } from 'rxjs';
import { GatewayResetError } from '../src/errors.js';
import { mapPort } from '../src/core/map-port.js';
import { fakeNat, grant } from './fake-nat.js';
import { callFrames, scenario, testScheduler } from './contract.js';
import { state } from './states.js';

const diagram = scenario(import.meta.url);

test(diagram.title, () => {
  const scheduler = testScheduler();
  const addFrames: number[] = [];
  scheduler.run(({ cold, hot, expectObservable }) => {
    const nat = fakeNat({
      add: () => defer(() => {
        addFrames.push(scheduler.now());
        return cold('-g|', { g: grant(8080) });
      }),
      remove: () => cold<void>('-|'),
      ip: () => cold('(i|)', { i: '203.0.113.7' }),
      resets$: hot(diagram.row('resets')),
    });
    expectObservable(mapPort(nat, { protocol: 'tcp', internalPort: 8080 }), diagram.row('sub')).toBe(diagram.row('out'), state(diagram.legend, nat.name, { reset: new GatewayResetError(nat.name) }));
  });
  assert.deepEqual(addFrames, callFrames(diagram.row('adds')));
});
