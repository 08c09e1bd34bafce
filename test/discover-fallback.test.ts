/**
 * discoverNat and mapPort on the simulator over real loopback sockets: a backend that answers but
 * will not map is left for one that can, and a UPnP entry the router drops is re-added after the
 * next table check.
 */
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import { filter, firstValueFrom, Observable, Subject, tap, timeout } from 'rxjs';
import type { NetworkSnapshot } from '../src/transport/network-watch.js';
import { createGatewayRegistry } from '../src/core/gateway-context.js';
import { silentLogger } from '../src/core/logger.js';
import { mapPort } from '../src/core/map-port.js';
import type { MappingState } from '../src/core/mapping-state.js';
import { discoverNat } from '../src/discover.js';
import { GatewayError, MappingMissingError } from '../src/errors.js';
import { upnp } from '../src/protocols/upnp/client.js';
import { startGatewaySimulator, type GatewaySimulator } from '../src/testing/simulator.js';

/** Generous for a loaded machine: these tests are about what happens, not how fast. */
const WITHIN_MS = 15_000;
const sims: GatewaySimulator[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});
async function simulator(): Promise<GatewaySimulator> {
  const sim = await startGatewaySimulator();
  sims.push(sim);
  return sim;
}

for (const requests of ['mappings', 'all'] as const) {
  const what = requests === 'mappings' ? 'answers the probe but refuses every MAP' : 'refuses the probe too';
  test(`PCP ${what} (NOT_AUTHORIZED): the mapping ends mapped through another protocol`, async () => {
    const sim = await simulator();
    sim.pmpPcp.faults.refuse = { resultCode: 2, protocol: 'pcp', requests };
    const registry = createGatewayRegistry();
    const stop = new Subject<void>();
    const states: MappingState[] = [];
    const mapped = firstValueFrom(
      mapPort(discoverNat({ ...sim.discoverOptions, gatewayRegistry: registry, logger: silentLogger }), { protocol: 'udp', internalPort: 4001 }, { gatewayRegistry: registry, logger: silentLogger, stop }).pipe(
        tap((s) => states.push(s)),
        filter((s) => s.status === 'mapped'),
        timeout(WITHIN_MS),
      ),
    );
    const state = await mapped;
    stop.next();
    assert.match(state.backend ?? '', /^(pmp|upnp)\(/, `mapped on ${state.backend}`);
    assert.ok(!states.some((s) => s.status === 'mapped' && s.backend?.startsWith('pcp')));
    const maps = sim.pmpPcp.counters.byKind['pcp.map'] ?? 0;
    if (requests === 'mappings') {
      // PCP was found, asked to map, refused; the state said so with PCP's own code, then moved.
      assert.ok(maps >= 1, 'PCP was asked to map');
      const refusal = states.find((s) => s.error instanceof GatewayError);
      assert.ok(refusal, states.map((s) => `${s.status}:${s.backend}`).join(' '));
      assert.equal((refusal.error as GatewayError).resultCode, 2, "the refusal shown is PCP's own code");
      assert.match(refusal.backend ?? '', /^pcp\(/, 'the refusal is shown on the backend that refused');
    } else {
      assert.equal(maps, 0, 'a refused probe is not found: no MAP sent');
    }
  });
}

test('the refusal is remembered: the next mapping on the registry never asks PCP to map', async () => {
  const sim = await simulator();
  sim.pmpPcp.faults.refuse = { resultCode: 2, protocol: 'pcp', requests: 'mappings' };
  const registry = createGatewayRegistry();
  const options = { gatewayRegistry: registry, logger: silentLogger };
  const map = async (internalPort: number): Promise<MappingState> => {
    const stop = new Subject<void>();
    const state = await firstValueFrom(
      mapPort(discoverNat({ ...sim.discoverOptions, ...options }), { protocol: 'udp', internalPort }, { ...options, stop }).pipe(filter((s) => s.status === 'mapped'), timeout(WITHIN_MS)),
    );
    stop.next();
    return state;
  };
  await map(4001);
  const asked = sim.pmpPcp.counters.byKind['pcp.map'] ?? 0;
  const second = await map(4002);
  assert.match(second.backend ?? '', /^(pmp|upnp)\(/);
  assert.equal(sim.pmpPcp.counters.byKind['pcp.map'] ?? 0, asked, 'no PCP MAP for the second mapping');
});

test('UPnP: an entry the router dropped is found by the table check and re-added', async () => {
  const sim = await simulator();
  const stop = new Subject<void>();
  const seen: MappingState[] = [];
  const subscription = mapPort(upnp({ ssdpTargets: [sim.ssdpTarget], localAddress: sim.address }), { protocol: 'tcp', internalPort: 8080, lifetimeSeconds: 3600 }, {
    logger: silentLogger,
    checkIntervalMs: 1000,
    gatewayRegistry: createGatewayRegistry(),
    stop,
  }).subscribe((s) => seen.push(s));
  try {
    await waitFor(() => seen.some((s) => s.status === 'mapped'), 'mapped');
    sim.table.clear();
    await waitFor(() => seen.some((s) => s.error instanceof MappingMissingError), 'the drop noticed');
    const missing = seen.findIndex((s) => s.error instanceof MappingMissingError);
    assert.equal(seen[missing]!.status, 'unmapped');
    await waitFor(() => seen.slice(missing).some((s) => s.status === 'mapped') && sim.table.list().length === 1, 'mapped again, entry back');
  } finally {
    stop.next();
    subscription.unsubscribe();
  }
});

/** Polls until `done()` (states arrive over real sockets), failing after WITHIN_MS. */
async function waitFor(done: () => boolean, what: string): Promise<void> {
  const until = Date.now() + WITHIN_MS;
  while (!done()) {
    if (Date.now() > until) throw new Error(`not within ${WITHIN_MS} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('followNetwork: each network change rediscovers, aimed at the router of the new route', async () => {
  const sim = await simulator();
  const watch = new Subject<NetworkSnapshot>();
  const found: string[] = [];
  let races = 0;
  const nat$ = discoverNat({
    backends: ['pmp'],
    pmp: { port: sim.pmpPort, localAddress: sim.address, timeoutMs: WITHIN_MS },
    probes: [{ name: 'counter', nat$: new Observable<never>(() => void races++) }],
    logger: silentLogger,
    followNetwork: { watch, settleMs: 0 },
  });
  const subscription = nat$.subscribe((nat) => found.push(nat.name));
  try {
    watch.next({ defaultGateway: { gateway: sim.address, interface: 'lo' }, localAddress: sim.address });
    await waitFor(() => found.length === 1, 'the first gateway');
    assert.deepEqual(found, [`pmp(${sim.address})`], 'the snapshot\'s router was asked');
    watch.next({ defaultGateway: { gateway: sim.address, interface: 'lo' }, localAddress: '127.0.0.2' });
    await waitFor(() => races === 2 && found.length === 2, 'rediscovered after the change');
    watch.next({ defaultGateway: { gateway: sim.address, interface: 'lo' }, localAddress: '127.0.0.2' });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(races, 2, 'the same network again: no rediscovery');
  } finally {
    subscription.unsubscribe();
  }
});
