import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Subject } from 'rxjs';
import { mapPort, type MappingState } from '../src/core/map-port.js';
import { fakeNat, grant } from './fake-nat.js';
import { scenario, testScheduler } from './contract.js';
import { state } from './states.js';

const diagram = scenario(import.meta.url);

test(diagram.title, () => {
  testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
    const add = cold(diagram.row('add'), { g: grant(8080) });
    const remove = cold<void>(diagram.row('delete'));
    const nat = fakeNat({ add: () => add, remove: () => remove, ip: () => cold('(i|)', { i: '203.0.113.7' }) });
    const values = state(diagram.legend, nat.name);
    expectObservable(mapPort(nat, { protocol: 'tcp', internalPort: 8080 }), diagram.row('first')).toBe(diagram.row('firstOut'), values);
    expectObservable(mapPort(nat, { protocol: 'tcp', internalPort: 8080 }), diagram.row('second')).toBe(diagram.row('secondOut'), values);
    expectSubscriptions(add.subscriptions).toBe(diagram.row('adds'));
    expectSubscriptions(remove.subscriptions).toBe(diagram.row('deletes'));
  });
});

test('a graceful stop of one of two streams ends it at once, with nothing deleted and a last unmapped', () => {
  const seen: MappingState[] = [];
  let completed = false;
  testScheduler().run(({ cold, expectSubscriptions }) => {
    const add = cold('-g|', { g: grant(8080) });
    const remove = cold<void>('-|');
    const nat = fakeNat({ add: () => add, remove: () => remove, ip: () => cold('(i|)', { i: '203.0.113.7' }) });
    const stop = new Subject<void>();
    mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, { stop }).subscribe({ next: (s) => seen.push(s), complete: () => (completed = true) });
    const other = mapPort(nat, { protocol: 'tcp', internalPort: 8080 }).subscribe();
    cold('---x').subscribe(() => stop.next());
    cold('------x').subscribe(() => other.unsubscribe());
    expectSubscriptions(remove.subscriptions).toBe('------^!');
  });
  assert.equal(completed, true);
  assert.deepEqual(seen.map((s) => [s.status, s.error]), [['mapping', null], ['mapped', null], ['unmapped', null]]);
});
