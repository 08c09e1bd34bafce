/**
 * Short-lease soak: N mappings with short leases (3 s: renewed every second) held for a window
 * of minutes, on the simulator's UPnP IGD or its PCP server. Does a stream that reads `mapped`
 * (or `degraded`) always have its mapping on the router?
 *
 * One gateway simulator on 127.0.0.1 in this process, so that each second the router's table
 * (`sim.table.list()`: expired entries are dropped as it is read) and the latest state of every
 * stream are read at the same instant. A lie: a stream whose latest state is `mapped` or
 * `degraded` while the table holds no unexpired entry of that protocol (upnp/pcp) on its
 * protocol/external port forwarding to its internal port. A mapping the router lost must read
 * `unmapped` (or `mapping`).
 *
 * Samples are taken from the subscribe on (ramp), and the window of `windowSeconds` starts once
 * every stream was `mapped` once (or after the ramp bound). Lies count in both. The Nat is made
 * with the backend's defaults (loopback addresses aside); mapPort with its defaults and a `stop`.
 *
 * During the window the gateway cannot keep up (`soak-faults.ts`): UPnP answers every
 * AddPortMapping late, PCP falls silent for longer than a lease, so leases do lapse on the
 * router and the states must say so. A stream still reading `mapped` less than `lieGraceMs`
 * after its entry expired is not a lie (counted apart). The table itself cannot say what lapsed
 * when (it drops expired entries on every request), so the bench keeps a ledger of every entry
 * the router made, with its expiry, until the router deletes it. Each sample also records the
 * event loop's largest delay since the previous one: a timer can fire no earlier than the loop
 * lets it, and a lie in a sample whose loop ran late is told apart from one whose loop was on time.
 *
 * @packageDocumentation
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { firstValueFrom, Subject, type Subscription } from 'rxjs';
import type { MappingState, MappingStatus, Nat } from '../../src/index.js';
import type { SimulatedMapping } from '../../src/testing/index.js';
import { loadRxnat, loadRxnatTesting } from '../lib/build.js';
import { median } from '../lib/stats.js';
import type { SoakConfig, SoakRunResult, SoakSample } from '../lib/types.js';
import { ADDRESS, BASE_PORT, counterDelta, errorText, closeAll, now, sleep, waitFor } from './common.js';
import { silencePhases, type FaultySoakConfig, type FaultySoakSample, type SoakRunFaults } from './soak-faults.js';

/** What the child reports; the parent adds how the child exited. */
export type SoakRun = Omit<SoakRunResult, 'exitedOnItsOwn' | 'samples' | 'rampSamples'> &
  SoakRunFaults & { readonly samples: readonly FaultySoakSample[]; readonly rampSamples: readonly FaultySoakSample[] };

const SAMPLE_MS = 1000;

