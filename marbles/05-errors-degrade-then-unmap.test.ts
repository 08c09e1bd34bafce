import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defer } from 'rxjs';
import { GatewayError } from '../src/errors.js';
import { mapPort } from '../src/core/map-port.js';
import type { MappingGrant } from '../src/core/nat.js';
import { fakeNat, grant } from './fake-nat.js';
import { callFrames, scenario, testScheduler } from './contract.js';
import { state } from './states.js';

const diagram = scenario(import.meta.url);

test(diagram.title, () => {
  const scheduler = testScheduler();
  const addFrames: number[] = [];
  const down = new GatewayError({ protocol: 'pmp', resultCode: 3, resultName: 'NETWORK_FAILURE', gateway: '192.0.2.1' });
  scheduler.run(({ cold, expectObservable }) => {
    const nat = fakeNat({
      add: (_request, call) => defer(() => {
        addFrames.push(scheduler.now());
        return call === 1 || call === 8 ? cold('-g|', { g: grant(8080) }) : cold<MappingGrant>('-#', undefined, down);
      }),
      remove: () => cold<void>('-|'),
      ip: () => cold('(i|)', { i: '203.0.113.7' }),
    });
    const mapping$ = mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, { random: () => 0.5 });
    expectObservable(mapping$, diagram.row('sub')).toBe(diagram.row('out'), state(diagram.legend, nat.name, { down }));
  });
  assert.deepEqual(addFrames, callFrames(diagram.row('adds')));
});

test('an add that fails from the start is unmapped with the error at once, and retried', () => {
  const scheduler = testScheduler();
  const refused = new GatewayError({ protocol: 'upnp', resultCode: 728, resultName: 'NoPortMapsAvailable', gateway: 'http://192.0.2.1:5000/ctl' });
  scheduler.run(({ cold, expectObservable }) => {
    const nat = fakeNat({
      add: (_request, call) => (call < 3 ? cold('-#', undefined, refused) : cold('-g|', { g: grant(8080) })),
      remove: () => cold<void>('-|'),
      ip: () => cold('(i|)', { i: '203.0.113.7' }),
    });
    const values = state(
      {
        a: { status: 'mapping' },
        b: { status: 'unmapped', error: 'refused' },
        c: { status: 'mapped', externalPort: 8080, externalIp: '203.0.113.7', lifetimeSeconds: 60 },
      },
      nat.name,
      { refused },
    );
    // Fails at 1 ms, retried at 1.001 s (fails at 1.002 s), then at 3.002 s, which succeeds at 3.003 s.
    expectObservable(mapping$(nat), '^ 5s !').toBe('ab 3001ms c', values);
  });
  function mapping$(nat: ReturnType<typeof fakeNat>) {
    return mapPort(nat, { protocol: 'tcp', internalPort: 8080 }, { random: () => 0.5 });
  }
  assert.ok(true);
});
