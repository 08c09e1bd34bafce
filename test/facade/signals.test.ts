/**
 * AbortSignal on the facades: aborting is a graceful stop (as close()), throws nothing into the
 * caller's code, and leaves what close() would reject with on `closed`. An already-aborted
 * signal closes at once and sends nothing. Fake NATs (no I/O) and virtual time.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { describe, it } from 'node:test';
import { NEVER, VirtualTimeScheduler, lastValueFrom, toArray } from 'rxjs';
import { UnconfirmedDeleteError } from '../../src/errors.js';
import { natMap } from '../../src/facade/nat-map.js';
import { CloseTimeoutError, natService } from '../../src/facade/nat-service.js';
import { recordingNat, refusedDelete, unhandledRejections } from './fake-nats.js';

describe('natService({ signal })', { timeout: 10_000 }, () => {
  it('aborting closes the service as close() does: every mapping deleted, new ones refused', async () => {
    const nat = recordingNat();
    const controller = new AbortController();
    const service = natService(nat, { signal: controller.signal });
    const a = service.newMapping('tcp', 8080);
    const b = service.newMapping('udp', 9090, { externalPort: 19090 });
    assert.equal(a.state.status, 'mapped');
    controller.abort();
    await service.closed;
    assert.deepEqual(nat.deletes.map((d) => d.externalPort).sort((x, y) => x - y), [8080, 19090]);
    assert.deepEqual(service.mappings(), []);
    assert.equal(b.state.status, 'unmapped');
    assert.throws(() => service.newMapping('tcp', 1), /closed/);
    await service.close(); // settles as the abort's close did
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'the listener is removed once closed');
  });

  it('an unconfirmed delete after the abort throws nothing and no unhandled rejection; closed rejects with it', async () => {
    const nat = recordingNat('203.0.113.7', refusedDelete);
    const controller = new AbortController();
    const service = natService(nat, { signal: controller.signal, teardownTimeoutMs: 300 });
    const mapping = service.newMapping('tcp', 7000);
    const unhandled = await unhandledRejections(async () => {
      assert.doesNotThrow(() => controller.abort());
      await assert.rejects(service.closed, (e: unknown) => e instanceof UnconfirmedDeleteError && e.deletes[0]?.externalPort === 7000);
    });
    assert.deepEqual(unhandled, []);
    assert.equal(mapping.state.status, 'unmapped');
    assert.ok(mapping.state.error instanceof UnconfirmedDeleteError, 'the last state says what may remain');
    await assert.rejects(mapping.closed, UnconfirmedDeleteError);
    await assert.rejects(service.close(), UnconfirmedDeleteError, 'close() after the abort: the same outcome');
  });

  it('an already-aborted signal: the service starts closed, nothing is sent', async () => {
    const nat = recordingNat();
    const service = natService(nat, { signal: AbortSignal.abort() });
    assert.throws(() => service.newMapping('tcp', 8080), /closed/);
    await service.closed;
    assert.deepEqual(await lastValueFrom(service.states$.pipe(toArray())), [[]]);
    assert.equal(nat.adds.length, 0);
  });
});

describe('service.newMapping(…, { signal })', { timeout: 10_000 }, () => {
  it('aborting closes that mapping only; closed resolves after the delete', async () => {
    const nat = recordingNat();
    const service = natService(nat);
    const controller = new AbortController();
    const kept = service.newMapping('tcp', 8081);
    const aborted = service.newMapping('udp', 8082, { signal: controller.signal });
    controller.abort();
    await aborted.closed;
    assert.deepEqual(nat.deletes.map((d) => d.internalPort), [8082]);
    assert.deepEqual(service.mappings(), [kept]);
    assert.equal(aborted.state.status, 'unmapped');
    assert.equal(aborted.state.error, null);
    assert.equal(getEventListeners(controller.signal, 'abort').length, 0, 'the listener is removed once closed');
    await service.close();
  });

  it('an already-aborted signal: closed at once, no add sent, its stream completes after one unmapped state', async () => {
    const nat = recordingNat();
    const service = natService(nat);
    const mapping = service.newMapping('tcp', 8083, { signal: AbortSignal.abort() });
    assert.deepEqual(await lastValueFrom(mapping.state$.pipe(toArray())).then((states) => states.map((s) => s.status)), ['unmapped']);
    await mapping.closed;
    assert.equal(nat.adds.length, 0);
    assert.deepEqual(service.mappings(), []);
    await service.close();
  });

  it('close() after the abort returns the abort\'s outcome; an unconfirmed one is never unhandled', async () => {
    const nat = recordingNat('203.0.113.7', refusedDelete);
    const service = natService(nat, { teardownTimeoutMs: 300 });
    const controller = new AbortController();
    const mapping = service.newMapping('tcp', 8084, { signal: controller.signal });
    const unhandled = await unhandledRejections(async () => {
      controller.abort();
      await assert.rejects(mapping.closed, UnconfirmedDeleteError);
    });
    assert.deepEqual(unhandled, []);
    const again = mapping.close();
    assert.equal(mapping.close(), again, 'the same promise on every call');
    await assert.rejects(again, UnconfirmedDeleteError);
    await service.close();
  });

  it('abort while the delete hangs, virtual time: closeTimeoutMs ends it with a last unmapped state naming what may remain', async () => {
    const scheduler = new VirtualTimeScheduler();
    const nat = recordingNat('203.0.113.7', () => NEVER);
    const service = natService(nat, { scheduler, closeTimeoutMs: 2_000, teardownTimeoutMs: 60_000 });
    const controller = new AbortController();
    const mapping = service.newMapping('udp', 8085, { lifetimeSeconds: 90, signal: controller.signal });
    const seen: string[] = [];
    mapping.state$.subscribe({ next: (s) => seen.push(s.status), complete: () => seen.push('complete') });
    controller.abort();
    scheduler.flush(); // to the close bound (2 s of virtual time); the core's own bound is 60 s
    await assert.rejects(mapping.closed, (e: unknown) => {
      assert.ok(e instanceof UnconfirmedDeleteError);
      const [entry] = e.deletes;
      assert.ok(entry?.error instanceof CloseTimeoutError);
      assert.equal(entry.externalPort, 8085);
      assert.equal(entry.leaseEndsAtMs, 2_000 + 90_000, 'on the scheduler\'s clock');
      return true;
    });
    assert.deepEqual(seen, ['mapped', 'unmapped', 'complete']);
    assert.ok(mapping.state.error instanceof UnconfirmedDeleteError);
    assert.equal(mapping.state.externalPort, 0);
  });
});

describe('natMap with an already-aborted signal', { timeout: 10_000 }, () => {
  it('resolves at once and sends nothing', async () => {
    const nat = recordingNat();
    await natMap(nat, AbortSignal.abort(), 'udp', 30303, 30303, 'p2p');
    assert.equal(nat.adds.length, 0);
  });
});