export async function runShortLeaseSoak(config: FaultySoakConfig): Promise<SoakRun> {
  const started = now();
  const { mapPort, pcp, upnp } = await loadRxnat();
  const { MappingTable, startGatewaySimulator } = await loadRxnatTesting();
  const errors: string[] = [];
  const n = config.mappings;
  const side = config.protocol;
  const { faults } = config;
  if (faults.upnpAddDelayMs !== undefined && side !== 'upnp') throw new Error('upnpAddDelayMs is a UPnP fault');
  if (faults.pcpSilence !== undefined && side !== 'pcp') throw new Error('pcpSilence is a PCP fault');
  const sim = await startGatewaySimulator({
    address: ADDRESS,
    table: new MappingTable({ capacity: n + 64 }),
    // Short PCP leases, as miniupnpd's min_lifetime=1; a small request log (the log is test tooling).
    pmpPcp: { pcpMinLifetimeSeconds: 1, logSize: 16 },
  });
  const subscriptions: Subscription[] = [];
  const ledger = new Map<string, SimulatedMapping>();
  const lag = monitorEventLoopDelay({ resolution: 10 });
  const sampleLag = monitorEventLoopDelay({ resolution: 10 });
  const faultTimers = new Set<NodeJS.Timeout>();
  const endFaults = (): void => {
    for (const timer of faultTimers) clearTimeout(timer);
    faultTimers.clear();
    sim.upnp.faults.clear();
    sim.pmpPcp.faults.silent = false;
  };
  try {
    const nat: Nat =
      side === 'upnp'
        ? await firstValueFrom(upnp({ descriptionUrl: sim.descriptionUrl, localAddress: ADDRESS }))
        : await firstValueFrom(pcp(sim.address, { port: sim.pcpPort, localAddress: ADDRESS }));
    if (nat.kind !== side) throw new Error(`expected a ${side} Nat, got ${nat.kind}`);
    const requests = (): Record<string, number> =>
      side === 'upnp' ? { ...sim.upnp.counters } : Object.fromEntries(Object.entries(sim.pmpPcp.counters.byKind).filter(([, v]) => v > 0));
    const requestsAtStart = requests();

    const stop$ = new Subject<void>();
    const latest: (MappingState | undefined)[] = new Array<MappingState | undefined>(n);
    // When each stream's latest state arrived (for the liars' details).
    const latestAt = new Float64Array(n);
    // RXNAT_SOAK_TRACE=1: the last lines of each stream's log and of the router's adds for its
    // port, given with a liar (diagnosis only: it costs a closure per log line).
    const trace = process.env.RXNAT_SOAK_TRACE === '1' ? Array.from({ length: n }, () => [] as string[]) : null;
    const note = (i: number, line: string): void => {
      if (!trace || i < 0 || i >= n) return;
      const lines = trace[i]!;
      lines.push(`${(now() - t0).toFixed(1)} ${line}`);
      if (lines.length > 24) lines.shift();
    };
    // Every entry the router made, with its expiry, until it is deleted (not when it lapses).
    const add = sim.table.add.bind(sim.table);
    sim.table.add = (request) => {
      const result = add(request);
      if (result.ok) ledger.set(`${result.mapping.protocol}/${result.mapping.externalPort}`, result.mapping);
      note(request.internalPort - BASE_PORT, `router add ${request.externalPort} → ${result.ok ? `expires in ${Math.round(result.mapping.expiresAtMs - Date.now())} ms` : result.reason}`);
      return result;
    };
    const remove = sim.table.delete.bind(sim.table);
    sim.table.delete = (protocol, externalPort) => {
      ledger.delete(`${protocol}/${externalPort}`);
      return remove(protocol, externalPort);
    };
    const seenMapped = new Uint8Array(n);
    const lied = new Uint8Array(n);
    let mappedOnce = 0;
    let allMappedAt = NaN;
    let completed = 0;
    let stopped = false;
    const t0 = now();
    sampleLag.enable();
    for (let i = 0; i < n; i++) {
      const request = { protocol: 'udp', internalPort: BASE_PORT + i, description: `rxnat bench soak ${i}`, lifetimeSeconds: config.lifetimeSeconds } as const;
      subscriptions.push(
        mapPort(nat, request, { stop: stop$, ...(trace ? { logger: { debug: (_ns: string, message: string) => note(i, message) } } : {}) }).subscribe({
          next: (state) => {
            latest[i] = state;
            latestAt[i] = now();
            note(i, `state ${state.status}${state.error ? ` (${state.error.message})` : ''}`);
            if (state.status === 'mapped' && seenMapped[i] === 0) {
              seenMapped[i] = 1;
              if (++mappedOnce === n) allMappedAt = now();
            }
          },
          error: (error: unknown) => errors.push(`stream ${i} errored: ${errorText(error)}`),
          complete: () => {
            completed++;
            if (!stopped) errors.push(`stream ${i} completed on its own`);
          },
        }),
      );
    }

    /** One synchronous look at the router's table and every stream's latest state. */
    const sample = (): FaultySoakSample => {
      // What the router holds now, then that plus what it let lapse less than `lieGraceMs` ago
      // (from the ledger: the table drops an expired entry on any request, so it cannot say).
      const held = sim.table.list();
      const strict = compareWithTable(held, side, latest);
      const graceFrom = Date.now() - config.lieGraceMs;
      const lapsed = [...ledger.values()].filter((m) => m.expiresAtMs > graceFrom && m.expiresAtMs <= Date.now());
      const liars: number[] = [];
      const lenient = compareWithTable([...held, ...lapsed], side, latest, lied, liars);
      // How late the event loop ran since the last sample: a lie the shell's timers could not
      // have prevented (they fire no earlier than the loop lets them) shows a delay above the grace.
      const loopDelayMaxMs = Math.round(sampleLag.max / 1e5) / 10;
      sampleLag.reset();
      const at = now();
      // The UPnP simulator records every SOAP request without bound (test tooling, not rxnat).
      (sim.upnp.requests as unknown[]).length = 0;
      return {
        t: Math.round((now() - t0) / 100) / 10,
        ...lenient,
        table: strict.table,
        withinGrace: strict.lies - lenient.lies,
        silent: sim.pmpPcp.faults.silent,
        loopDelayMaxMs,
        liars: liars.slice(0, 5).map((i) => ({
          internalPort: BASE_PORT + i,
          status: latest[i]!.status,
          externalPort: latest[i]!.externalPort,
          renewals: latest[i]!.renewals,
          stateAgeMs: Math.round(at - latestAt[i]!),
          ...(trace ? { trace: trace[i]!.slice() } : {}),
        })),
      };
    };

    /** Starts the window's faults: the UPnP delay at once, the PCP silences on their schedule. */
    const silentPhases: { from: number; to: number }[] = [];
    const startFaults = (): void => {
      if (faults.upnpAddDelayMs !== undefined) {
        sim.upnp.faults.inject({ kind: 'delay', ms: faults.upnpAddDelayMs }, { action: 'AddPortMapping', times: Infinity });
      }
      const windowAt = now();
      const at = (ms: number, action: () => void): void => {
        const timer = setTimeout(() => {
          faultTimers.delete(timer);
          action();
        }, Math.max(0, windowAt + ms - now()));
        faultTimers.add(timer);
      };
      const since = (): number => Math.round((now() - t0) / 100) / 10;
      for (const phase of silencePhases(faults, config.windowSeconds)) {
        at(phase.startMs, () => {
          sim.pmpPcp.faults.silent = true;
          silentPhases.push({ from: since(), to: NaN });
        });
        at(phase.endMs, () => {
          sim.pmpPcp.faults.silent = false;
          silentPhases[silentPhases.length - 1]!.to = since();
        });
      }
    };

    const rampSamples: FaultySoakSample[] = [];
    const samples: FaultySoakSample[] = [];
    let timeToAllMappedMs: number | null = null;
    let windowStarted = NaN;
    let windowRequests: Record<string, number> = {};
    let cpu = process.cpuUsage();
    for (let k = 1; ; k++) {
      await sleep(t0 + k * SAMPLE_MS - now());
      const s = sample();
      if (Number.isNaN(windowStarted)) {
        rampSamples.push(s);
        const all = mappedOnce === n;
        if (all || now() - t0 >= config.rampBoundMs) {
          if (all) timeToAllMappedMs = allMappedAt - t0;
          else errors.push(`only ${mappedOnce} of ${n} streams mapped within ${Math.round(config.rampBoundMs / 1000)} s; window started anyway`);
          windowStarted = now();
          windowRequests = requests();
          cpu = process.cpuUsage();
          lag.enable();
          startFaults();
        }
      } else {
        samples.push(s);
        if (samples.length >= config.windowSeconds) break;
      }
    }
    const windowMs = now() - windowStarted;
    const used = process.cpuUsage(cpu);
    lag.disable();
    sampleLag.disable();
    // The gateway answers at once again for the teardown; a silence cut short ends here.
    endFaults();
    const open = silentPhases[silentPhases.length - 1];
    if (open && Number.isNaN(open.to)) open.to = Math.round((now() - t0) / 100) / 10;
    const windowByKind = counterDelta(requests(), windowRequests);
    const windowTotal = Object.values(windowByKind).reduce((sum, v) => sum + v, 0);

    const grantedLifetimes: Record<string, number> = {};
    for (const state of latest) {
      if (state?.status !== 'mapped') continue;
      const key = String(state.lifetimeSeconds);
      grantedLifetimes[key] = (grantedLifetimes[key] ?? 0) + 1;
    }

    // Teardown: a graceful stop, every stream must complete.
    stopped = true;
    const d0 = now();
    stop$.next();
    await waitFor(() => completed === n, 60_000, 5);
    const teardownMs = now() - d0;
    const leftOnGateway = sim.table.list().filter((m) => m.via === side).length;
    if (completed !== n) errors.push(`only ${completed} of ${n} streams completed within 60 s of the stop`);

    const all = [...rampSamples, ...samples];
    const withLies = all.filter((s) => s.lies > 0);
    const withinGrace = all.filter((s) => s.withinGrace > 0);
    const mappedCounts = samples.map((s) => s.mapped);
    return {
      ...config,
      maxConcurrentRequests: nat.maxConcurrentRequests ?? 1,
      timeToAllMappedMs,
      rampSamples,
      samples,
      lies: {
        max: all.reduce((m, s) => Math.max(m, s.lies), 0),
        total: all.reduce((sum, s) => sum + s.lies, 0),
        samplesWithLies: withLies.length,
        samples: all.length,
        streams: lied.reduce((sum, v) => sum + v, 0),
        firstAtSeconds: withLies[0]?.t ?? null,
        samplesWithLiesOnTime: withLies.filter((s) => s.loopDelayMaxMs <= config.lieGraceMs).length,
      },
      mappedPerSample: mappedCounts.length > 0 ? { min: Math.min(...mappedCounts), median: median(mappedCounts), max: Math.max(...mappedCounts) } : null,
      grantedLifetimes,
      windowRequests: { total: windowTotal, perSecond: windowTotal / (windowMs / 1000), byKind: windowByKind },
      requestsByKind: counterDelta(requests(), requestsAtStart),
      cpuPercent: ((used.user + used.system) / 1000 / windowMs) * 100,
      eventLoopDelayMs: { p99: lag.percentile(99) / 1e6, max: lag.max / 1e6 },
      teardown: { ms: teardownMs, completed, leftOnGateway },
      faults,
      lieGraceMs: config.lieGraceMs,
      silentPhases,
      withinGrace: { max: withinGrace.reduce((m, s) => Math.max(m, s.withinGrace), 0), samples: withinGrace.length },
      errors,
      activeResourcesAfter: await closeAll(subscriptions, sim),
      durationMs: now() - started,
    };
  } catch (error) {
    lag.disable();
    sampleLag.disable();
    endFaults();
    await closeAll(subscriptions, sim);
    throw error;
  }
}

