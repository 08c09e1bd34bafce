/**
 * Teardown leaves nothing behind: after every mapping stream, discovery and façade is
 * unsubscribed or closed, the process holds no more sockets, timers or child processes than
 * before (`process.getActiveResourcesInfo()`, the test runner's own included in the baseline),
 * and the gateway holds none of our mappings. Then the real proof: a script that maps through
 * every backend against a simulator in the same process must exit by itself.
 *
 * Loopback only: every client is pointed at the simulator (explicit gateway, ports, SSDP
 * targets, description URL); discovery never falls back to the default gateway or multicast.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { filter, firstValueFrom, lastValueFrom, Subject, take, tap, toArray, type Observable } from 'rxjs';
import { mapPort, type MapPortOptions } from '../../src/core/map-port.js';
import type { Nat } from '../../src/core/nat.js';
import { discoverNat } from '../../src/discover.js';
import { NoGatewayError } from '../../src/errors.js';
import { natMap } from '../../src/facade/nat-map.js';
import { natService } from '../../src/facade/nat-service.js';
import { parseNat } from '../../src/parse-nat.js';
import { pcp } from '../../src/protocols/pcp/client.js';
import { pmp } from '../../src/protocols/pmp/client.js';
import { upnp } from '../../src/protocols/upnp/client.js';
import { startGatewaySimulator, type GatewaySimulator } from '../../src/testing/simulator.js';
import { eventually, sleep } from './harness.js';

/** Active resources by type (`UDPWrap`, `TCPWrap`, `Timeout`, `ProcessWrap`, ...). */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** What `now` holds beyond `baseline`, as `type +n`. */
function extra(baseline: Map<string, number>, now: Map<string, number>): string[] {
  return [...now].filter(([type, n]) => n > (baseline.get(type) ?? 0)).map(([type, n]) => `${type} +${n - (baseline.get(type) ?? 0)}`);
}

/**
 * How long a condition that must come true may take: only a failing test waits this long, so it
 * can be generous enough for a loaded machine.
 */
const PATIENCE_MS = 10_000;

/** Waits (sockets close asynchronously) until nothing beyond the baseline is active. */
async function assertBackTo(baseline: Map<string, number>, what: string): Promise<void> {
  let left: string[] = [];
  const clean = await eventually(() => (left = extra(baseline, resources())).length === 0, PATIENCE_MS);
  assert.ok(clean, `${what}: resources left behind: ${left.join(', ')}`);
}

/** Fast retries; a teardown bound a loaded machine's loopback deletes always meet (nothing here waits for it to lapse). */
const FAST: MapPortOptions = { retry: { initialDelayMs: 50, maxDelayMs: 500 }, externalIpCacheMs: 250, teardownTimeoutMs: 5000 };

const SOURCES = ['pmp', 'pcp', 'upnp (SSDP)', 'upnp (description URL)', 'discoverNat (all three raced)'] as const;
type SourceName = (typeof SOURCES)[number];

/**
 * A NAT source pointed at the simulator only. `answered`: deadlines no loaded machine misses on
 * loopback (discovery resolves at the first answer, so they cost nothing when it comes);
 * `defaults`: the clients' own (a 1 s NAT-PMP/PCP probe), for gateways that must fail.
 */
function source(name: SourceName, sim: GatewaySimulator, deadlines: 'answered' | 'defaults' = 'answered'): Observable<Nat> {
  const local = { localAddress: sim.address };
  const udp = deadlines === 'answered' ? { probeTimeoutMs: PATIENCE_MS, timeoutMs: PATIENCE_MS } : {};
  const soap = deadlines === 'answered' ? { requestTimeoutMs: PATIENCE_MS } : {};
  switch (name) {
    case 'pmp':
      return pmp(sim.address, { ...local, ...udp, port: sim.pmpPort });
    case 'pcp':
      return pcp(sim.address, { ...local, ...udp, port: sim.pcpPort, fallbackToPmp: false });
    case 'upnp (SSDP)':
      return upnp({ ...local, ...soap, ssdpTargets: [sim.ssdpTarget], timeoutMs: deadlines === 'answered' ? 5000 : 1000 });
    case 'upnp (description URL)':
      return upnp({ ...local, ...soap, descriptionUrl: sim.descriptionUrl });
    case 'discoverNat (all three raced)':
      return discoverNat({ ...sim.discoverOptions, timeoutMs: deadlines === 'answered' ? PATIENCE_MS : 2000 });
  }
}

/** Runs `body` against a fresh simulator; the baseline is taken with the simulator running. */
async function withSimulator(body: (sim: GatewaySimulator, baseline: Map<string, number>) => Promise<void>): Promise<void> {
  const before = resources();
  const sim = await startGatewaySimulator({ pmpPcp: { pcpMinLifetimeSeconds: 1 } });
  try {
    await body(sim, resources());
  } finally {
    await sim.close();
  }
  await assertBackTo(before, 'after closing the simulator');
}

