/**
 * Soak test: many real `mapPort` streams against the gateway simulator on loopback, with faults
 * injected at random, for minutes. Proves that memory stays flat, every mapping recovers once the
 * faults stop, nothing is left on the gateway after teardown, and nothing crashes.
 *
 * - `--mappings N` streams (default 1000), spread over NAT-PMP, PCP and UPnP (IGDv2), TCP and
 *   UDP, each asking for a `--lifetime S` lease (default 5 s: renewed every ~1.7 s).
 * - For `--minutes M` (default 10) a fault is injected every 2-8 s (seeded, `--seed`): reply
 *   drops, refusals, delays, silence, garbage replies, UPnP faults (errors, resets, malformed
 *   and oversized answers), reboots (table wiped, epoch reset) and external address changes.
 * - Heap and RSS are sampled every `--sample-seconds` (default 30), after a GC when node runs
 *   with `--expose-gc` (`npm run soak` does).
 *   With every fault, 10 random mappings are also unsubscribed and mapped again (churn).
 * - Then `--settle-seconds` (default 30) without faults; every mapping must then be `mapped`.
 * - Teardown: the simulator's clock is frozen (nothing can expire any more, only deletes remove
 *   mappings), every stream is unsubscribed, and the table must empty.
 *
 * Usage: node --expose-gc --import tsx bench/soak.ts [--minutes M] [--mappings N] [--lifetime S]
 *        [--settle-seconds S] [--sample-seconds S] [--seed N] [--no-write]
 * Writes bench/results/soak-<ISO date>.json; exits 1 when a criterion fails.
 *
 * Network: only 127.0.0.1 (the simulator binds loopback and every client is pointed at it).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { firstValueFrom, type Subscription } from 'rxjs';
import { silentLogger } from '../src/core/logger.js';
import { mapPort, type MappingState, type MappingStatus } from '../src/core/map-port.js';
import type { Nat } from '../src/core/nat.js';
import { pcp } from '../src/protocols/pcp/client.js';
import { pmp } from '../src/protocols/pmp/client.js';
import { upnp } from '../src/protocols/upnp/client.js';
import { startGatewaySimulator, type GatewaySimulator } from '../src/testing/simulator.js';
import { MappingTable } from '../src/testing/table.js';
import type { UpnpFault } from '../src/testing/upnp-server.js';

interface Args {
  readonly minutes: number;
  readonly mappings: number;
  readonly lifetime: number;
  readonly settleSeconds: number;
  readonly sampleSeconds: number;
  readonly seed: number;
  readonly write: boolean;
}

function parseArgs(argv: readonly string[]): Args {
  const value = (name: string, fallback: number): number => {
    const index = argv.indexOf(`--${name}`);
    if (index < 0) return fallback;
    const parsed = Number(argv[index + 1]);
    if (!Number.isFinite(parsed) || parsed < 0) throw new Error(`--${name} needs a non-negative number`);
    return parsed;
  };
  return {
    minutes: value('minutes', 10),
    mappings: Math.floor(value('mappings', 1000)),
    lifetime: Math.max(1, Math.floor(value('lifetime', 5))),
    settleSeconds: value('settle-seconds', 30),
    sampleSeconds: Math.max(1, value('sample-seconds', 30)),
    seed: Math.floor(value('seed', Date.now() % 2 ** 31)),
    write: !argv.includes('--no-write'),
  };
}

/** mulberry32: a small seeded PRNG, so a soak's fault schedule can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes: number): number => Math.round((bytes / 2 ** 20) * 100) / 100;

interface Sample {
  readonly tSeconds: number;
  readonly heapUsedMB: number;
  readonly rssMB: number;
  readonly externalMB: number;
  readonly statuses: Partial<Record<MappingStatus, number>>;
  readonly tableSize: number;
  /** Per backend: mappings the streams report `mapped`, and what the gateway actually holds. */
  readonly byBackend: Record<string, { readonly mapped: number; readonly held: number }>;
  readonly activeResources: number;
  readonly eventLoopLagP99Ms: number;
}