/**
 * One synchronous look at the router's table (`entries`: unexpired, as `MappingTable.list()`
 * gives them) against every stream's latest state: counts by status, and the lies (a stream
 * reading `mapped`/`degraded` while no entry of protocol `side` on its protocol/external port
 * forwards to its internal port). Marks the liars in `lied`.
 */
export function compareWithTable(
  entries: Iterable<Pick<SimulatedMapping, 'via' | 'protocol' | 'externalPort' | 'internalPort'>>,
  side: SoakConfig['protocol'],
  latest: readonly (MappingState | undefined)[],
  lied?: Uint8Array,
  liars?: number[],
): Omit<SoakSample, 't'> {
  const held = new Map<string, number>();
  let table = 0;
  for (const m of entries) {
    if (m.via !== side) continue;
    table++;
    held.set(`${m.protocol}/${m.externalPort}`, m.internalPort);
  }
  const counts: Record<MappingStatus, number> = { mapping: 0, mapped: 0, degraded: 0, unmapped: 0 };
  let lies = 0;
  let liesDegraded = 0;
  latest.forEach((state, i) => {
    if (!state) return;
    counts[state.status]++;
    if (state.status !== 'mapped' && state.status !== 'degraded') return;
    if (held.get(`${state.protocol}/${state.externalPort}`) === state.internalPort) return;
    lies++;
    if (state.status === 'degraded') liesDegraded++;
    if (lied) lied[i] = 1;
    liars?.push(i);
  });
  return { ...counts, lies, liesDegraded, table };
}
