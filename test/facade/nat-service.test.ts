/**
 * What `natService().close()`, `mapping.close()` and `natMap` report about the deletes at
 * teardown: they resolve only when the gateway confirmed every delete, and otherwise reject with
 * an UnconfirmedDeleteError naming what may stay mapped and until when. Fake NATs, and the
 * gateway simulator on 127.0.0.1 (explicit loopback targets only).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { filter, firstValueFrom, map, NEVER, throwError, timer, type Observable } from 'rxjs';
import { extIp } from '../../src/core/ext-ip.js';
import type { Nat } from '../../src/core/nat.js';
import { GatewayError, InvalidMappingRequestError, InvalidOptionError, UnconfirmedDeleteError } from '../../src/errors.js';
import { natMap } from '../../src/facade/nat-map.js';
import { CloseTimeoutError, natService, type NatMapping } from '../../src/facade/nat-service.js';
import { pmp } from '../../src/protocols/pmp/client.js';
import { startGatewaySimulator, type GatewaySimulator } from '../../src/testing/simulator.js';

/** extip whose delete is replaced (never answered, refused, slow). */
function natWithDelete(deleteMapping: Nat['deleteMapping']): Nat {
  return { ...extIp('203.0.113.7'), name: 'fake(203.0.113.7)', deleteMapping };
}

const refused = (): Observable<never> =>
  throwError(() => new GatewayError({ protocol: 'pmp', resultCode: 2, resultName: 'NOT_AUTHORIZED', gateway: '203.0.113.7' }));

/**
 * NAT-PMP deadlines no loaded machine misses on loopback (the default probe is 1 s): what these
 * tests show is what the gateway confirmed, not how fast.
 */
const LOOPBACK = { probeTimeoutMs: 10_000, timeoutMs: 10_000 } as const;
/** A teardown bound for deletes the simulator answers: ample on a loaded machine. */
const ANSWERED_TEARDOWN_MS = 10_000;

async function withSim<T>(fn: (sim: GatewaySimulator, nat$: Observable<Nat>) => Promise<T>): Promise<T> {
  const sim = await startGatewaySimulator();
  try {
    return await fn(sim, pmp(sim.address, { port: sim.pmpPort, localAddress: sim.address, ...LOOPBACK }));
  } finally {
    await sim.close();
  }
}

const mapped = (mapping: NatMapping): Promise<unknown> => firstValueFrom(mapping.state$.pipe(filter((s) => s.status === 'mapped')));

/** Asserts `promise` rejects with an UnconfirmedDeleteError and returns it. */
async function unconfirmed(promise: Promise<unknown>): Promise<UnconfirmedDeleteError> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return error instanceof UnconfirmedDeleteError;
  });
  return caught as UnconfirmedDeleteError;
}

