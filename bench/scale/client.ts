/**
 * One scale scenario, in a process of its own (started with `--expose-gc` by `index.ts`): N
 * mapping streams over G simulated gateways (`sim-host.ts`, another process, loopback only).
 *
 * Phases: discover one Nat per gateway; subscribe every stream at once and wait for each
 * stream's first `mapped`; GC and measure memory; measure CPU over an idle window that ends
 * before the first renewal is due; wait until every stream renewed once (CPU again); then
 * unsubscribe everything and time until the simulators' tables are empty.
 *
 * Usage (from index.ts): node --import tsx --expose-gc bench/scale/client.ts '<json config>'
 * Reports with process.send (IPC) or, without IPC, a JSON line on stdout.
 *
 * @packageDocumentation
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { firstValueFrom, lastValueFrom, Subject, tap, type Observable, type Subscription } from 'rxjs';
import type { MappingState, Nat } from '../../src/index.js';
import { loadRxnat } from '../lib/build.js';
import { summarize } from '../lib/stats.js';
import type { ScaleScenarioResult, ScenarioConfig } from '../lib/types.js';
import type { SimReply, SimRequest } from './sim-host.js';

export type { ScenarioConfig };

const ADDRESS = '127.0.0.1';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const now = (): number => performance.now();

/** A request/response channel over a forked child's IPC (one request at a time). */
function rpc(child: ChildProcess): (request: SimRequest) => Promise<SimReply> {
  let chain: Promise<unknown> = Promise.resolve();
  return (request) => {
    const next = chain.then(
      () =>
        new Promise<SimReply>((resolve, reject) => {
          const onMessage = (reply: SimReply): void => {
            child.off('exit', onExit);
            if (reply.op === 'error') reject(new Error(reply.error));
            else resolve(reply);
          };
          const onExit = (): void => reject(new Error('simulator host exited'));
          child.once('message', onMessage);
          child.once('exit', onExit);
          child.send(request);
        }),
    );
    chain = next.catch(() => undefined);
    return next;
  };
}

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (!collect) throw new Error('run with --expose-gc');
  collect();
  collect();
}

function memory(): { heapUsed: number; rss: number } {
  gc();
  const usage = process.memoryUsage();
  return { heapUsed: usage.heapUsed, rss: usage.rss };
}

function cpuMs(from: NodeJS.CpuUsage): { user: number; system: number } {
  const used = process.cpuUsage(from);
  return { user: used.user / 1000, system: used.system / 1000 };
}

