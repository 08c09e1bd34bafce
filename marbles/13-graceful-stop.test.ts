import { test } from 'node:test';
import { mapPort } from '../src/core/map-port.js';
import { fakeNat, grant } from './fake-nat.js';
import { scenario, testScheduler } from './contract.js';
import { state } from './states.js';

const diagram = scenario(import.meta.url);

test(diagram.title, () => {
  testScheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
    const remove = cold<void>('---|');
    const nat = fakeNat({ add: () => cold('-g|', { g: grant(8080) }), remove: () => remove, ip: () => cold('(i|)', { i: '203.0.113.7' }) });
    const stop = hot(diagram.row('stop'));
    expectObservable(mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, { stop }), diagram.row('sub')).toBe(diagram.row('out'), state(diagram.legend, nat.name));
    expectSubscriptions(remove.subscriptions).toBe(diagram.row('deletes'));
  });
});
