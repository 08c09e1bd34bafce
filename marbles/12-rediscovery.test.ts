import { test } from 'node:test';
import { GatewayLostError, GatewayUnreachableError } from '../src/errors.js';
import { mapPort } from '../src/core/map-port.js';
import type { MappingGrant } from '../src/core/nat.js';
import { fakeNat, grant } from './fake-nat.js';
import { scenario, testScheduler } from './contract.js';
import { state } from './states.js';

const diagram = scenario(import.meta.url);

test(diagram.title, () => {
  testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
    const refused = new GatewayUnreachableError('upnp', 'http://192.0.2.1:5000/ctl', 'ECONNREFUSED', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    const nat = fakeNat({
      add: (_request, call) => (call <= 3 ? cold<MappingGrant>('#', undefined, refused) : cold('-g|', { g: grant(8080) })),
      remove: () => cold<void>('-|'),
      ip: () => cold('(i|)', { i: '203.0.113.7' }),
    });
    const discovery = cold(diagram.row('discovery'), { n: nat });
    const lost = new GatewayLostError(nat.name, refused);
    const legend = state(diagram.legend, nat.name, { refused, lost });
    const values = { ...legend, a: { ...legend['a']!, backend: null } };
    expectObservable(mapPort(discovery, { protocol: 'tcp', internalPort: 8080 }, { random: () => 0.5 }), diagram.row('sub')).toBe(diagram.row('out'), values);
    expectSubscriptions(discovery.subscriptions).toBe([diagram.row('discSubs'), diagram.row('discSubs2')]);
  });
});

test('connection resets are a flaky gateway, not a lost one: no rediscovery', () => {
  testScheduler().run(({ cold, expectSubscriptions }) => {
    const reset = new GatewayUnreachableError('upnp', 'http://192.0.2.1:5000/ctl', 'ECONNRESET', { cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });
    const nat = fakeNat({
      add: (_request, call) => (call <= 5 ? cold<MappingGrant>('#', undefined, reset) : cold('-g|', { g: grant(8080) })),
      remove: () => cold<void>('-|'),
      ip: () => cold('(i|)', { i: '203.0.113.7' }),
    });
    const discovery = cold(diagram.row('discovery'), { n: nat });
    const subscription = mapPort(discovery, { protocol: 'tcp', internalPort: 8080 }, { random: () => 0.5 }).subscribe();
    cold('- 30s x').subscribe(() => subscription.unsubscribe());
    // Five resets in a row (retried after 1, 2, 4, 8 s), then mapped: discovery ran once.
    expectSubscriptions(discovery.subscriptions).toBe(diagram.row('discSubs'));
  });
});
