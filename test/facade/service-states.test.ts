/**
 * `service.states$` and `service.snapshot()`: the whole set of a service's mappings' states, in
 * creation order, on every change; a closed mapping leaves the set after its last `unmapped`
 * state; the stream completes when the service is closed. Fake NATs, no I/O.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lastValueFrom, Subject, toArray } from 'rxjs';
import type { MappingState } from '../../src/core/map-port.js';
import type { Nat } from '../../src/core/nat.js';
import { InvalidMappingRequestError } from '../../src/errors.js';
import { natService } from '../../src/facade/nat-service.js';
import { recordingNat } from './fake-nats.js';

/** Each set as `port:status` strings, e.g. `['8080:mapped', '9090:mapping']`. */
const rows = (sets: ReadonlyArray<readonly MappingState[]>): string[][] => sets.map((set) => set.map((s) => `${s.internalPort}:${s.status}`));

describe('service.states$ and snapshot()', { timeout: 10_000 }, () => {
  it('emits the whole set on every change, in creation order, and completes when the service is closed', async () => {
    const nats = new Subject<Nat>();
    const service = natService(nats);
    const sets: Array<readonly MappingState[]> = [];
    let completed = false;
    service.states$.subscribe({ next: (set) => sets.push(set), complete: () => (completed = true) });
    service.newMapping('tcp', 8080);
    service.newMapping('udp', 9090);
    service.newMapping('tcp', 7070);
    nats.next(recordingNat('203.0.113.7')); // every mapping maps on the gateway, in creation order
    assert.deepEqual(rows([service.snapshot()]), [['8080:mapped', '9090:mapped', '7070:mapped']]);
    const [, second] = service.mappings();
    await second!.close();
    assert.deepEqual(rows([service.snapshot()]), [['8080:mapped', '7070:mapped']]);
    await service.close();
    assert.ok(completed, 'complete once the service is closed');
    assert.equal(sets[4]![0]!.backend, sets[5]![0]!.backend, 'the gateway is known before the mapping is made');
    assert.equal(sets[4]![0]!.backend?.startsWith('fake'), true);
    for (const set of sets) assert.ok(Object.isFrozen(set));
    assert.deepEqual(rows(sets), [
      [],
      ['8080:mapping'],
      ['8080:mapping', '9090:mapping'],
      ['8080:mapping', '9090:mapping', '7070:mapping'],
      // the gateway found: each mapping in turn learns it (same status, backend known), then maps
      ['8080:mapping', '9090:mapping', '7070:mapping'],
      ['8080:mapped', '9090:mapping', '7070:mapping'],
      ['8080:mapped', '9090:mapping', '7070:mapping'],
      ['8080:mapped', '9090:mapped', '7070:mapping'],
      ['8080:mapped', '9090:mapped', '7070:mapping'],
      ['8080:mapped', '9090:mapped', '7070:mapped'],
      // 9090 closed: its last state, then it leaves the set
      ['8080:mapped', '9090:unmapped', '7070:mapped'],
      ['8080:mapped', '7070:mapped'],
      // the service closed: every mapping's last state, then the empty set
      ['8080:unmapped', '7070:mapped'],
      ['7070:mapped'],
      ['7070:unmapped'],
      [],
    ]);
  });

  it('a late subscriber gets the current set at once; after the close, the empty set and complete', async () => {
    const service = natService(recordingNat());
    service.newMapping('tcp', 8081);
    service.newMapping('udp', 8082, { externalPort: 18082 });
    const now = await new Promise<readonly MappingState[]>((resolve) => service.states$.subscribe((set) => resolve(set))).then((set) => set);
    assert.deepEqual(now.map((s) => [s.protocol, s.externalPort, s.status]), [['tcp', 8081, 'mapped'], ['udp', 18082, 'mapped']]);
    await service.close();
    assert.deepEqual(await lastValueFrom(service.states$.pipe(toArray())), [[]]);
    assert.deepEqual(service.snapshot(), []);
  });

  it('snapshot() is a frozen array of the latest states, a new one each call', async () => {
    const service = natService(recordingNat());
    const mapping = service.newMapping('tcp', 8083);
    const snapshot = service.snapshot();
    assert.ok(Object.isFrozen(snapshot));
    assert.equal(snapshot[0], mapping.state);
    assert.notEqual(service.snapshot(), snapshot);
    await service.close();
  });

  it('a mapping with an invalid request shows as unmapped with its error; the set stream does not error', async () => {
    const service = natService(recordingNat());
    let failed: unknown;
    service.states$.subscribe({ error: (e: unknown) => (failed = e) });
    service.newMapping('tcp', 8084);
    const invalid = service.newMapping('tcp', 70000);
    const [, state] = service.snapshot();
    assert.equal(state?.status, 'unmapped');
    assert.ok(state?.error instanceof InvalidMappingRequestError);
    assert.equal(invalid.state, state);
    await service.close();
    assert.equal(failed, undefined);
  });
});
