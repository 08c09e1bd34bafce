import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defer, of, timer, map } from 'rxjs';
import { extIp } from '../../src/core/ext-ip.js';
import type { Nat } from '../../src/core/nat.js';
import { natService } from '../../src/facade/nat-service.js';
import { natMap } from '../../src/facade/nat-map.js';
import { InvalidMappingRequestError, NoMappingError } from '../../src/errors.js';

/** extip with a recorded, slightly slow delete: enough to see that close() waits for it. */
function recordingNat(): Nat & { deleted: number[] } {
  const base = extIp('203.0.113.7');
  const deleted: number[] = [];
  return {
    ...base,
    deleted,
    deleteMapping: (grant) => timer(20).pipe(map(() => void deleted.push(grant.externalPort))),
  };
}

test('natService: externalAddr once mapped, close() resolves after every delete', async () => {
  const nat = recordingNat();
  const service = natService(nat);
  const a = service.newMapping('tcp', 8080);
  const b = service.newMapping('udp', 9090, { externalPort: 19090 });
  assert.deepEqual(a.externalAddr(), { ip: '203.0.113.7', port: 8080 });
  assert.equal(b.externalPort, 19090);
  assert.equal(service.mappings().length, 2);
  await service.close();
  assert.deepEqual(nat.deleted.sort((x, y) => x - y), [8080, 19090]);
  assert.equal(service.mappings().length, 0);
  assert.throws(() => service.newMapping('tcp', 1), /closed/);
  assert.equal(a.state.status, 'unmapped');
  assert.throws(() => a.externalAddr(), NoMappingError);
});

test('natService shares one discovery between its mappings', async () => {
  let discoveries = 0;
  const nat$ = defer(() => {
    discoveries++;
    return of(extIp('203.0.113.7'));
  });
  const service = natService(nat$);
  service.newMapping('tcp', 1000);
  service.newMapping('tcp', 1001);
  await service.close();
  assert.equal(discoveries, 1);
});

test('natMap (go-ethereum Map) keeps the mapping until the signal aborts, then deletes it', async () => {
  const nat = recordingNat();
  const controller = new AbortController();
  const states: string[] = [];
  const done = natMap(nat, controller.signal, 'udp', 30303, 30303, 'p2p', { onState: (s) => states.push(s.status) });
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(nat.deleted, []);
  controller.abort();
  await done;
  assert.deepEqual(nat.deleted, [30303]);
  assert.deepEqual(states, ['mapped', 'unmapped']);
});

test('natMap rejects an invalid request at once', async () => {
  const controller = new AbortController();
  await assert.rejects(natMap(extIp('203.0.113.7'), controller.signal, 'tcp', 0, 70000, 'x'), InvalidMappingRequestError);
});