const ours = (sim: GatewaySimulator): number => sim.table.list().filter((m) => m.internalClient === sim.address).length;
/** Add requests the simulator has received, over NAT-PMP, PCP and UPnP. */
const addsHeard = (sim: GatewaySimulator): number => {
  const byKind = sim.pmpPcp.counters.byKind;
  return byKind['pmp.mapTcp'] + byKind['pmp.mapUdp'] + byKind['pcp.map'] + sim.upnp.requests.filter((r) => r.action === 'AddPortMapping' || r.action === 'AddAnyPortMapping').length;
};

describe('teardown leaves no sockets, timers or mappings', () => {
  let port = 43000;

  for (const name of SOURCES) {
    test(`mapPort via ${name}: unsubscribe, graceful stop, unsubscribe while the add is in flight`, async () => {
      await withSimulator(async (sim, baseline) => {
        const nat$ = source(name, sim);
        // 1. Unsubscribe once mapped (and renewed: short lease).
        const states: string[] = [];
        const subscription = mapPort(nat$, { protocol: 'tcp', internalPort: port++, lifetimeSeconds: 1 }, FAST).subscribe((s) => states.push(s.status));
        assert.ok(await eventually(() => states.includes('mapped'), PATIENCE_MS), `mapped: ${states.join('→')}`);
        await sleep(600); // a renewal or two, the address poll
        subscription.unsubscribe();
        assert.ok(await eventually(() => ours(sim) === 0, PATIENCE_MS), 'the delete reached the gateway');
        await assertBackTo(baseline, 'after unsubscribe');

        // 2. Graceful stop: completes, deleted.
        const stop$ = new Subject<void>();
        const all = lastValueFrom(mapPort(nat$, { protocol: 'udp', internalPort: port++ }, { ...FAST, stop: stop$ }).pipe(toArray()));
        assert.ok(await eventually(() => ours(sim) === 1, PATIENCE_MS), 'mapped before the stop');
        stop$.next();
        const stopped = await all;
        assert.equal(stopped.at(-1)?.status, 'unmapped', 'stop ends with unmapped');
        assert.equal(ours(sim), 0, 'stop waits for the delete');
        await assertBackTo(baseline, 'after stop');

        // 3. Unsubscribe while the add is in flight (slow gateway): the delete follows the answer.
        sim.pmpPcp.faults.delayMs = 300;
        sim.upnp.faults.inject({ kind: 'delay', ms: 300 }, { action: 'AddPortMapping', times: 1 });
        const heard = addsHeard(sim);
        const inFlight = mapPort(nat$, { protocol: 'tcp', internalPort: port++ }, FAST).subscribe();
        // Unsubscribe once the gateway has the add (not after a fixed 150 ms, which a loaded
        // machine may spend before the add is even sent): its answer is then still 300 ms away.
        assert.ok(await eventually(() => addsHeard(sim) > heard, PATIENCE_MS), 'the gateway heard the add');
        inFlight.unsubscribe();
        await sleep(400);
        assert.ok(await eventually(() => ours(sim) === 0, PATIENCE_MS), 'the add answered after teardown was deleted');
        sim.pmpPcp.faults.delayMs = 0;
        await assertBackTo(baseline, 'after unsubscribing during the add');

        // 4. Unsubscribe from inside the `mapped` emission (firstValueFrom, take(1)), and stop from
        // inside it, with the default bounds and a 30 s lease: no renewal timer (10 s) may
        // survive the stream.
        await firstValueFrom(mapPort(nat$, { protocol: 'tcp', internalPort: port++, lifetimeSeconds: 30 }).pipe(filter((s) => s.status === 'mapped')));
        assert.ok(await eventually(() => ours(sim) === 0, PATIENCE_MS), 'deleted after firstValueFrom');
        await assertBackTo(baseline, 'after firstValueFrom(mapped)');
        const stopNow$ = new Subject<void>();
        await lastValueFrom(
          mapPort(nat$, { protocol: 'udp', internalPort: port++, lifetimeSeconds: 30 }, { stop: stopNow$ }).pipe(
            tap((s) => s.status === 'mapped' && stopNow$.next()),
          ),
        );
        assert.equal(ours(sim), 0, 'deleted after a stop sent from inside the mapped emission');
        await assertBackTo(baseline, 'after a stop sent from inside the mapped emission');
      });
    });
  }

  test('mapPort on a silent gateway: unsubscribed mid-retry, everything released within the teardown bound', async () => {
    await withSimulator(async (sim, baseline) => {
      sim.pmpPcp.faults.silent = true;
      sim.upnp.faults.inject({ kind: 'silent' }, { times: Infinity });
      const subscriptions = SOURCES.filter((name) => !name.startsWith('discover')).map((name) =>
        mapPort(source(name, sim, 'defaults'), { protocol: 'tcp', internalPort: port++ }, FAST).subscribe(),
      );
      await sleep(1500);
      for (const s of subscriptions) s.unsubscribe();
      await assertBackTo(baseline, 'after unsubscribing from silent gateways');
    });
  });

  test('discoverNat: the winner emitted, the losing probes closed; a failed discovery (NoGatewayError) closes everything', async () => {
    await withSimulator(async (sim, baseline) => {
      const nat = await firstValueFrom(discoverNat({ ...sim.discoverOptions, timeoutMs: PATIENCE_MS }));
      assert.ok(['pcp', 'pmp', 'upnp'].includes(nat.kind), nat.kind);
      await assertBackTo(baseline, 'after a successful discovery');
      // Unsubscribed mid-race.
      const racing = discoverNat({ ...sim.discoverOptions, timeoutMs: 2000 }).subscribe();
      racing.unsubscribe();
      await assertBackTo(baseline, 'after unsubscribing mid-race');
      // Nobody answers: every backend silent until the deadline.
      sim.pmpPcp.faults.silent = true;
      sim.upnp.faults.ssdpSilent = true;
      await assert.rejects(firstValueFrom(discoverNat({ ...sim.discoverOptions, timeoutMs: 600 })), NoGatewayError);
      await assertBackTo(baseline, 'after a failed discovery');
      // parseNat('any') is the same race.
      sim.pmpPcp.faults.silent = false;
      sim.upnp.faults.ssdpSilent = false;
      const viaSpec = parseNat('any', { ...sim.discoverOptions, timeoutMs: PATIENCE_MS }) as Observable<Nat>;
      await firstValueFrom(viaSpec);
      await assertBackTo(baseline, 'after parseNat("any")');
    });
  });

  test('natService: close() deletes every mapping and releases everything', async () => {
    await withSimulator(async (sim, baseline) => {
      const service = natService(discoverNat({ ...sim.discoverOptions, timeoutMs: PATIENCE_MS }), FAST);
      const mappings = [service.newMapping('tcp', port++, { lifetimeSeconds: 2 }), service.newMapping('udp', port++, { lifetimeSeconds: 2 }), service.newMapping('tcp', port++)];
      await Promise.all(mappings.map((m) => firstValueFrom(m.state$.pipe(filter((s) => s.status === 'mapped'), take(1)))));
      assert.equal(ours(sim), 3, 'three mappings on the gateway');
      await service.close();
      assert.equal(ours(sim), 0, 'close() resolves once the gateway deleted them');
      assert.deepEqual(service.mappings(), [], 'no mapping open');
      await assertBackTo(baseline, 'after natService.close()');
    });
  });

  test('natMap: abort deletes the mapping and resolves; nothing left', async () => {
    await withSimulator(async (sim, baseline) => {
      const controller = new AbortController();
      const done = natMap(pcp(sim.address, { localAddress: sim.address, port: sim.pcpPort, probeTimeoutMs: PATIENCE_MS, timeoutMs: PATIENCE_MS }), controller.signal, 'udp', port, port++, 'leak test', {
        ...FAST,
        onState: (s) => {
          if (s.status === 'mapped') controller.abort();
        },
      });
      await done;
      assert.equal(ours(sim), 0, 'natMap resolves once deleted');
      await assertBackTo(baseline, 'after natMap');
    });
  });
});