// Bounded: a regression must fail, not hang (natMap waits for its signal while the stream lives).
describe('natService close(): what the gateway confirmed', { timeout: 20_000 }, () => {
  it('resolves after a confirmed delete (simulator, NAT-PMP)', () =>
    withSim(async (sim, nat$) => {
      const service = natService(nat$, { teardownTimeoutMs: ANSWERED_TEARDOWN_MS });
      const mapping = service.newMapping('tcp', 8080);
      await mapped(mapping);
      assert.equal(sim.table.list().length, 1);
      await service.close();
      assert.deepEqual(sim.table.list(), []);
      assert.equal(mapping.state.status, 'unmapped');
      assert.equal(mapping.state.error, null);
    }));

  it('rejects with UnconfirmedDeleteError when the gateway is silent at close (simulator)', () =>
    withSim(async (sim, nat$) => {
      const service = natService(nat$, { teardownTimeoutMs: 300 });
      const mapping = service.newMapping('udp', 4001, { externalPort: 14001 });
      await mapped(mapping);
      sim.pmpPcp.faults.silent = true;
      const before = Date.now();
      const error = await unconfirmed(mapping.close());
      const after = Date.now();
      assert.equal(error.deletes.length, 1);
      const [d] = error.deletes;
      assert.deepEqual(
        { protocol: d!.protocol, internalPort: d!.internalPort, externalPort: d!.externalPort, gateway: d!.gateway },
        { protocol: 'udp', internalPort: 4001, externalPort: 14001, gateway: 'pmp(127.0.0.1)' },
      );
      assert.ok(d!.error instanceof Error);
      assert.ok(!(d!.error instanceof CloseTimeoutError), 'the core answered before the facade gave up');
      // A 60 s lease granted just before: the router drops it about a minute from now at the latest.
      assert.ok(d!.leaseEndsAtMs !== null && d!.leaseEndsAtMs > before && d!.leaseEndsAtMs <= after + 61_000, String(d!.leaseEndsAtMs));
      assert.equal(sim.table.list().length, 1, 'the silent gateway still holds it');
      assert.equal(mapping.state.status, 'unmapped');
      assert.ok(mapping.state.error instanceof UnconfirmedDeleteError);
      assert.equal(service.mappings().length, 0, 'closed, even though unconfirmed');
    }));

  it('service.close() aggregates the unconfirmed deletes of every mapping into one error', () =>
    withSim(async (sim, nat$) => {
      const service = natService(nat$, { teardownTimeoutMs: 300 });
      const a = service.newMapping('tcp', 8081);
      const b = service.newMapping('udp', 8082);
      await Promise.all([mapped(a), mapped(b)]);
      sim.pmpPcp.faults.silent = true;
      const error = await unconfirmed(service.close());
      assert.deepEqual(
        error.deletes.map((d) => `${d.protocol}/${d.internalPort}->${d.externalPort}`).sort(),
        ['tcp/8081->8081', 'udp/8082->8082'],
      );
      assert.equal(service.mappings().length, 0);
      assert.throws(() => service.newMapping('tcp', 1), /closed/);
    }));

  it('rejects when the gateway refuses the delete; the refusal is the entry\'s error', async () => {
    const service = natService(natWithDelete(refused), { teardownTimeoutMs: 300 });
    const mapping = service.newMapping('tcp', 7000, { lifetimeSeconds: 120 });
    const error = await unconfirmed(mapping.close());
    assert.equal(error.deletes.length, 1);
    assert.ok(error.deletes[0]!.error instanceof GatewayError);
    assert.equal(error.deletes[0]!.externalPort, 7000);
    assert.equal(error.deletes[0]!.gateway, 'fake(203.0.113.7)');
  });

  it('an unanswered delete is unconfirmed after teardownTimeoutMs (fake NAT)', async () => {
    const service = natService(natWithDelete(() => NEVER), { teardownTimeoutMs: 200 });
    service.newMapping('tcp', 7001);
    const error = await unconfirmed(service.close());
    assert.equal(error.deletes[0]!.externalPort, 7001);
    assert.ok(!(error.deletes[0]!.error instanceof CloseTimeoutError), 'the core bound (200 ms), not the backstop (2 x 200 + 5000 ms)');
  });

  it('closeTimeoutMs passing first rejects with an entry naming the mapping and a CloseTimeoutError', async () => {
    // The core would wait 10 s for the delete: the caller's budget (150 ms) ends first.
    const service = natService(natWithDelete(() => NEVER), { closeTimeoutMs: 150 });
    service.newMapping('tcp', 7002, { externalPort: 17002, lifetimeSeconds: 90 });
    service.newMapping('udp', 7003, { lifetimeSeconds: 0 });
    const before = Date.now();
    const error = await unconfirmed(service.close());
    const after = Date.now();
    assert.ok(after - before < 8000, `the caller's bound, not the core's 10 s: ${after - before} ms`);
    const byPort = new Map(error.deletes.map((d) => [d.internalPort, d]));
    const t = byPort.get(7002)!;
    assert.deepEqual({ protocol: t.protocol, externalPort: t.externalPort, gateway: t.gateway }, { protocol: 'tcp', externalPort: 17002, gateway: 'fake(203.0.113.7)' });
    assert.ok(t.error instanceof CloseTimeoutError && t.error.timeoutMs === 150, String(t.error));
    assert.ok(t.leaseEndsAtMs !== null && t.leaseEndsAtMs >= before + 90_000 && t.leaseEndsAtMs <= after + 90_000, String(t.leaseEndsAtMs));
    assert.equal(byPort.get(7003)!.leaseEndsAtMs, null, 'a permanent lease never ends by itself');
  });

  it('resolves when nothing was mapped (the stream ended with an invalid request)', async () => {
    const service = natService(extIp('203.0.113.7'));
    const mapping = service.newMapping('tcp', 70000);
    await assert.rejects(firstValueFrom(mapping.state$.pipe(filter(() => false))), InvalidMappingRequestError);
    await service.close();
  });

  it('resolves when nothing was mapped (the stream ended with an invalid option)', async () => {
    const service = natService(extIp('203.0.113.7'), { scheduler: {} as never });
    const mapping = service.newMapping('tcp', 7005);
    await assert.rejects(firstValueFrom(mapping.state$.pipe(filter(() => false))), InvalidOptionError);
    await mapping.close();
    await service.close();
  });

  it('an invalid closeTimeoutMs throws InvalidOptionError', () => {
    for (const closeTimeoutMs of [0, -1, Number.NaN]) {
      assert.throws(() => natService(extIp('203.0.113.7'), { closeTimeoutMs }), (e: unknown) => e instanceof InvalidOptionError && e.option === 'closeTimeoutMs');
    }
  });

  it('close() twice returns the same settled outcome', async () => {
    const slowDelete = (): Observable<void> => timer(20).pipe(map(() => undefined));
    const service = natService(natWithDelete(slowDelete));
    const mapping = service.newMapping('tcp', 7004);
    const first = mapping.close();
    assert.equal(mapping.close(), first);
    await first;
    await service.close();
  });
});

