/**
 * `for await` over a mapping's states: `mappingStates(nat$, request, options)` and a
 * `NatMapping` itself. Leaving the loop deletes the mapping before the loop statement ends (an
 * unconfirmed delete throws at the `break`); aborting the signal ends the loop after the last
 * `unmapped` state and throws nothing; a slow consumer gets the latest state only. The gateway
 * simulator on 127.0.0.1, and fake NATs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NEVER, Subject, type Observable } from 'rxjs';
import type { MappingState } from '../../src/core/map-port.js';
import type { Nat } from '../../src/core/nat.js';
import { InvalidMappingRequestError, InvalidOptionError, UnconfirmedDeleteError } from '../../src/errors.js';
import { mappingStates } from '../../src/facade/mapping-states.js';
import { natService } from '../../src/facade/nat-service.js';
import { pmp } from '../../src/protocols/pmp/client.js';
import { startGatewaySimulator, type GatewaySimulator } from '../../src/testing/simulator.js';
import { recordingNat, refusedDelete, unhandledRejections } from './fake-nats.js';

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

describe('mappingStates: for await over a mapping', { timeout: 20_000 }, () => {
  it('aborting ends the loop after the last unmapped state; the simulator holds nothing', () =>
    withSim(async (sim, nat$) => {
      const controller = new AbortController();
      const seen: MappingState[] = [];
      for await (const state of mappingStates(nat$, { protocol: 'udp', internalPort: 4001 }, { signal: controller.signal, teardownTimeoutMs: ANSWERED_TEARDOWN_MS })) {
        seen.push(state);
        if (state.status === 'mapped') {
          assert.equal(sim.table.list().length, 1);
          controller.abort();
        }
      }
      const last = seen.at(-1)!;
      assert.equal(last.status, 'unmapped');
      assert.equal(last.error, null, 'the gateway confirmed the delete');
      assert.ok(seen.some((s) => s.status === 'mapped' && s.externalPort === 4001));
      assert.deepEqual(sim.table.list(), []);
    }));

  it('break deletes the mapping before the loop statement ends (simulator)', () =>
    withSim(async (sim, nat$) => {
      for await (const state of mappingStates(nat$, { protocol: 'tcp', internalPort: 8080 }, { teardownTimeoutMs: ANSWERED_TEARDOWN_MS })) {
        if (state.status === 'mapped') break;
      }
      assert.deepEqual(sim.table.list(), [], 'deleted by the time the loop is left');
    }));

  it('an unconfirmed delete throws UnconfirmedDeleteError at the break', async () => {
    const nat = recordingNat('203.0.113.7', refusedDelete);
    await assert.rejects(
      (async () => {
        for await (const state of mappingStates(nat, { protocol: 'tcp', internalPort: 7000 }, { teardownTimeoutMs: 300 })) {
          if (state.status === 'mapped') break;
        }
      })(),
      (e: unknown) => e instanceof UnconfirmedDeleteError && e.deletes[0]?.externalPort === 7000,
    );
    assert.equal(nat.deletes.length, 1);
  });

  it('an error thrown in the loop body propagates, and the mapping is still deleted', async () => {
    const nat = recordingNat();
    await assert.rejects(
      (async () => {
        for await (const state of mappingStates(nat, { protocol: 'udp', internalPort: 7001 })) {
          if (state.status === 'mapped') throw new RangeError('consumer failed');
        }
      })(),
      RangeError,
    );
    assert.deepEqual(nat.deletes.map((d) => d.internalPort), [7001]);
  });

  it('an unconfirmed delete after the abort is the last state\'s error, never thrown', async () => {
    const nat = recordingNat('203.0.113.7', refusedDelete);
    const controller = new AbortController();
    let last: MappingState | undefined;
    const unhandled = await unhandledRejections(async () => {
      for await (const state of mappingStates(nat, { protocol: 'tcp', internalPort: 7002 }, { signal: controller.signal, teardownTimeoutMs: 300 })) {
        last = state;
        if (state.status === 'mapped') controller.abort();
      }
    });
    assert.deepEqual(unhandled, []);
    assert.equal(last?.status, 'unmapped');
    assert.ok(last?.error instanceof UnconfirmedDeleteError);
  });

  it('an already-aborted signal: one unmapped state, then the end; nothing sent', async () => {
    const nat = recordingNat();
    const seen: string[] = [];
    for await (const state of mappingStates(nat, { protocol: 'tcp', internalPort: 7003 }, { signal: AbortSignal.abort() })) seen.push(state.status);
    assert.deepEqual(seen, ['unmapped']);
    assert.equal(nat.adds.length, 0);
  });

  it('nothing is sent before the first step; return() before it sends nothing either', async () => {
    const nat = recordingNat();
    const unused = mappingStates(nat, { protocol: 'tcp', internalPort: 7004 });
    assert.equal(nat.adds.length, 0);
    assert.deepEqual(await unused.return!(), { done: true, value: undefined });
    assert.equal(nat.adds.length, 0);
    const used = mappingStates(nat, { protocol: 'tcp', internalPort: 7005 });
    const first = await used.next();
    assert.equal(first.done, false);
    assert.equal(nat.adds.length, 1);
    await used.return!();
    assert.deepEqual(await used.next(), { done: true, value: undefined });
    assert.equal(nat.deletes.length, 1);
  });

  it('a slow consumer gets the latest state only (states superseded meanwhile are dropped)', async () => {
    // Every NAT the source emits re-maps the port on a new gateway: one new state each, at once.
    const nats = new Subject<Nat>();
    const states = mappingStates(nats, { protocol: 'udp', internalPort: 7006 });
    const first = await states.next(); // subscribes; still discovering
    assert.equal(first.value?.status, 'mapping');
    const gateways = Array.from({ length: 500 }, (_, i) => recordingNat(`198.51.${Math.floor(i / 250)}.${(i % 250) + 1}`));
    for (const nat of gateways) nats.next(nat);
    const second = await states.next();
    assert.equal(second.value?.status, 'mapped');
    assert.equal(second.value?.externalIp, '198.51.1.250', 'the newest state');
    assert.equal(second.value?.backend, gateways.at(-1)!.name);
    // Nothing queued behind it: the next step waits for a change.
    const third = states.next();
    const raced = await Promise.race([third.then(() => 'state'), new Promise((resolve) => setImmediate(() => resolve('waiting')))]);
    assert.equal(raced, 'waiting');
    await states.return!();
    assert.deepEqual(await third, { done: true, value: undefined });
    assert.equal(gateways.at(-1)!.deletes.length, 1, 'deleted on the last gateway');
  });

  it('an invalid request or option throws from the loop at its first step', async () => {
    const loop = async (states: AsyncIterable<MappingState>): Promise<void> => {
      for await (const _ of states) assert.fail('no state expected');
    };
    await assert.rejects(loop(mappingStates(recordingNat(), { protocol: 'tcp', internalPort: 70000 })), InvalidMappingRequestError);
    await assert.rejects(loop(mappingStates(recordingNat(), { protocol: 'tcp', internalPort: 7007 }, { renewFraction: 2 })), InvalidOptionError);
    await assert.rejects(loop(mappingStates(recordingNat(), { protocol: 'tcp', internalPort: 7008 }, { closeTimeoutMs: -1 })), InvalidOptionError);
  });
});

describe('NatMapping is async-iterable', { timeout: 20_000 }, () => {
  it('for await (const s of mapping): break closes the mapping', async () => {
    const nat = recordingNat();
    const service = natService(nat);
    const mapping = service.newMapping('tcp', 7100);
    for await (const state of mapping) if (state.status === 'mapped') break;
    assert.deepEqual(nat.deletes.map((d) => d.internalPort), [7100]);
    assert.deepEqual(service.mappings(), []);
    await mapping.closed;
  });

  it('closed by someone else: the loop ends after the last unmapped state and throws nothing (close() reports)', async () => {
    const nat = recordingNat('203.0.113.7', refusedDelete);
    const service = natService(nat, { teardownTimeoutMs: 300 });
    const mapping = service.newMapping('udp', 7101);
    let closing: Promise<void> | undefined;
    const seen: MappingState[] = [];
    for await (const state of mapping) {
      seen.push(state);
      if (state.status === 'mapped') closing ??= mapping.close();
      if (state.status === 'unmapped') break; // leaving after the end was announced: nothing thrown here
    }
    assert.ok(seen.at(-1)?.error instanceof UnconfirmedDeleteError);
    await assert.rejects(closing!, UnconfirmedDeleteError);
  });

  it('two loops on one mapping: ending one closes the mapping, the other ends after the last state', async () => {
    const nat = recordingNat();
    const service = natService(nat, { teardownTimeoutMs: 300 });
    const mapping = service.newMapping('tcp', 7102);
    const other = (async () => {
      const statuses: string[] = [];
      for await (const state of mapping) statuses.push(state.status);
      return statuses;
    })();
    for await (const state of mapping) if (state.status === 'mapped') break;
    assert.equal((await other).at(-1), 'unmapped');
    assert.equal(nat.deletes.length, 1);
  });

  it('a hanging delete: break waits for the close bound and throws its UnconfirmedDeleteError', async () => {
    const service = natService(recordingNat('203.0.113.7', () => NEVER), { closeTimeoutMs: 100, teardownTimeoutMs: 400 });
    const mapping = service.newMapping('tcp', 7103);
    await assert.rejects(
      (async () => {
        for await (const state of mapping) if (state.status === 'mapped') break;
      })(),
      UnconfirmedDeleteError,
    );
    assert.equal(mapping.state.status, 'unmapped');
  });
});
