// Issue #11 item 1 in the lab: a gateway whose PCP and NAT-PMP answer the discovery probes but
// refuse every mapping (NOT_AUTHORIZED, "implemented but not enabled for you"), beside a real
// UPnP IGD. miniupnpd refuses per rule for all its protocols at once, so it cannot play that
// part: it runs with NAT-PMP/PCP off (UPnP only), and udp 192.168.77.1:5351 in the gateway
// namespace is the project's NAT-PMP/PCP server with its refuse fault limited to mappings
// (test/interop/refusing-pmp-pcp-server.ts). `mapPort(discoverNat(…))` and `rxnat map --nat any`
// must end mapped through UPnP, with the entry in miniupnpd's nft table, and delete it on stop.
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { LAB_ADDRESSES } from '../lab/lab.js';
import type { Lab, LabProcess, LabRule } from '../lab/lab.js';
import { labSkip, useLab } from '../lab/require-lab.js';
import type { DriverError } from './driver-wire.js';
import type { MappingState } from '../../src/index.js';
import type { PmpPcpRequestKind, PmpPcpServerCounters } from '../../src/testing/pmp-pcp-server.js';

const { lan: LAN_IP, gateway: GW_IP, external: EXT_IP } = LAB_ADDRESSES;
const SERVER = 'test/interop/refusing-pmp-pcp-server.ts';
const DRIVER = 'test/interop/discover-map-driver.ts';
const CLI = 'src/cli/main.ts';
/** NOT_AUTHORIZED: result code 2 in NAT-PMP (RFC 6886 §3.5) and PCP (RFC 6887 §7.4) alike. */
const NOT_AUTHORIZED = 2;
/** Generous for a loaded 2-core machine: these are conditions, not speed checks. */
const MAPPED_WITHIN_MS = 30_000;
/**
 * The issue says a refused mapping moves to another backend "within a second"; asserted as a
 * bound far from the figure (it is printed), so load cannot fail it, while a mapping that waited
 * for a retry (PCP's error lifetime, 30 s from this server) or for the discovery deadline fails.
 */
const MOVE_BOUND_MS = 5_000;
const MAPPING_KINDS: readonly PmpPcpRequestKind[] = ['pcp.map', 'pmp.mapTcp', 'pmp.mapUdp'];

type WireState = Omit<MappingState, 'error'> & { readonly error: DriverError | null };
interface DriverEvent {
  readonly at: number;
  readonly event: 'nat' | 'state' | 'error' | 'complete';
  readonly name?: string;
  readonly kind?: string;
  readonly state?: WireState;
  readonly error?: DriverError;
}
/** A `rxnat map --json` line (the fields used here). */
interface CliState {
  readonly time: string;
  readonly status: string;
  readonly backend: string | null;
  readonly externalIp: string | null;
  readonly externalPort: number;
}
interface ServerStats {
  readonly counters: PmpPcpServerCounters;
  readonly requests: readonly { readonly kind: PmpPcpRequestKind; readonly atMs: number }[];
}

const ruleFor = (rules: readonly LabRule[], protocol: string, externalPort: number): LabRule | undefined =>
  rules.find((r) => r.protocol === protocol && r.externalPort === externalPort);

/** The refusing NAT-PMP/PCP server on the router's LAN address, udp 5351, bound when this resolves. */
async function startRefusingServer(lab: Lab): Promise<LabProcess> {
  const server = lab.spawnNodeIn('gw', SERVER, [GW_IP, '5351', EXT_IP, String(NOT_AUTHORIZED)]);
  try {
    const ready = await server.next<{ ready?: boolean; address?: string; port?: number }>(30_000);
    assert.deepEqual(ready, { ready: true, address: GW_IP, port: 5351 }, 'the refusing server is bound');
    return server;
  } catch (error) {
    server.kill();
    throw error;
  }
}

async function serverStats(server: LabProcess): Promise<ServerStats> {
  server.send({ op: 'stats' });
  for (;;) {
    const message = await server.next<{ stats?: ServerStats }>(15_000);
    if (message.stats) return message.stats;
  }
}

