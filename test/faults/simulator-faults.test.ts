/**
 * The faulty-gateway table (`fault-table.ts`) played against the gateway simulator: one test per
 * row and backend, each a real `mapPort` stream over real loopback sockets (NAT-PMP and PCP over
 * UDP, UPnP over SSDP + HTTP), with short leases and fast retries so a row takes seconds.
 *
 * Every test ends the same way: the simulator's clock is frozen (so only a delete can remove a
 * mapping), the stream is stopped gracefully and must complete (no hang) with a last
 * `unmapped`, and the gateway's table must hold nothing of ours.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { Subject } from 'rxjs';
import { mapPort, type MappingState } from '../../src/core/map-port.js';
import { startGatewaySimulator, type GatewaySimulator, type GatewaySimulatorOptions } from '../../src/testing/simulator.js';
import { MappingTable } from '../../src/testing/table.js';
import { FAULT_TABLE, natSource, type Backend, type FaultContext, type FaultRow, type Step } from './fault-table.js';
import { describeState, eventually, FreezableClock, seeded, StateRecorder, statusPath } from './harness.js';

const DEFAULT_STEP_MS = 6000;

async function playRow(row: FaultRow, backend: Backend, index: number, t: TestContext): Promise<void> {
  const clock = new FreezableClock();
  const random = seeded(1000 + index);
  const sims: GatewaySimulator[] = [];
  const start = async (externalIp: string, ports?: { pmp: number; ssdp: number }): Promise<GatewaySimulator> => {
    const extra = row.simulator?.(backend) ?? {};
    const options: GatewaySimulatorOptions = {
      ...extra,
      table: clock.withUptime(() => new MappingTable({ externalIp, now: clock.now, ...(row.capacity !== undefined ? { capacity: row.capacity } : {}) })),
      pmpPcp: { pcpMinLifetimeSeconds: 1, errorLifetimeSeconds: 1, random, ...(ports ? { port: ports.pmp } : {}), ...extra.pmpPcp },
      upnp: { igdVersion: backend === 'upnp-v1' ? 1 : 2, ...(ports ? { ssdpPort: ports.ssdp } : {}), ...extra.upnp },
    };
    const sim = await startGatewaySimulator(options);
    sims.push(sim);
    return sim;
  };
  let sim = await start('203.0.113.1');
  const internalPort = 30000 + index;
  const request = { protocol: index % 2 === 0 ? 'tcp' : 'udp', internalPort, externalPort: internalPort, lifetimeSeconds: row.lifetimeSeconds ?? 3 } as const;
  const recorder = new StateRecorder();
  const undos: Array<() => void> = [];
  let before: MappingState | undefined;
  const ctx: FaultContext = {
    backend,
    get sim() {
      return sim;
    },
    request,
    states: recorder.states,
    latest: () => recorder.latest(),
    get before() {
      return before;
    },
    ours: () => sim.table.list().filter((m) => m.internalClient === sim.address),
    random,
    onRecover: (undo) => void undos.push(undo),
    closeGateway: () => sim.close(),
    replaceGateway: async () => {
      const old = sim;
      await old.close();
      sim = await start('198.51.100.9', { pmp: old.pmpPort, ssdp: old.ssdpTarget.port });
      return sim;
    },
  };
  const undo = (): void => {
    for (const u of undos.splice(0)) u();
  };

  const stop$ = new Subject<void>();
  const subscription = mapPort(natSource(backend, () => sim), request, {
    stop: stop$,
    retry: { initialDelayMs: 50, maxDelayMs: 500 },
    externalIpCacheMs: 250,
    teardownTimeoutMs: 1000,
  }).subscribe(recorder.observer);

  const phases: string[] = [];
  let phaseStart = 0;
  const expect = async (phase: string, steps: readonly Step[], forbids: readonly string[] = []): Promise<void> => {
    for (const step of steps) {
      const found = await recorder.next((s) => s.status === step.status && (step.where?.(s, ctx) ?? true), step.withinMs ?? DEFAULT_STEP_MS);
      if (!found) {
        assert.fail(
          `[${phase}] expected ${step.what ?? step.status} within ${step.withinMs ?? DEFAULT_STEP_MS} ms; ` +
            `latest: ${describeState(recorder.latest() ?? ({} as MappingState))}; ` +
            `stream ${recorder.error ? `errored: ${String(recorder.error)}` : recorder.completed ? 'completed' : 'open'}; ` +
            `table: ${JSON.stringify(ctx.ours().map((m) => `${m.protocol}/${m.externalPort}`))}\nstates:\n${recorder.log()}`,
        );
      }
    }
    const during = recorder.states.slice(phaseStart, recorder.cursor);
    const bad = during.find((s) => forbids.includes(s.status));
    assert.equal(bad, undefined, `[${phase}] ${bad?.status} must not appear (${bad ? describeState(bad) : ''})\nstates:\n${recorder.log()}`);
    phases.push(`${phase}: ${statusPath(during)}`);
    phaseStart = recorder.cursor;
    before = [...recorder.states].reverse().find((s) => s.status === 'mapped');
  };

  try {
    await row.setup?.(ctx);
    await expect('established', row.established ?? [{ status: 'mapped', what: 'mapped' }]);
    if (row.inject) {
      await row.inject(ctx);
      await expect('fault', row.faulted ?? [], row.faultedForbids);
    }
    if (row.recover && !row.stopDuringFault) {
      await row.recover(ctx);
      undo();
      await expect('recovery', row.recovered ?? [{ status: 'mapped', what: 'mapped' }]);
    }
    await row.check?.(ctx);
    assert.equal(recorder.error, undefined, `the stream must never error: ${String(recorder.error)}`);

    // Teardown: nothing may expire from now on; only our delete can empty the table (unless the
    // fault is still on: then the gateway cannot hear the delete, and the lease must run out).
    if (!row.stopDuringFault) {
      clock.freeze();
      undo();
    }
    const teardownFrom = recorder.states.length;
    stop$.next();
    const completed = await eventually(() => recorder.completed || recorder.error !== undefined, 5000);
    assert.ok(completed, `the stream must complete after stop (hang)\nstates:\n${recorder.log()}`);
    assert.equal(recorder.error, undefined, `the stream must never error: ${String(recorder.error)}`);
    assert.equal(recorder.latest()?.status, 'unmapped', 'the last state after stop is unmapped');
    phases.push(`teardown: ${statusPath(recorder.states.slice(teardownFrom))}`);
    const describeLeft = (): string[] => ctx.ours().map((m) => `${m.via} ${m.protocol}/${m.externalPort}->${m.internalPort} (${m.lifetimeSeconds} s)`);
    if (row.stopDuringFault) {
      const expired = await eventually(() => ctx.ours().length === 0, (request.lifetimeSeconds + 1) * 1000);
      assert.ok(expired, `what the gateway could not delete must expire with its lease: ${JSON.stringify(describeLeft())}`);
      phases.push('left: expired with its lease');
    } else {
      assert.deepEqual(describeLeft(), [], 'after teardown the gateway holds nothing of ours');
    }
    t.diagnostic(phases.join(' | '));
  } finally {
    undo();
    subscription.unsubscribe();
    await Promise.all(sims.map((s) => s.close()));
  }
}

describe('faulty gateways against the simulator', { concurrency: 4 }, () => {
  let index = 0;
  for (const row of FAULT_TABLE) {
    for (const backend of row.backends) {
      const i = index++;
      test(`${row.name} [${backend}]`, (t) => playRow(row, backend, i, t));
    }
  }
});