describe('natMap: the delete after abort', { timeout: 20_000 }, () => {
  it('resolves after a confirmed delete (simulator)', () =>
    withSim(async (sim, nat$) => {
      const controller = new AbortController();
      let seenMapped!: () => void;
      const isMapped = new Promise<void>((resolve) => (seenMapped = resolve));
      const done = natMap(nat$, controller.signal, 'tcp', 30303, 30303, 'p2p', {
        teardownTimeoutMs: ANSWERED_TEARDOWN_MS,
        onState: (s) => s.status === 'mapped' && seenMapped(),
      });
      await isMapped;
      controller.abort();
      await done;
      assert.deepEqual(sim.table.list(), []);
    }));

  it('rejects with UnconfirmedDeleteError when the gateway is silent at abort (simulator)', () =>
    withSim(async (sim, nat$) => {
      const controller = new AbortController();
      const states: string[] = [];
      let seenMapped!: () => void;
      const isMapped = new Promise<void>((resolve) => (seenMapped = resolve));
      const done = natMap(nat$, controller.signal, 'udp', 30304, 30304, 'p2p', {
        teardownTimeoutMs: 300,
        onState: (s) => {
          states.push(s.status);
          if (s.status === 'mapped') seenMapped();
        },
      });
      await isMapped;
      sim.pmpPcp.faults.silent = true;
      controller.abort();
      const error = await unconfirmed(done);
      assert.deepEqual(
        error.deletes.map((d) => ({ protocol: d.protocol, internalPort: d.internalPort, externalPort: d.externalPort, gateway: d.gateway })),
        [{ protocol: 'udp', internalPort: 30304, externalPort: 30304, gateway: 'pmp(127.0.0.1)' }],
      );
      assert.equal(states.at(-1), 'unmapped', 'onState saw the last state');
    }));

  it('still rejects an invalid request at once', async () => {
    await assert.rejects(natMap(extIp('203.0.113.7'), new AbortController().signal, 'tcp', 0, 70000, 'x'), InvalidMappingRequestError);
  });

  it('rejects an invalid option at once with InvalidOptionError', async () => {
    // Aborts by itself: were an option not checked, natMap would resolve then instead of hanging.
    const signal = AbortSignal.timeout(3000);
    await assert.rejects(natMap(extIp('203.0.113.7'), signal, 'tcp', 8080, 8080, 'x', { closeTimeoutMs: -5 }), InvalidOptionError);
    // Checked by the core (mapPort): the stream errors at subscribe.
    await assert.rejects(natMap(extIp('203.0.113.7'), signal, 'tcp', 8080, 8080, 'x', { renewFraction: 0 }), InvalidOptionError);
  });
});