/** Stops the server (stdin closed: it closes its socket and exits) and checks it is gone; SIGKILL by PID otherwise. */
async function stopServer(server: LabProcess): Promise<void> {
  try {
    const done = await server.done(10_000);
    assert.equal(done.code, 0, `refusing server exited ${done.code ?? done.signal}: ${done.stderr}`);
  } finally {
    server.kill();
  }
}

/** What the server saw: the probes it answered, the mappings it refused, and when it first refused. */
function refusals(stats: ServerStats): { probes: number; refused: number; firstRefusalAtMs: number | undefined } {
  const { byKind } = stats.counters;
  const mapping = stats.requests.filter((r) => MAPPING_KINDS.includes(r.kind));
  return {
    probes: byKind['pcp.announce'] + byKind['pmp.externalAddress'],
    refused: MAPPING_KINDS.reduce((sum, kind) => sum + byKind[kind], 0),
    firstRefusalAtMs: mapping.length > 0 ? Math.min(...mapping.map((r) => r.atMs)) : undefined,
  };
}

function report(t: TestContext, stats: ServerStats): void {
  const { byKind } = stats.counters;
  t.diagnostic(
    `refusing server saw: PCP ANNOUNCE ${byKind['pcp.announce']}, PCP MAP ${byKind['pcp.map']}, NAT-PMP external address ${byKind['pmp.externalAddress']}, ` +
      `NAT-PMP map ${byKind['pmp.mapTcp'] + byKind['pmp.mapUdp']} (replies ${stats.counters.replies})`,
  );
}

const skip = await labSkip();

