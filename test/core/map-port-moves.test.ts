/**
 * mapPort over a discovery that can move: a backend that refuses with a "not here" code is left
 * for the next one that found a gateway (and skipped by later discoveries), a router with no
 * usable backend is not asked in a loop, and an entry the router dropped is re-added after the
 * next table check. Virtual time throughout.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defer, filter, map, timer, VirtualTimeScheduler, type Observable } from 'rxjs';
import { GatewayError, MappingMissingError } from '../../src/errors.js';
import { createGatewayRegistry } from '../../src/core/gateway-context.js';
import { mapPort } from '../../src/core/map-port.js';
import type { MappingState } from '../../src/core/mapping-state.js';
import type { BackendKind, MappingGrant, Nat, NatMappingRequest } from '../../src/core/nat.js';
import { raceNats } from '../../src/core/race-nats.js';
import { unusableReason } from '../../src/core/unusable.js';
import { silentLogger } from '../../src/core/logger.js';

interface Fake extends Nat {
  readonly adds: NatMappingRequest[];
  readonly deletes: MappingGrant[];
  checks: number;
}

function fake(kind: BackendKind, scheduler: VirtualTimeScheduler, answer: (request: NatMappingRequest, call: number) => Observable<MappingGrant>, check?: (call: number) => boolean): Fake {
  const adds: NatMappingRequest[] = [];
  const deletes: MappingGrant[] = [];
  const nat: Fake = {
    name: `${kind}(192.0.2.1)`,
    kind,
    gateway: '192.0.2.1',
    adds,
    deletes,
    checks: 0,
    addMapping: (request) => defer(() => {
      adds.push(request);
      return answer(request, adds.length);
    }),
    deleteMapping: (grant) => defer(() => {
      deletes.push(grant);
      return timer(2, scheduler).pipe(map(() => undefined));
    }),
    externalIp: () => timer(1, scheduler).pipe(map(() => '203.0.113.7')),
    ...(check ? { checkMapping: () => timer(3, scheduler).pipe(map(() => check(++nat.checks))) } : {}),
  };
  return nat;
}

const grantFor = (request: NatMappingRequest, lifetimeSeconds = 3600): MappingGrant => ({
  protocol: request.protocol,
  internalPort: request.internalPort,
  externalPort: request.externalPort,
  lifetimeSeconds,
});
const refuse = (kind: 'pcp' | 'pmp' | 'upnp', code: number) => (): Observable<MappingGrant> =>
  timer(4, defaultScheduler!).pipe(map(() => {
    throw new GatewayError({ protocol: kind, resultCode: code, resultName: 'NOT_AUTHORIZED', gateway: '192.0.2.1' });
  }));
let defaultScheduler: VirtualTimeScheduler | undefined;

/** A discovery like discoverNat's: `probes` found after the given delays, skipping what refused lately. */
function discovery(scheduler: VirtualTimeScheduler, registry: ReturnType<typeof createGatewayRegistry>, probes: ReadonlyArray<readonly [Nat, number]>): Observable<Nat> {
  const scope = { registry, scheduler };
  return raceNats(
    probes.map(([nat, after]) => ({ name: nat.kind, nat$: timer(after, scheduler).pipe(map(() => nat)) })),
    3000,
    { scheduler, unusable: (nat) => unusableReason(nat, scope) },
  );
}

function record(scheduler: VirtualTimeScheduler, states: Array<MappingState & { at: number }>) {
  return (state: MappingState): void => void states.push({ ...state, at: scheduler.now() });
}

test('a backend that refuses with a "not here" code: the mapping moves to the next backend within a second', () => {
  const scheduler = new VirtualTimeScheduler();
  defaultScheduler = scheduler;
  const registry = createGatewayRegistry();
  const pcp = fake('pcp', scheduler, refuse('pcp', 2));
  const pmp = fake('pmp', scheduler, (request) => timer(5, scheduler).pipe(map(() => grantFor(request))));
  const states: Array<MappingState & { at: number }> = [];
  const subscription = mapPort(discovery(scheduler, registry, [[pcp, 5], [pmp, 40]]), { protocol: 'udp', internalPort: 4001 }, { scheduler, gatewayRegistry: registry, logger: silentLogger })
    .subscribe(record(scheduler, states));
  scheduler.schedule(() => subscription.unsubscribe(), 60_000);
  scheduler.flush();
  assert.equal(pcp.adds.length, 1, 'PCP was asked once');
  const refusedAt = states.find((s) => s.error instanceof GatewayError)!.at;
  const mapped = states.find((s) => s.status === 'mapped');
  assert.ok(mapped, JSON.stringify(states.map((s) => [s.at, s.status, s.backend])));
  assert.equal(mapped.backend, 'pmp(192.0.2.1)');
  assert.ok(mapped.at - refusedAt < 1000, `moved ${mapped.at - refusedAt} ms after the refusal`);
  const unmapped = states.find((s) => s.status === 'unmapped')!;
  assert.ok(unmapped.error instanceof GatewayError && unmapped.error.resultCode === 2, 'the state names the refusal and its code');
  // The source's "searching", the first entry's "mapping", then no "mapping" between the refusal and the move.
  assert.deepEqual(states.map((s) => s.status), ['mapping', 'mapping', 'unmapped', 'mapped']);
});