async function waitFor(condition: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> {
  const deadline = now() + timeoutMs;
  while (!condition()) {
    if (now() > deadline) return false;
    await sleep(stepMs);
  }
  return true;
}

/** What the streams reported. */
class Book {
  readonly subscribedAt: Float64Array;
  readonly mappedAt: Float64Array;
  readonly renewals: Int32Array;
  mappedCount = 0;
  renewedCount = 0;
  notMapped = 0;
  readonly errors: string[] = [];
  constructor(n: number) {
    this.subscribedAt = new Float64Array(n);
    this.mappedAt = new Float64Array(n).fill(NaN);
    this.renewals = new Int32Array(n);
  }
}

/** One stream's observer. */
class StreamObserver {
  constructor(
    private readonly i: number,
    private readonly book: Book,
  ) {}

  next(state: MappingState): void {
    const { book, i } = this;
    if (state.status === 'mapped') {
      if (Number.isNaN(book.mappedAt[i]!)) {
        book.mappedAt[i] = now();
        book.mappedCount++;
      }
      if (state.renewals > book.renewals[i]!) {
        if (book.renewals[i] === 0) book.renewedCount++;
        book.renewals[i] = state.renewals;
      }
    } else if (!Number.isNaN(book.mappedAt[i]!)) {
      book.notMapped++;
    }
  }

  error(error: unknown): void {
    this.book.errors.push(`stream ${this.i}: ${String(error)}`);
  }
}

export async function runScenario(config: ScenarioConfig): Promise<ScaleScenarioResult> {
  const started = now();
  const { mapPort, pcp, pmp } = await loadRxnat();
  const errors: string[] = [];
  const host = fork(join(import.meta.dirname, 'sim-host.ts'), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const call = rpc(host);
  try {
    const perGateway = Math.ceil(config.streams / config.gateways);
    const started_ = await call({ op: 'start', gateways: config.gateways, replyDelayMs: config.replyDelayMs, capacity: perGateway + 64, pcpMinLifetimeSeconds: 1 });
    if (started_.op !== 'started') throw new Error('simulators did not start');
    const ports = started_.ports;
    const backend = config.protocol === 'pmp' ? pmp : pcp;
    const natOptions = (port: number): { port: number; localAddress: string; maxConcurrentRequests: number } => ({
      port,
      localAddress: ADDRESS,
      maxConcurrentRequests: config.limit,
    });
    const sharedNats: Nat[] = config.nat === 'shared' ? await Promise.all(ports.map((port) => firstValueFrom(backend(ADDRESS, natOptions(port))))) : [];
    // Warm-up: a few streams mapped and deleted first, so that the per-gateway context (limiter,
    // external-address watcher, kept as long as the Nat lives) and the compiled code are in the
    // baseline: the memory figure is the marginal cost of one more mapping.
    const warmUps = Math.max(config.gateways, 50);
    await Promise.all(
      Array.from({ length: warmUps }, (_, k) => {
        const nat: Nat | Observable<Nat> = config.nat === 'shared' ? sharedNats[k % config.gateways]! : backend(ADDRESS, natOptions(ports[k % config.gateways]!));
        const stop$ = new Subject<void>();
        return lastValueFrom(
          mapPort(nat, { protocol: 'tcp', internalPort: 40000 + Math.floor(k / config.gateways), lifetimeSeconds: config.lifetimeSeconds }, { stop: stop$ }).pipe(
            tap((state) => {
              if (state.status === 'mapped') stop$.next();
            }),
          ),
        );
      }),
    );
    for (let left = -1; left !== 0; ) {
      const count = await call({ op: 'count' });
      left = count.op === 'count' ? count.mappings : 0;
      if (left !== 0) await sleep(10);
    }
    await call({ op: 'phase' }); // discovery's and the warm-up's requests are not part of the mapping phase

    // Per-stream bookkeeping, allocated before the memory baseline; one small observer object
    // per stream (no closures: what is measured is rxnat's share).
    const n = config.streams;
    const book = new Book(n);
    const subscriptions: Subscription[] = new Array<Subscription>(n);

    const baseline = memory();
    const activeBefore = process.getActiveResourcesInfo().length;

    const t0 = now();
    for (let i = 0; i < n; i++) {
      const gateway = i % config.gateways;
      const internalPort = 20000 + Math.floor(i / config.gateways);
      const nat: Nat | Observable<Nat> = config.nat === 'shared' ? sharedNats[gateway]! : backend(ADDRESS, natOptions(ports[gateway]!));
      book.subscribedAt[i] = now();
      subscriptions[i] = mapPort(nat, { protocol: 'udp', internalPort, lifetimeSeconds: config.lifetimeSeconds }).subscribe(new StreamObserver(i, book));
    }
    const allMapped = await waitFor(() => book.mappedCount === n, 120_000);
    const timeToAllMappedMs = now() - t0;
    if (!allMapped) errors.push(`only ${book.mappedCount} of ${n} streams mapped within 120 s`);
    const mappingPhase = await call({ op: 'phase' });
    const perStream = Array.from({ length: n }, (_, i) => book.mappedAt[i]! - book.subscribedAt[i]!);
    const mapped = memory();

    let idle: ScaleScenarioResult['idle'] = null;
    let renewalPhase: ScaleScenarioResult['renewals'] = { phaseMs: 0, allRenewed: false, renewalsTotal: 0, cpuPercent: 0, cpuPerRenewalUs: 0, notMappedStates: book.notMapped };
    let idlePhase: SimReply | undefined;
    if (config.phases === 'full') {
      // The first renewal is due a third of the lease after the earliest grant.
      let earliest = Infinity;
      for (let i = 0; i < n; i++) if (book.mappedAt[i]! < earliest) earliest = book.mappedAt[i]!;
      const firstRenewal = earliest + (config.lifetimeSeconds * 1000) / 3;
      // Start a second after the GCs of the memory measurement (their background sweeping is not idle work).
      const windowStart = now() + 1000;
      const windowEnd = firstRenewal - 150;
      if (windowEnd - windowStart >= 300) {
        await sleep(windowStart - now());
        await call({ op: 'phase' });
        let gcMs = 0;
        let gcs = 0;
        const observer = new PerformanceObserver((list) => {
          for (const entry of list.getEntries()) {
            gcMs += entry.duration;
            gcs++;
          }
        });
        observer.observe({ entryTypes: ['gc'] });
        const cpu0 = process.cpuUsage();
        const w0 = now();
        await sleep(windowEnd - now());
        const used = cpuMs(cpu0);
        const windowMs = now() - w0;
        observer.disconnect();
        const during = await call({ op: 'phase' });
        idle = {
          windowMs,
          cpuUserMs: used.user,
          cpuSystemMs: used.system,
          cpuPercent: ((used.user + used.system) / windowMs) * 100,
          requests: during.op === 'phase' ? during.requests : -1,
          gcMs,
          gcs,
        };
      } else {
        errors.push(`no idle window: mapping took too long for a ${config.lifetimeSeconds} s lease`);
      }
      const cpu1 = process.cpuUsage();
      const r0 = now();
      const allRenewed = await waitFor(() => book.renewedCount === n, (config.lifetimeSeconds * 1000) / 3 + timeToAllMappedMs + 15_000, 20);
      const used = cpuMs(cpu1);
      const phaseMs = now() - r0;
      const renewalsTotal = book.renewals.reduce((sum, r) => sum + r, 0);
      if (!allRenewed) errors.push(`only ${book.renewedCount} of ${n} streams renewed`);
      renewalPhase = {
        phaseMs,
        allRenewed,
        renewalsTotal,
        cpuPercent: ((used.user + used.system) / phaseMs) * 100,
        cpuPerRenewalUs: renewalsTotal > 0 ? ((used.user + used.system) * 1000) / renewalsTotal : 0,
        notMappedStates: book.notMapped,
      };
      idlePhase = await call({ op: 'phase' });
    }

    // Teardown: unsubscribe everything; the simulators' tables must empty.
    const d0 = now();
    for (const subscription of subscriptions) subscription.unsubscribe();
    errors.push(...book.errors);
    let left = -1;
    const deadline = d0 + 30_000;
    for (;;) {
      const count = await call({ op: 'count' });
      left = count.op === 'count' ? count.mappings : -1;
      if (left === 0 || now() > deadline) break;
      await sleep(5);
    }
    const timeToEmptyMs = now() - d0;
    if (left !== 0) errors.push(`${left} mappings left on the simulators 30 s after teardown`);
    await sleep(300);
    const teardownPhase = await call({ op: 'phase' });
    const activeAfter = process.getActiveResourcesInfo().length;

    const peaksOf = (reply: SimReply | undefined): number[] => (reply?.op === 'phase' ? reply.peaks : []);
    const max = (values: number[]): number => values.reduce((m, v) => Math.max(m, v), 0);
    const perGatewayPeaks = ports.map((_, g) => Math.max(peaksOf(mappingPhase)[g] ?? 0, peaksOf(idlePhase)[g] ?? 0, peaksOf(teardownPhase)[g] ?? 0));
    const byKind: Record<string, number> = {};
    let retransmissions = 0;
    for (const reply of [mappingPhase, idlePhase, teardownPhase]) {
      if (reply?.op !== 'phase') continue;
      retransmissions += reply.retransmissions;
      for (const [kind, count] of Object.entries(reply.byKind)) byKind[kind] = (byKind[kind] ?? 0) + count;
    }
    return {
      name: config.name,
      streams: n,
      gateways: config.gateways,
      protocol: config.protocol,
      lifetimeSeconds: config.lifetimeSeconds,
      limit: config.limit,
      replyDelayMs: config.replyDelayMs,
      nat: config.nat,
      timeToAllMappedMs,
      perStreamMappedMs: summarize(perStream.filter((v) => Number.isFinite(v))) ?? null,
      peakInFlight: {
        mapping: max(peaksOf(mappingPhase)),
        idleAndRenewals: max(peaksOf(idlePhase)),
        teardown: max(peaksOf(teardownPhase)),
        overall: max(perGatewayPeaks),
      },
      peakInFlightPerGateway: perGatewayPeaks,
      memory: {
        baseline,
        mapped,
        heapPerMappingBytes: (mapped.heapUsed - baseline.heapUsed) / n,
        rssPerMappingBytes: (mapped.rss - baseline.rss) / n,
      },
      idle,
      renewals: renewalPhase,
      teardown: { timeToEmptyMs, leftOnSimulators: left, deleteRequests: teardownPhase.op === 'phase' ? teardownPhase.deletes : -1 },
      requestsByKind: byKind,
      retransmissions,
      activeResources: { before: activeBefore, after: activeAfter },
      errors,
      durationMs: now() - started,
    };
  } finally {
    await call({ op: 'close' }).catch(() => undefined);
    if (host.exitCode === null) host.kill('SIGKILL');
  }
}

// Run as a script: the config is the first argument.
if (process.argv[2] !== undefined && import.meta.filename === process.argv[1]) {
  const config = JSON.parse(process.argv[2]) as ScenarioConfig;
  runScenario(config).then(
    (result) => {
      if (process.send) process.send({ ok: true, result }, () => process.exit(0));
      else {
        console.log(JSON.stringify(result));
        process.exit(0);
      }
    },
    (error: unknown) => {
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      if (process.send) process.send({ ok: false, error: message }, () => process.exit(1));
      else {
        console.error(message);
        process.exit(1);
      }
    },
  );
}