/** Least-squares slope of y over x. */
function slope(points: ReadonlyArray<readonly [number, number]>): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

type FaultKind = 'drop' | 'refuse' | 'delay' | 'silent' | 'garbage' | 'upnp-error' | 'upnp-broken' | 'reboot' | 'ip-change';
const FAULT_KINDS: readonly FaultKind[] = ['drop', 'refuse', 'delay', 'silent', 'garbage', 'upnp-error', 'upnp-broken', 'reboot', 'ip-change'];

/** Injects one random fault at a time into the simulator and undoes the timed ones. */
class FaultInjector {
  readonly counts: Record<FaultKind, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly undo = new Map<string, () => void>();

  constructor(
    private readonly sim: GatewaySimulator,
    private readonly random: () => number,
  ) {}

  private between(low: number, high: number): number {
    return Math.floor(low + this.random() * (high - low + 1));
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)] as T;
  }

  /** Applies `apply` now and `revert` after `ms` (a newer fault of the same slot replaces it). */
  private timed(slot: string, ms: number, apply: () => void, revert: () => void): void {
    this.undo.get(slot)?.();
    apply();
    this.undo.set(slot, revert);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.undo.get(slot) === revert) {
        revert();
        this.undo.delete(slot);
      }
    }, ms);
    this.timers.add(timer);
  }

  async inject(): Promise<FaultKind> {
    const kind = this.pick(FAULT_KINDS);
    this.counts[kind]++;
    const faults = this.sim.pmpPcp.faults;
    const upnpFaults = this.sim.upnp.faults;
    switch (kind) {
      case 'drop':
        this.timed('drop', this.between(2000, 6000), () => (faults.drop = { probability: 0.2 + this.random() * 0.4 }), () => (faults.drop = undefined));
        break;
      case 'refuse': {
        const pmpSide = this.random() < 0.5;
        const resultCode = pmpSide ? this.pick([2, 3, 4]) : this.pick([2, 7, 8]);
        faults.refuse = { resultCode, count: this.between(20, 150), protocol: pmpSide ? 'pmp' : 'pcp', lifetimeSeconds: 1 };
        break;
      }
      case 'delay': {
        const ms = this.between(100, 1500);
        this.timed('delay', this.between(2000, 5000), () => (faults.delayMs = ms), () => (faults.delayMs = 0));
        upnpFaults.inject({ kind: 'delay', ms }, { times: this.between(10, 60) });
        break;
      }
      case 'silent':
        this.timed('silent', this.between(1000, 3000), () => (faults.silent = true), () => (faults.silent = false));
        upnpFaults.inject({ kind: 'silent' }, { times: this.between(5, 30) });
        break;
      case 'garbage':
        this.timed(
          'garbage',
          this.between(1000, 3000),
          () => (faults.tamper = (reply) => [reply.map(() => Math.floor(this.random() * 256)), reply.subarray(0, Math.floor(reply.length / 2))]),
          () => (faults.tamper = undefined),
        );
        break;
      case 'upnp-error':
        upnpFaults.inject({ kind: 'error', code: this.pick([501, 606, 718, 725, 728]) }, { action: 'AddPortMapping', times: this.between(20, 150) });
        break;
      case 'upnp-broken': {
        const fault: UpnpFault = this.pick<UpnpFault>([{ kind: 'malformed' }, { kind: 'empty' }, { kind: 'reset' }, { kind: 'oversize', bytes: 300_000 }]);
        upnpFaults.inject(fault, { times: this.between(10, 80) });
        break;
      }
      case 'reboot':
        await this.sim.reboot();
        break;
      case 'ip-change':
        this.sim.setExternalIp(`203.0.113.${this.between(1, 254)}`);
        break;
    }
    return kind;
  }

  /** Removes every fault at once. */
  clear(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const revert of this.undo.values()) revert();
    this.undo.clear();
    const faults = this.sim.pmpPcp.faults;
    faults.drop = undefined;
    faults.refuse = undefined;
    faults.delayMs = 0;
    faults.silent = false;
    faults.tamper = undefined;
    this.sim.upnp.faults.clear();
  }
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const gc = (globalThis as { gc?: () => void }).gc;
  const crashes: string[] = [];
  process.on('uncaughtException', (error) => crashes.push(`uncaughtException: ${error.stack ?? String(error)}`));
  process.on('unhandledRejection', (reason) => crashes.push(`unhandledRejection: ${String(reason)}`));

  // A clock the teardown can freeze: after that nothing expires, only deletes empty the table.
  const clock: { frozenAt?: number } = {};
  const table = new MappingTable({ capacity: args.mappings + 1024, now: () => clock.frozenAt ?? Date.now() });
  const random = seeded(args.seed);
  const sim = await startGatewaySimulator({
    table,
    // Short PCP leases as miniupnpd's min_lifetime=1; short error lifetimes (retry-after).
    pmpPcp: { pcpMinLifetimeSeconds: 1, errorLifetimeSeconds: 1, random },
  });
  const local = { localAddress: sim.address };
  const nats: Nat[] = [
    await firstValueFrom(pmp(sim.address, { ...local, port: sim.pmpPort, timeoutMs: 1000, maxConcurrentRequests: 4 })),
    await firstValueFrom(pcp(sim.address, { ...local, port: sim.pcpPort, timeoutMs: 1000, maxConcurrentRequests: 4, fallbackToPmp: false })),
    await firstValueFrom(upnp({ ...local, ssdpTargets: [sim.ssdpTarget], timeoutMs: 1000, requestTimeoutMs: 1000, maxConcurrentRequests: 4 })),
  ];
  const injector = new FaultInjector(sim, random);
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();

  const latest: MappingState[] = [];
  const statesSeen: Record<MappingStatus, number> = { mapping: 0, mapped: 0, degraded: 0, unmapped: 0 };
  let streamErrors = 0;
  let streamCompletions = 0;
  const subscriptions: Subscription[] = [];
  const mapOptions = { logger: silentLogger, retry: { initialDelayMs: 100, maxDelayMs: 2000 }, externalIpCacheMs: 5000, teardownTimeoutMs: 5000 };
  const started = performance.now();
  const elapsedSeconds = (): number => Math.round((performance.now() - started) / 100) / 10;
  const subscribe = (i: number): Subscription => {
    const nat = nats[i % nats.length] as Nat;
    const request = { protocol: i % 2 === 0 ? 'tcp' : 'udp', internalPort: 20000 + i, description: `soak ${i}`, lifetimeSeconds: args.lifetime } as const;
    return mapPort(nat, request, mapOptions).subscribe({
        next: (state) => {
          latest[i] = state;
          statesSeen[state.status]++;
        },
        error: (error: unknown) => {
          streamErrors++;
          crashes.push(`stream ${i} errored: ${String(error)}`);
        },
        complete: () => {
          streamCompletions++;
          crashes.push(`stream ${i} completed on its own`);
        },
      });
  };
  for (let i = 0; i < args.mappings; i++) subscriptions.push(subscribe(i));
  // Churn: with every fault, a few mappings are torn down (faults or not) and mapped again.
  let churned = 0;
  const churn = (): void => {
    for (let k = 0; k < Math.min(10, args.mappings); k++) {
      const i = Math.floor(random() * args.mappings);
      subscriptions[i]?.unsubscribe();
      subscriptions[i] = subscribe(i);
      churned++;
    }
  };

  const ours = (): number => table.list().filter((m) => m.internalClient === sim.address).length;
  const statusCounts = (): Partial<Record<MappingStatus, number>> => {
    const counts: Partial<Record<MappingStatus, number>> = {};
    for (const state of latest) if (state) counts[state.status] = (counts[state.status] ?? 0) + 1;
    return counts;
  };
  const byBackend = (): Sample['byBackend'] => {
    const result: Record<string, { mapped: number; held: number }> = {};
    nats.forEach((nat) => (result[nat.kind] = { mapped: 0, held: 0 }));
    latest.forEach((state, i) => {
      const kind = (nats[i % nats.length] as Nat).kind;
      if (state?.status === 'mapped') (result[kind] as { mapped: number }).mapped++;
    });
    for (const m of table.list()) if (m.internalClient === sim.address) (result[m.via] as { held: number }).held++;
    return result;
  };
  const samples: Sample[] = [];
  const sample = (): Sample => {
    // The UPnP simulator records every SOAP request without bound (test tooling, not rxnat):
    // empty that record so that it does not count as the library's memory.
    (sim.upnp.requests as unknown[]).length = 0;
    gc?.();
    const memory = process.memoryUsage();
    const s: Sample = {
      tSeconds: elapsedSeconds(),
      heapUsedMB: mb(memory.heapUsed),
      rssMB: mb(memory.rss),
      externalMB: mb(memory.external),
      statuses: statusCounts(),
      tableSize: table.list().length,
      byBackend: byBackend(),
      activeResources: process.getActiveResourcesInfo().length,
      eventLoopLagP99Ms: Math.round(lag.percentile(99) / 1e4) / 100,
    };
    lag.reset();
    samples.push(s);
    console.log(
      `[soak] t=${s.tSeconds}s heap=${s.heapUsedMB}MB rss=${s.rssMB}MB states=${JSON.stringify(s.statuses)} table=${s.tableSize} ${JSON.stringify(s.byBackend)} ` +
        `resources=${s.activeResources} lagP99=${s.eventLoopLagP99Ms}ms faults=${JSON.stringify(injector.counts)}`,
    );
    return s;
  };

  console.log(`[soak] ${args.mappings} mappings, ${args.lifetime} s leases, ${args.minutes} min of faults, seed ${args.seed}, gc ${gc ? 'on' : 'off (run with --expose-gc)'}`);
  const faultPhaseEnds = started + args.minutes * 60_000;
  // Let the mappings come up before the first sample and the first fault.
  await sleep(Math.min(10_000, args.minutes * 60_000));
  sample();
  let nextSample = performance.now() + args.sampleSeconds * 1000;
  let injected = 0;
  while (performance.now() < faultPhaseEnds) {
    const wait = Math.min(2000 + random() * 6000, Math.max(0, faultPhaseEnds - performance.now()));
    const until = performance.now() + wait;
    while (performance.now() < until) {
      await sleep(Math.min(250, until - performance.now()));
      if (performance.now() >= nextSample) {
        sample();
        nextSample += args.sampleSeconds * 1000;
      }
    }
    if (performance.now() < faultPhaseEnds) {
      await injector.inject();
      injected++;
      churn();
    }
  }
  injector.clear();
  const faultPhaseSeconds = elapsedSeconds();
  console.log(`[soak] faults over after ${faultPhaseSeconds} s (${injected} injected); settling ${args.settleSeconds} s`);
  await sleep(args.settleSeconds * 1000);
  const settled = sample();
  const mappedAtEnd = settled.statuses.mapped ?? 0;
  const notMapped = latest.map((s, i) => ({ i, status: s?.status, error: s?.error?.message })).filter((s) => s.status !== 'mapped');
  const tableBeforeTeardown = ours();

  // Teardown: freeze the gateway's clock, unsubscribe everything, wait for the deletes.
  clock.frozenAt = Date.now();
  const teardownStarted = performance.now();
  for (const subscription of subscriptions) subscription.unsubscribe();
  while (ours() > 0 && performance.now() - teardownStarted < 30_000) await sleep(100);
  const leftAfterTeardown = ours();
  const teardownMs = Math.round(performance.now() - teardownStarted);
  const leftovers = table
    .list()
    .filter((m) => m.internalClient === sim.address)
    .slice(0, 20)
    .map((m) => `${m.via} ${m.protocol}/${m.externalPort}->${m.internalPort}`);
  lag.disable();
  await sim.close();
  await sleep(500);
  const resourcesAfter = process.getActiveResourcesInfo().filter((r) => r !== 'TTYWrap');

  const heap = samples.map((s) => [s.tSeconds / 60, s.heapUsedMB] as const);
  const rss = samples.map((s) => [s.tSeconds / 60, s.rssMB] as const);
  // Skip the first sample (warm-up: JIT, caches, the mappings' first states).
  const steady = samples.length > 2 ? 1 : 0;
  const first = samples[steady] as Sample;
  const last = samples.at(-1) as Sample;
  const heapSlope = slope(heap.slice(steady));
  // Flat: the heap after the run is within 5 MB (or 10 %) of the heap after warm-up. The slope is
  // reported too, but over a short run it is mostly GC noise.
  const memoryFlat = last.heapUsedMB - first.heapUsedMB <= Math.max(5, first.heapUsedMB * 0.1);
  const result = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    args,
    gc: gc !== undefined,
    durationSeconds: elapsedSeconds(),
    faultPhaseSeconds,
    mappings: args.mappings,
    faultsInjected: injected,
    faultsByKind: injector.counts,
    churnedMappings: churned,
    memory: {
      firstSample: { tSeconds: first.tSeconds, heapUsedMB: first.heapUsedMB, rssMB: first.rssMB },
      lastSample: { tSeconds: last.tSeconds, heapUsedMB: last.heapUsedMB, rssMB: last.rssMB },
      heapSlopeMBPerMinute: Math.round(heapSlope * 1000) / 1000,
      rssSlopeMBPerMinute: Math.round(slope(rss.slice(steady)) * 1000) / 1000,
      flat: memoryFlat,
    },
    statesEmitted: statesSeen,
    mappedAtEnd,
    notMappedAtEnd: notMapped.slice(0, 20),
    tableBeforeTeardown,
    leftAfterTeardown,
    leftovers,
    teardownMs,
    resourcesAfterClose: resourcesAfter,
    simulatorCounters: { pmpPcp: sim.pmpPcp.counters, upnp: sim.upnp.counters },
    streamErrors,
    streamCompletions,
    crashes: crashes.slice(0, 20),
    crashCount: crashes.length,
    samples,
  };
  const failures = [
    !memoryFlat && `memory grew: heap ${first.heapUsedMB} -> ${last.heapUsedMB} MB, slope ${heapSlope.toFixed(3)} MB/min`,
    mappedAtEnd !== args.mappings && `${args.mappings - mappedAtEnd} mappings not mapped after settling`,
    leftAfterTeardown !== 0 && `${leftAfterTeardown} mappings left on the simulator after teardown`,
    crashes.length !== 0 && `${crashes.length} crashes / stream errors`,
  ].filter((f): f is string => typeof f === 'string');
  const summary = {
    durationSeconds: result.durationSeconds,
    mappings: args.mappings,
    faultsInjected: injected,
    churned,
    heapMB: [first.heapUsedMB, last.heapUsedMB],
    rssMB: [first.rssMB, last.rssMB],
    heapSlopeMBPerMinute: result.memory.heapSlopeMBPerMinute,
    mappedAtEnd,
    leftAfterTeardown,
    teardownMs,
    crashes: crashes.length,
    resourcesAfterClose: resourcesAfter,
  };
  console.log(`[soak] ${JSON.stringify(summary)}`);
  if (args.write) {
    const dir = new URL('./results/', import.meta.url);
    mkdirSync(dir, { recursive: true });
    const file = new URL(`soak-${result.date.replace(/:/g, '-')}.json`, dir);
    writeFileSync(file, `${JSON.stringify({ ...result, failures }, null, 2)}\n`);
    console.log(`[soak] wrote ${file.pathname}`);
  }
  for (const failure of failures) console.error(`[soak] FAIL: ${failure}`);
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