test('each state names the backend it is about: a second refusal after a move names the second backend, not the first', () => {
  const scheduler = new VirtualTimeScheduler();
  defaultScheduler = scheduler;
  const registry = createGatewayRegistry();
  const pcp = fake('pcp', scheduler, refuse('pcp', 2));
  const pmp = fake('pmp', scheduler, refuse('pmp', 2));
  const upnp = fake('upnp', scheduler, (request) => timer(5, scheduler).pipe(map(() => grantFor(request))));
  const states: Array<MappingState & { at: number }> = [];
  const subscription = mapPort(discovery(scheduler, registry, [[pcp, 5], [pmp, 20], [upnp, 40]]), { protocol: 'udp', internalPort: 4001 }, { scheduler, gatewayRegistry: registry, logger: silentLogger })
    .subscribe(record(scheduler, states));
  scheduler.schedule(() => subscription.unsubscribe(), 60_000);
  scheduler.flush();
  const described = states.map((s) => `${s.status}:${s.backend}:${s.error instanceof GatewayError ? s.error.protocol : '-'}`);
  assert.deepEqual(
    described.filter((d) => !d.startsWith('mapping')),
    ['unmapped:pcp(192.0.2.1):pcp', 'unmapped:pmp(192.0.2.1):pmp', 'mapped:upnp(192.0.2.1):-'],
    described.join(' '),
  );
});

test('the refusal is remembered: a later discovery on the same registry goes to the other backend directly', () => {
  const scheduler = new VirtualTimeScheduler();
  defaultScheduler = scheduler;
  const registry = createGatewayRegistry();
  const pcp = fake('pcp', scheduler, refuse('pcp', 2));
  const pmp = fake('pmp', scheduler, (request) => timer(5, scheduler).pipe(map(() => grantFor(request))));
  const first = mapPort(discovery(scheduler, registry, [[pcp, 5], [pmp, 40]]), { protocol: 'udp', internalPort: 4001 }, { scheduler, gatewayRegistry: registry, logger: silentLogger }).subscribe();
  scheduler.schedule(() => {
    const second = mapPort(discovery(scheduler, registry, [[pcp, 5], [pmp, 40]]), { protocol: 'udp', internalPort: 4002 }, { scheduler, gatewayRegistry: registry, logger: silentLogger }).subscribe();
    scheduler.schedule(() => {
      first.unsubscribe();
      second.unsubscribe();
    }, 10_000);
  }, 10_000);
  scheduler.flush();
  assert.equal(pcp.adds.length, 1, 'the second mapping never asked PCP');
  assert.deepEqual(pmp.adds.map((a) => a.internalPort), [4001, 4002]);
  const elsewhere = createGatewayRegistry();
  const other = mapPort(discovery(scheduler, elsewhere, [[pcp, 5], [pmp, 40]]), { protocol: 'udp', internalPort: 4003 }, { scheduler, gatewayRegistry: elsewhere, logger: silentLogger }).subscribe();
  scheduler.schedule(() => other.unsubscribe(), 10_000);
  scheduler.flush();
  assert.equal(pcp.adds.length, 2, 'another registry has its own memory');
});

test('when every backend refuses, the mapping stays unmapped with the refusal and backs off: no loop', () => {
  const scheduler = new VirtualTimeScheduler();
  defaultScheduler = scheduler;
  const registry = createGatewayRegistry();
  const pcp = fake('pcp', scheduler, refuse('pcp', 2));
  const upnp = fake('upnp', scheduler, refuse('upnp', 606));
  const states: Array<MappingState & { at: number }> = [];
  const subscription = mapPort(discovery(scheduler, registry, [[pcp, 5], [upnp, 40]]), { protocol: 'tcp', internalPort: 8080 }, { scheduler, gatewayRegistry: registry, logger: silentLogger, random: () => 0.5 })
    .subscribe(record(scheduler, states));
  const stop = scheduler.schedule(() => subscription.unsubscribe(), 600_000);
  scheduler.flush();
  stop.unsubscribe();
  const adds = pcp.adds.length + upnp.adds.length;
  // Two fresh refusals move at once; after that each try waits the backoff (1 s doubling to 60 s).
  assert.ok(adds >= 3 && adds <= 16, `${adds} adds in 10 minutes`);
  assert.ok(states.slice(2).every((s) => s.status === 'unmapped' && s.error instanceof GatewayError), JSON.stringify(states.map((s) => s.status)));
});

