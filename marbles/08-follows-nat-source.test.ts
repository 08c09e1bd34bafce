import { test } from 'node:test';
import { mapPort } from '../src/core/map-port.js';
import { fakeNat, grant } from './fake-nat.js';
import { scenario, testScheduler } from './contract.js';
import { state } from './states.js';

const diagram = scenario(import.meta.url);

test(diagram.title, () => {
  testScheduler().run(({ cold, hot, expectObservable, expectSubscriptions }) => {
    const addP = cold('-g|', { g: grant(8080) });
    const addQ = cold('-g|', { g: grant(8080) });
    const removeP = cold<void>('-|');
    const p = fakeNat({ name: 'p', add: () => addP, remove: () => removeP, ip: () => cold('(i|)', { i: '203.0.113.7' }) });
    const q = fakeNat({ name: 'q', add: () => addQ, remove: () => cold<void>('-|'), ip: () => cold('(i|)', { i: '198.51.100.9' }) });
    const nats = hot(diagram.row('nats'), { p, q });
    expectObservable(mapPort(nats, { protocol: 'tcp', internalPort: 8080 }), diagram.row('sub')).toBe(
      diagram.row('out'),
      state(diagram.legend, null),
    );
    expectSubscriptions(addP.subscriptions).toBe(diagram.row('addsP'));
    expectSubscriptions(removeP.subscriptions).toBe(diagram.row('delsP'));
    expectSubscriptions(addQ.subscriptions).toBe(diagram.row('addsQ'));
  });
});
