/** The simulator's pinhole table: miniupnpd's semantics on a fake clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PinholeTable, type SimulatedPinholeRequest } from '../../src/testing/pinhole-table.js';

const hole = (internalPort: number, over: Partial<SimulatedPinholeRequest> = {}): SimulatedPinholeRequest => ({
  remoteHost: '',
  remotePort: 0,
  internalClient: '2001:db8::10',
  internalPort,
  protocol: 'tcp',
  leaseTimeSeconds: 60,
  ...over,
});

test('UniqueIDs count up; the same filter extends the pinhole it names and answers its UniqueID', () => {
  let now = 1_000_000;
  const table = new PinholeTable({ now: () => now });
  const a = table.add(hole(8080));
  const b = table.add(hole(8080, { protocol: 'udp' }));
  assert.ok(a.ok && b.ok);
  assert.deepEqual([a.pinhole.uniqueId, b.pinhole.uniqueId], [1, 2]);
  now += 30_000;
  const again = table.add(hole(8080, { leaseTimeSeconds: 120 }));
  assert.ok(again.ok);
  assert.equal(again.pinhole.uniqueId, 1);
  assert.equal(table.remainingSeconds(table.get(1)!), 120);
  assert.equal(table.list().length, 2);
});

test('leases run out; update renews a live pinhole only; delete and clear forget', () => {
  let now = 0;
  const table = new PinholeTable({ now: () => now });
  const added = table.add(hole(9000, { leaseTimeSeconds: 10 }));
  assert.ok(added.ok);
  now = 9_000;
  assert.ok(table.update(1, 10));
  now = 18_000;
  assert.equal(table.get(1)?.leaseTimeSeconds, 10, 'renewed at 9 s: alive at 18 s');
  now = 19_000;
  assert.equal(table.get(1), undefined, 'expired');
  assert.equal(table.update(1, 10), undefined);
  table.add(hole(9001));
  table.add(hole(9002));
  assert.equal(table.delete(2), true);
  assert.equal(table.delete(2), false);
  table.clear();
  assert.deepEqual(table.list(), []);
});

test('capacity: full; freed UniqueIDs are not reused while the counter has not come round', () => {
  const table = new PinholeTable({ capacity: 2 });
  table.add(hole(1));
  table.add(hole(2));
  const full = table.add(hole(3));
  assert.deepEqual(full, { ok: false, reason: 'full' });
  table.delete(1);
  const next = table.add(hole(3));
  assert.ok(next.ok);
  assert.equal(next.pinhole.uniqueId, 3);
});

test('recordPackets counts what GetPinholePackets answers', () => {
  const table = new PinholeTable();
  table.add(hole(5000));
  table.recordPackets(1, 2);
  table.recordPackets(1);
  table.recordPackets(99);
  assert.equal(table.get(1)?.packets, 3);
});