test('a refused renewal keeps the lease it holds (degraded), then moves once the lease is over', () => {
  const scheduler = new VirtualTimeScheduler();
  defaultScheduler = scheduler;
  const registry = createGatewayRegistry();
  const upnp = fake('upnp', scheduler, (request, call) => (call === 1 ? timer(5, scheduler).pipe(map(() => grantFor(request, 60))) : refuse('upnp', 606)()));
  const pmp = fake('pmp', scheduler, (request) => timer(5, scheduler).pipe(map(() => grantFor(request, 60))));
  const states: Array<MappingState & { at: number }> = [];
  const subscription = mapPort(discovery(scheduler, registry, [[upnp, 5], [pmp, 40]]), { protocol: 'tcp', internalPort: 8080 }, { scheduler, gatewayRegistry: registry, logger: silentLogger, random: () => 0.5 })
    .subscribe(record(scheduler, states));
  const stop = scheduler.schedule(() => subscription.unsubscribe(), 120_000);
  scheduler.flush();
  stop.unsubscribe();
  const statuses = states.map((s) => `${s.status}:${s.backend}`);
  assert.ok(statuses.includes('degraded:upnp(192.0.2.1)'), statuses.join(' '));
  const degraded = states.find((s) => s.status === 'degraded')!;
  const moved = states.find((s) => s.status === 'mapped' && s.backend === 'pmp(192.0.2.1)');
  assert.ok(moved, statuses.join(' '));
  assert.ok(moved.at > degraded.at + 30_000, 'not before the held lease ended');
});

test('an entry the router dropped is found by the next table check and re-added at once', () => {
  const scheduler = new VirtualTimeScheduler();
  defaultScheduler = scheduler;
  const upnp = fake('upnp', scheduler, (request) => timer(5, scheduler).pipe(map(() => grantFor(request, 3600))), (call) => call !== 2);
  const states: Array<MappingState & { at: number }> = [];
  const subscription = mapPort(upnp, { protocol: 'tcp', internalPort: 8080, lifetimeSeconds: 3600 }, { scheduler, gatewayRegistry: createGatewayRegistry(), logger: silentLogger, checkIntervalMs: 30_000 })
    .subscribe(record(scheduler, states));
  const stop = scheduler.schedule(() => subscription.unsubscribe(), 100_000);
  scheduler.flush();
  stop.unsubscribe();
  const missing = states.find((s) => s.error instanceof MappingMissingError);
  assert.ok(missing, JSON.stringify(states.map((s) => s.status)));
  assert.equal(missing.status, 'unmapped');
  const back = states.find((s) => s.at > missing.at && s.status === 'mapped');
  assert.ok(back && back.at - missing.at < 100, 're-added at once');
  assert.equal(upnp.adds.length, 2);
  assert.equal(upnp.checks, 3, 'checked every 30 s while mapped (at ~30, ~60, ~90 s)');
  assert.ok(missing.at > 60_000 && missing.at < 61_000, `the second check found it missing at ${missing.at}`);
});

test('a check that fails or answers nothing says nothing: the next one is still made, and finds the drop', () => {
  for (const first of ['error', 'empty'] as const) {
    const scheduler = new VirtualTimeScheduler();
    defaultScheduler = scheduler;
    let checks = 0;
    const upnp: Nat = {
      ...fake('upnp', scheduler, (request) => timer(5, scheduler).pipe(map(() => grantFor(request, 3600)))),
      checkMapping: () =>
        defer(() => {
          checks++;
          if (checks === 1) return first === 'error' ? timer(3, scheduler).pipe(map((): boolean => { throw new Error('SOAP timeout'); })) : timer(3, scheduler).pipe(map(() => true), filter(() => false));
          return timer(3, scheduler).pipe(map(() => false));
        }),
    };
    const states: Array<MappingState & { at: number }> = [];
    const subscription = mapPort(upnp, { protocol: 'tcp', internalPort: 8080, lifetimeSeconds: 3600 }, { scheduler, gatewayRegistry: createGatewayRegistry(), logger: silentLogger, checkIntervalMs: 30_000 })
      .subscribe(record(scheduler, states));
    scheduler.schedule(() => subscription.unsubscribe(), 70_000);
    scheduler.flush();
    const missing = states.find((s) => s.error instanceof MappingMissingError);
    assert.ok(missing && missing.at > 60_000 && missing.at < 61_000, `${first}: the second check found the drop (${missing?.at})`);
  }
});
