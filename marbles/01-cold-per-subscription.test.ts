import { test } from 'node:test';
import { mapPort } from '../src/core/map-port.js';
import { fakeNat, grant } from './fake-nat.js';
import { scenario, testScheduler } from './contract.js';
import { state } from './states.js';

const diagram = scenario(import.meta.url);

test(diagram.title, () => {
  testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
    const add = cold(diagram.row('add'), { g: grant(8080) });
    const remove = cold<void>(diagram.row('delete'));
    const nat = fakeNat({ add: () => add, remove: () => remove, ip: () => cold('(i|)', { i: '203.0.113.7' }) });
    const mapping$ = mapPort(nat, { protocol: 'tcp', internalPort: 8080 });

    const values = state(diagram.legend, nat.name);
    expectObservable(mapping$, diagram.row('first')).toBe(diagram.row('firstOut'), values);
    expectObservable(mapping$, diagram.row('second')).toBe(diagram.row('secondOut'), values);
    expectSubscriptions(add.subscriptions).toBe([diagram.row('adds'), diagram.row('adds2')]);
    expectSubscriptions(remove.subscriptions).toBe([diagram.row('deletes'), diagram.row('deletes2')]);
  });
});
