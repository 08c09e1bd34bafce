import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NoMappingError } from '../src/errors.js';
import { natService, type NatMapping } from '../src/facade/nat-service.js';
import { fakeNat, grant } from './fake-nat.js';
import { scenario, testScheduler } from './contract.js';

const diagram = scenario(import.meta.url);

test(diagram.title, () => {
  const seen: Array<[number, number]> = [];
  testScheduler().run(({ cold, expectSubscriptions }) => {
    const add = cold(diagram.row('add'), { g: grant(8080) });
    const add2 = cold(diagram.row('add'), { g: { ...grant(9090), internalPort: 9090 } });
    const remove = cold<void>(diagram.row('delete'));
    const remove2 = cold<void>(diagram.row('delete'));
    const nat = fakeNat({
      maxConcurrentRequests: 2,
      add: (request) => (request.internalPort === 8080 ? add : add2),
      remove: (g) => (g.internalPort === 8080 ? remove : remove2),
      ip: () => cold('(i|)', { i: '203.0.113.7' }),
    });
    const service = natService(nat);
    const first = service.newMapping('tcp', 8080);
    assert.equal(first.externalPort, 0);
    assert.throws(() => first.externalAddr(), NoMappingError);
    let second: NatMapping | undefined;
    cold('--x').subscribe(() => (second = service.newMapping('tcp', 9090)));
    cold('-----x').subscribe(() => seen.push([first.externalPort, second?.externalPort ?? -1]));
    cold(diagram.row('closeAt')).subscribe(() => void service.close());
    expectSubscriptions(add.subscriptions).toBe(diagram.row('adds'));
    expectSubscriptions(add2.subscriptions).toBe(diagram.row('adds2'));
    expectSubscriptions(remove.subscriptions).toBe(diagram.row('deletes'));
    expectSubscriptions(remove2.subscriptions).toBe(diagram.row('deletes2'));
  });
  assert.deepEqual(seen, [[8080, 9090]]);
});