test('a script that maps through every backend, tears down and closes its simulator exits by itself', async (t) => {
  const script = fileURLToPath(new URL('./fixtures/map-and-exit.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBUG: '' } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  let killed = false;
  // Generous: tsx start-up plus a dozen mappings on a loaded machine, then the exit. Never hit
  // when all is well, and shorter than the 200 s a renewal timer left behind (600 s leases)
  // would hold the process: a leak is a kill here, however slow the machine.
  const guard = setTimeout(() => {
    killed = true;
    if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  }, 120_000);
  let doneAt = 0;
  child.stdout.on('data', () => {
    if (doneAt === 0 && stdout.includes('"done":true')) doneAt = performance.now();
  });
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
  clearTimeout(guard);
  const exitedAfterMs = doneAt === 0 ? -1 : performance.now() - doneAt;
  assert.equal(killed, false, `the script needed a kill (it did not exit by itself); stdout: ${stdout} stderr: ${stderr.slice(-2000)}`);
  assert.deepEqual([code, signal], [0, null], `exit code 0; stderr: ${stderr.slice(-2000)}`);
  const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { mapped?: string[]; left?: number; done?: boolean };
  assert.equal(result.done, true, `the script finished: ${stdout}`);
  assert.equal(result.left, 0, 'nothing left on its simulator');
  assert.equal(result.mapped?.length, 5, `mapped through every backend: ${JSON.stringify(result.mapped)}`);
  // Exiting is behaviour, not speed: no bound on how soon (load decides that), only that it did.
  assert.ok(exitedAfterMs >= 0, 'exited after its last line');
  t.diagnostic(`exited ${Math.round(exitedAfterMs)} ms after its last line`);
});
