import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidMappingRequestError } from '../src/errors.js';
import { mapPort } from '../src/core/map-port.js';
import type { MappingRequest } from '../src/core/nat.js';
import { resolveMappingRequest } from '../src/core/validate.js';
import { fakeNat, grant } from './fake-nat.js';
import { scenario, testScheduler } from './contract.js';

const diagram = scenario(import.meta.url);

const bad: Array<[string, unknown]> = [
  ['internalPort', { protocol: 'tcp', internalPort: 0 }],
  ['internalPort', { protocol: 'tcp', internalPort: 65536 }],
  ['internalPort', { protocol: 'tcp', internalPort: 80.5 }],
  ['externalPort', { protocol: 'udp', internalPort: 80, externalPort: -1 }],
  ['protocol', { protocol: 'sctp', internalPort: 80 }],
  ['lifetimeSeconds', { protocol: 'tcp', internalPort: 80, lifetimeSeconds: -5 }],
];

for (const [field, request] of bad) {
  test(`${diagram.title}: ${JSON.stringify(request)}`, () => {
    const scheduler = testScheduler();
    let nat!: ReturnType<typeof fakeNat>;
    scheduler.run(({ cold, expectObservable }) => {
      nat = fakeNat({ add: () => cold('-g|', { g: grant(80) }), ip: () => cold('(i|)', { i: '203.0.113.7' }) });
      const mapping$ = mapPort(nat, request as MappingRequest);
      expectObservable(mapping$, diagram.row('sub')).toBe(
        diagram.row('out'),
        undefined,
        new InvalidMappingRequestError(field, messageFor(request as MappingRequest, field)),
      );
    });
    assert.equal(nat.adds.length, 0);
    assert.equal(nat.ipCalls, 0);
  });
}

function messageFor(request: MappingRequest, field: string): string {
  try {
    resolveMappingRequest(request);
  } catch (error) {
    assert.ok(error instanceof InvalidMappingRequestError);
    assert.equal(error.field, field);
    return error.message;
  }
  throw new Error(`${JSON.stringify(request)} was accepted`);
}