describe('PCP and NAT-PMP answer the probes but refuse every mapping; miniupnpd (UPnP only) maps (#11 item 1)', { skip }, () => {
  const lab = useLab({ natpmp: false });

  it('mapPort(discoverNat({ gateway })) ends mapped through UPnP, the refusals move it within the bound; the entry goes on stop', async (t) => {
    const l = lab();
    const port = 45100;
    const server = await startRefusingServer(l);
    let driver: LabProcess | undefined;
    try {
      const started = Date.now();
      driver = l.spawnNodeIn('lan', DRIVER, ['tcp', String(port), GW_IP]);
      const events: DriverEvent[] = [];
      const deadline = performance.now() + MAPPED_WITHIN_MS;
      let mapped: DriverEvent | undefined;
      const line = (e: DriverEvent): string =>
        e.event === 'nat' ? `nat ${e.name}` : `${e.event} ${e.state?.status ?? ''} ${e.state?.backend ?? ''}${e.state?.error ? ` (${e.state.error.protocol} ${e.state.error.resultCode})` : ''}`;
      const seenSoFar = (): string => events.map((e) => `+${e.at - started} ms ${line(e)}`).join('; ');
      while (!mapped) {
        const event = await driver.next<DriverEvent>(Math.max(1, deadline - performance.now())).catch((error: unknown) => {
          throw new Error(`not mapped within ${MAPPED_WITHIN_MS} ms (${(error as Error).message}); events: ${seenSoFar()}`);
        });
        events.push(event);
        assert.notEqual(event.event, 'error', `mapping stream failed: ${JSON.stringify(event.error)}`);
        assert.notEqual(event.event, 'complete', 'mapping stream completed before mapped');
        if (event.event === 'state' && event.state?.status === 'mapped') mapped = event;
      }
      const nats = events.filter((e) => e.event === 'nat').map((e) => e.name);
      t.diagnostic(`NATs discovered in order: ${nats.join(', ')}`);
      t.diagnostic(`events: ${seenSoFar()}`);
      const state = mapped.state!;
      assert.match(state.backend ?? '', /^upnp\(/, `mapped through UPnP, not ${state.backend}`);
      assert.deepEqual([state.externalIp, state.externalPort, state.protocol], [EXT_IP, port, 'tcp']);
      assert.ok(!events.some((e) => e.state?.status === 'mapped' && !/^upnp\(/.test(e.state.backend ?? '')), 'never mapped on PCP or NAT-PMP');
      const refusal = events.find((e) => e.state?.error?.name === 'GatewayError');
      if (refusal) assert.equal(refusal.state!.error!.resultCode, NOT_AUTHORIZED, 'a refusal shown is the gateway\'s own code');

      const stats = await serverStats(server);
      report(t, stats);
      const seen = refusals(stats);
      assert.ok(seen.probes >= 1, 'the server answered a discovery probe');
      assert.ok(seen.refused >= 1 && seen.firstRefusalAtMs !== undefined, 'the server refused at least one mapping');
      const moveMs = mapped.at - seen.firstRefusalAtMs;
      t.diagnostic(`first refusal → mapped via UPnP: ${moveMs} ms (driver start → mapped: ${mapped.at - started} ms)`);
      assert.ok(moveMs >= 0, `mapped after the first refusal (${moveMs} ms)`);
      assert.ok(moveMs < MOVE_BOUND_MS, `mapped ${moveMs} ms after the first refusal (bound ${MOVE_BOUND_MS} ms)`);

      assert.deepEqual(ruleFor(await l.rules(), 'tcp', port), { protocol: 'tcp', externalPort: port, internalClient: LAN_IP, internalPort: port }, 'miniupnpd holds the entry');

      driver.send('stop');
      let last: WireState | undefined;
      for (;;) {
        const event = await driver.next<DriverEvent>(20_000);
        assert.notEqual(event.event, 'error', `mapping stream failed on stop: ${JSON.stringify(event.error)}`);
        if (event.event === 'state') last = event.state;
        if (event.event === 'complete') break;
      }
      assert.equal(last?.status, 'unmapped', 'the last state of the stop');
      assert.equal(last?.error, null, 'the gateway confirmed the delete');
      assert.equal(ruleFor(await l.rules(), 'tcp', port), undefined, 'entry gone after stop');
      const done = await driver.done(10_000);
      assert.equal(done.code, 0, done.stderr);
    } finally {
      driver?.kill();
      await stopServer(server);
    }
  });

  it('rxnat map tcp <port> --nat any prints a mapped line via UPnP; SIGINT deletes the entry', async (t) => {
    const l = lab();
    const port = 45200;
    const server = await startRefusingServer(l);
    const map = l.spawnNodeIn('lan', CLI, ['map', 'tcp', String(port), '--nat', 'any', '--json']);
    try {
      const deadline = performance.now() + MAPPED_WITHIN_MS;
      let mapped: CliState | undefined;
      while (!mapped) {
        const line = await map.next<CliState>(Math.max(1, deadline - performance.now()));
        if (line.status === 'mapped') mapped = line;
      }
      assert.match(mapped.backend ?? '', /^upnp\(/, `mapped through UPnP, not ${mapped.backend}`);
      assert.deepEqual([mapped.externalIp, mapped.externalPort], [EXT_IP, port]);
      const stats = await serverStats(server);
      report(t, stats);
      const seen = refusals(stats);
      assert.ok(seen.probes >= 1, 'the server answered a discovery probe');
      assert.ok(seen.refused >= 1 && seen.firstRefusalAtMs !== undefined, 'the server refused at least one mapping');
      t.diagnostic(`first refusal → mapped line: ${Date.parse(mapped.time) - seen.firstRefusalAtMs} ms`);

      assert.deepEqual(ruleFor(await l.rules(), 'tcp', port), { protocol: 'tcp', externalPort: port, internalClient: LAN_IP, internalPort: port }, 'miniupnpd holds the entry');
      assert.ok(map.pid !== undefined, 'map runs');
      process.kill(map.pid, 'SIGINT');
      const done = await map.done(20_000);
      assert.equal(done.code, 0, done.stderr);
      assert.equal(ruleFor(await l.rules(), 'tcp', port), undefined, 'entry gone after SIGINT');
      assert.deepEqual(await l.rules(), [], 'table empty');
    } finally {
      map.kill();
      await stopServer(server);
    }
  });
});
