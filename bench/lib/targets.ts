/**
 * The issue's targets, checked against a results file.
 *
 * @packageDocumentation
 */
import { bootstrapRatioOfMedians, median, pairedMedianRatio } from './stats.js';
import { shortSoakFaults, soakRunFaults, soakWindowFigures } from '../states/soak-faults.js';
import type { LabGateway } from '../latency/contestants.js';
import type { BenchResults, LatencyContestantResult, ScaleScenarioResult, SoakRunResult, StartupContestantResult } from './types.js';

/** One target, as measured. `met` is `null` when it could not be decided (a side is missing). */
export interface TargetCheck {
  readonly section: 'latency' | 'startup' | 'scale' | 'teardown' | 'soak-short';
  /** How `value` and `limit` read: a ratio (`x`), milliseconds, or a plain number (default). */
  readonly unit?: 'x' | 'ms';
  readonly target: string;
  /** What was measured, in words (medians, values). */
  readonly measured: string;
  /** The measured ratio or value compared with `limit`. */
  readonly value: number | null;
  readonly limit: number;
  /** `max`: value must be <= limit. */
  readonly kind: 'max';
  readonly met: boolean | null;
  readonly note: string;
  /** Latency ratios: 90% bootstrap interval of the ratio of medians. */
  readonly ci90?: readonly [number, number];
  /** Latency ratios: median of the per-round ratios (each run next to the other's run of the same round). */
  readonly paired?: number;
}

const ms = (value: number): string => (value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2));

/** The contestant `id` on `gateway` with at least one sample, if any. */
export function contestant(results: BenchResults, id: string, gateway: LabGateway = 'igdv2'): LatencyContestantResult | undefined {
  return results.latency?.contestants.find((c) => c.id === id && c.gateway === gateway);
}

function medianOf(c: LatencyContestantResult | undefined): number | null {
  return c?.summary ? c.summary.median : null;
}

function failureText(c: LatencyContestantResult | undefined): string {
  if (!c) return 'not run';
  const first = c.failures[0];
  return first ? `failed ${c.failures.length}/${c.failures.length + c.samplesMs.length + (c.warmupMs !== null ? 1 : 0)}: ${first.error}` : 'no samples';
}

function ratioCheck(target: string, a: LatencyContestantResult | undefined, b: LatencyContestantResult | undefined, limit: number, note: string): TargetCheck {
  const ma = medianOf(a);
  const mb = medianOf(b);
  if (ma === null || mb === null) {
    return {
      section: 'latency',
      target,
      measured: ma === null ? `${a?.label ?? 'rxnat'}: ${failureText(a)}` : `${b?.label ?? 'reference'}: ${failureText(b)}`,
      value: null,
      limit,
      kind: 'max',
      met: null,
      note,
    };
  }
  const value = ma / mb;
  const ci90 = bootstrapRatioOfMedians(a!.samplesMs, b!.samplesMs);
  const paired = pairedMedianRatio(a!.samplesMs, a!.samplesRound ?? [], b!.samplesMs, b!.samplesRound ?? []);
  return {
    section: 'latency',
    target,
    measured: `${ms(ma)} ms / ${ms(mb)} ms (medians)`,
    value,
    limit,
    kind: 'max',
    met: value <= limit,
    note,
    ...(ci90 ? { ci90 } : {}),
    ...(paired !== undefined ? { paired } : {}),
  };
}

/**
 * #11 item 5: the race against the fastest single backend (a router with PCP and NAT-PMP, and a
 * UPnP-only one), and UPnP via SSDP against the bare floor on IGDv2 and IGDv1.
 */
function raceAndSsdpChecks(c: (id: string, gateway?: LabGateway) => LatencyContestantResult | undefined): TargetCheck[] {
  const checks: TargetCheck[] = [];
  const singles = ['rxnat.pmp', 'rxnat.pcp', 'rxnat.upnp.ssdp'].map((id) => c(id)).filter((x): x is LatencyContestantResult => medianOf(x) !== null);
  const fastest = singles.sort((a, b) => medianOf(a)! - medianOf(b)!)[0];
  const atOnce = medianOf(c('rxnat.discover.at-once'));
  const before = atOnce !== null && medianOf(fastest) !== null ? `; every probe at once (the old schedule) ${(atOnce / medianOf(fastest)!).toFixed(2)}x in this run` : '';
  checks.push(
    ratioCheck(
      'rxnat discoverNat() within 1.2x of the fastest single backend',
      c('rxnat.discover'),
      fastest,
      1.2,
      `miniupnpd with PCP and NAT-PMP on; fastest single backend: ${fastest?.label ?? 'none'}${before}`,
    ),
  );
  const onlyAtOnce = medianOf(c('rxnat.discover.at-once', 'upnp-only'));
  const onlyUpnp = medianOf(c('rxnat.upnp.ssdp', 'upnp-only'));
  checks.push(
    ratioCheck(
      'rxnat discoverNat() on a UPnP-only router within 1.1x of rxnat upnp() alone',
      c('rxnat.discover', 'upnp-only'),
      c('rxnat.upnp.ssdp', 'upnp-only'),
      1.1,
      `miniupnpd with enable_natpmp=no (PCP and NAT-PMP: port unreachable)${onlyAtOnce !== null && onlyUpnp !== null ? `; every probe at once ${(onlyAtOnce / onlyUpnp).toFixed(2)}x in this run` : ''}`,
    ),
  );
  // The SSDP part alone: via SSDP minus with the description URL known, rxnat's and the floor's.
  const ssdpPart = (gateway: LabGateway): string => {
    const [ours, oursUrl, floor, floorUrl] = ['rxnat.upnp.ssdp', 'rxnat.upnp.url', 'floor.upnp', 'floor.upnp.url'].map((id) => medianOf(c(id, gateway)));
    if (ours == null || oursUrl == null || floor == null || floorUrl == null) return '';
    return `; SSDP part (via SSDP minus URL known): rxnat ${ms(ours - oursUrl)} ms, floor ${ms(floor - floorUrl)} ms; with the URL known: rxnat ${ms(oursUrl)} ms, floor ${ms(floorUrl)} ms`;
  };
  for (const gateway of ['igdv2', 'igdv1'] as const) {
    checks.push(
      ratioCheck(
        `rxnat upnp() via SSDP within 1.2x of the bare UPnP floor [${gateway === 'igdv1' ? 'IGDv1' : 'IGDv2'} router]`,
        c('rxnat.upnp.ssdp', gateway),
        c('floor.upnp', gateway),
        1.2,
        `floor: one unicast M-SEARCH, one description GET, one AddPortMapping on a bare socket; rxnat also asks GetExternalIPAddress (the address its mapped state carries)${ssdpPart(gateway)}`,
      ),
    );
  }
  return checks;
}

function latencyChecks(results: BenchResults): TargetCheck[] {
  if (!results.latency || results.latency.skipped !== null) return [];
  const c = (id: string, gateway: LabGateway = 'igdv2'): LatencyContestantResult | undefined => contestant(results, id, gateway);
  const checks: TargetCheck[] = [
    ratioCheck('rxnat pmp() within 1.2x of the bare NAT-PMP floor', c('rxnat.pmp'), c('floor.pmp'), 1.2, 'in process, subscribe to first `mapped`'),
    ratioCheck('rxnat pcp() within 1.2x of the bare PCP floor', c('rxnat.pcp'), c('floor.pcp'), 1.2, 'in process, subscribe to first `mapped`'),
    ratioCheck('rxnat upnp() via SSDP <= 0.1x of `upnpc -i -a`', c('rxnat.upnp.ssdp'), c('proc.upnpc.i'), 0.1, 'rxnat in process vs upnpc whole process'),
    ratioCheck(
      'rxnat map --nat upnp (whole process) <= 0.1x of `upnpc -i -a`',
      c('proc.rxnat.upnp.ssdp'),
      c('proc.upnpc.i'),
      0.1,
      `both whole processes (stricter reading: includes node start-up${medianOf(c('proc.node')) !== null ? `, ${ms(medianOf(c('proc.node'))!)} ms for \`node -e 0\` alone` : ''} and loading rxjs)`,
    ),
  ];
  const peers: Array<[string, string, LabGateway]> = [
    ['peer.nat-port-mapper.upnp.ssdp', 'rxnat.upnp.ssdp', 'igdv2'],
    ['peer.nat-api.upnp', 'rxnat.upnp.ssdp', 'igdv2'],
    ['peer.nat-upnp', 'rxnat.upnp.ssdp', 'igdv2'],
    ['peer.nat-upnp', 'rxnat.upnp.ssdp', 'igdv1'],
    ['peer.nat-api.upnp', 'rxnat.upnp.ssdp', 'igdv1'],
    ['peer.nat-port-mapper.upnp.url', 'rxnat.upnp.url', 'igdv2'],
  ];
  for (const [peerId, ourId, gateway] of peers) {
    const peer = c(peerId, gateway);
    if (!peer) continue;
    const ours = c(ourId, gateway);
    const path = ourId === 'rxnat.upnp.url' ? 'description URL' : 'SSDP';
    const floor = c('floor.upnp', gateway);
    const bound =
      path === 'SSDP' && medianOf(floor) !== null && medianOf(peer) !== null
        ? `; the bare floor is ${(medianOf(floor)! / medianOf(peer)!).toFixed(2)}x of this peer: the best any client could reach on this router`
        : '';
    const check = ratioCheck(
      `rxnat upnp() (${path}) <= 0.5x of ${peer.label}${gateway === 'igdv1' ? ' [IGDv1 router]' : ''}`,
      ours,
      peer,
      0.5,
      `${gateway === 'igdv1' ? 'router forced to IGDv1 (all nat-upnp can use); rxnat on the same router' : 'same router (IGDv2)'}${bound}`,
    );
    // A peer that cannot map at all is beaten by any working client: say so instead of "undecided".
    if (check.met === null && medianOf(ours) !== null && medianOf(peer) === null) {
      checks.push({ ...check, met: true, note: `${check.note}; the peer cannot map on this router, rxnat can (${ms(medianOf(ours)!)} ms)` });
    } else {
      checks.push(check);
    }
  }
  checks.push(...raceAndSsdpChecks(c));
  return checks;
}

function scaleChecks(results: BenchResults): TargetCheck[] {
  if (!results.scale || results.scale.skipped !== null) return [];
  const checks: TargetCheck[] = [];
  const check = (s: ScaleScenarioResult, target: string, measured: string, value: number | null, limit: number, note = ''): TargetCheck => ({
    section: 'scale',
    target: `${s.name}: ${target}`,
    measured,
    value,
    limit,
    kind: 'max',
    met: value === null ? null : value <= limit,
    note,
  });
  for (const s of results.scale.scenarios) {
    if (s.nat !== 'shared') continue;
    checks.push(check(s, 'heap per mapping < 10 KB', `${s.memory.heapPerMappingBytes.toFixed(0)} B (after GC)`, s.memory.heapPerMappingBytes, 10_000));
    checks.push(
      check(s, 'RSS per mapping < 10 KB', `${s.memory.rssPerMappingBytes.toFixed(0)} B (after GC)`, s.memory.rssPerMappingBytes, 10_000, 'RSS keeps the heap pages V8 grew into; heap is the live data'),
    );
    checks.push(
      check(
        s,
        'idle CPU near zero (<= 1% of a core)',
        s.idle ? `${s.idle.cpuPercent.toFixed(3)} % over ${(s.idle.windowMs / 1000).toFixed(1)} s, ${s.idle.requests} requests` : 'no idle window',
        s.idle ? s.idle.cpuPercent : null,
        1,
      ),
    );
    checks.push(check(s, `peak requests in flight per gateway <= limit (${s.limit})`, `${s.peakInFlight.overall}`, s.peakInFlight.overall, s.limit, 'counted at the simulator'));
    checks.push(check(s, 'mappings left on the simulators after teardown = 0', `${s.teardown.leftOnSimulators}`, s.teardown.leftOnSimulators, 0));
    if (s.streams <= 1000) checks.push(check(s, 'teardown < 5 s', `${(s.teardown.timeToEmptyMs / 1000).toFixed(2)} s`, s.teardown.timeToEmptyMs / 1000, 5));
  }
  return checks;
}

/** Bulk teardown: nothing left when the streams say they are done, and done about as fast as the gateway allows. */
function teardownChecks(results: BenchResults): TargetCheck[] {
  const t = results.teardown;
  if (!t || t.skipped !== null) return [];
  const name = `bulk teardown (${t.mappings.toLocaleString('en-US')} UPnP, ${t.deleteDelayMs} ms per delete)`;
  const all = t.completed === t.mappings;
  const serial = `${(t.serialDeleteMs / 1000).toFixed(0)} s`;
  return [
    {
      section: 'teardown',
      target: `${name}: mappings left on the gateway when every stream has completed = 0`,
      measured: `${t.leftAtCompletion} left${all ? '' : ` (${t.completed}/${t.mappings} completed within the bound)`}; ${t.lastStates.withError} last states with an error`,
      value: t.leftAtCompletion,
      limit: 0,
      kind: 'max',
      met: t.leftAtCompletion === 0 && all,
      note: `read from the simulator's table the instant the last stream completed; ${t.leftAfterGrace} left ${t.graceMs / 1000} s later; ${t.deleteRequests} deletes received`,
    },
    {
      section: 'teardown',
      target: `${name}: stop to all completed <= 1.2x the gateway's serial time (${serial})`,
      measured: `${(t.stopToCompletedMs / 1000).toFixed(2)} s${all ? '' : ` and only ${t.completed}/${t.mappings} completed`}`,
      value: t.ratioToSerial,
      limit: 1.2,
      kind: 'max',
      met: all && t.ratioToSerial <= 1.2,
      note: `serial time = ${t.mappings} x ${t.deleteDelayMs} ms; maxConcurrentRequests ${t.maxConcurrentRequests} (the backend's default)${
        all && t.leftAtCompletion > 0 ? '; fast only because deletes were abandoned' : ''
      }`,
    },
  ];
}

/**
 * Short-lease soak: no stream reads `mapped`/`degraded` while the router holds nothing for it.
 * Undecided (`null`) without lies when the router never lost a mapping in the window: such a run
 * (a gateway that keeps up) cannot show a lie.
 */
function soakChecks(results: BenchResults): TargetCheck[] {
  const soak = results.soakShort;
  if (!soak || soak.skipped !== null) return [];
  return soak.runs.map((r: SoakRunResult) => {
    const extra = soakRunFaults(r);
    const figures = soakWindowFigures(r);
    const lost = figures?.routerLost === true;
    const grace = extra.lieGraceMs !== undefined && extra.withinGrace ? `; within ${extra.lieGraceMs} ms of the router's expiry (not lies): max ${extra.withinGrace.max}, in ${extra.withinGrace.samples} samples` : '';
    return {
      section: 'soak-short' as const,
      target: `short-lease soak (${r.protocol}, ${r.mappings.toLocaleString('en-US')} x ${r.lifetimeSeconds} s leases, ${r.windowSeconds} s, ${shortSoakFaults(extra.faults)}): lies = 0 at every sample`,
      measured:
        r.lies.samples === 0
          ? 'no samples'
          : `max ${r.lies.max} per sample; lies in ${r.lies.samplesWithLies}/${r.lies.samples} samples, ${r.lies.streams} streams${r.lies.firstAtSeconds !== null ? `, first at ${r.lies.firstAtSeconds} s` : ''}${grace}`,
      value: r.lies.samples === 0 ? null : r.lies.max,
      limit: 0,
      kind: 'max' as const,
      met: r.lies.samples === 0 ? null : r.lies.max > 0 ? false : lost ? true : null,
      note:
        (figures
          ? `router's table per sample min ${figures.table.min} / median ${figures.table.median}${lost ? '' : ' (never lost a mapping: this run cannot show a lie)'}; ` +
            `unmapped per sample min ${figures.unmapped.min} / max ${figures.unmapped.max}; `
          : '') +
        `mapped per sample min ${r.mappedPerSample?.min ?? '-'} / median ${r.mappedPerSample?.median ?? '-'}; ${Math.round(r.windowRequests.perSecond)} requests/s; ` +
        `event-loop delay p99 ${r.eventLoopDelayMs.p99.toFixed(1)} ms (client and simulator in one process)`,
    };
  });
}

/** The start-up contestant `id` of the spawn → first request rows. */
export function startupRow(results: BenchResults, id: string): StartupContestantResult | undefined {
  return results.startup?.spawn.find((c) => c.id === id);
}

/**
 * Median over the rounds both ran of (a - b), each pair measured seconds apart: the start-up
 * cost of `a` over `b` with the machine's drift in load taken out.
 */
export function pairedMedianDifference(a: StartupContestantResult, b: StartupContestantResult): number | undefined {
  const byRound = new Map(b.samplesRound.map((round, i) => [round, b.samplesMs[i]!]));
  const differences = a.samplesRound.flatMap((round, i) => (byRound.has(round) ? [a.samplesMs[i]! - byRound.get(round)!] : []));
  return differences.length === 0 ? undefined : median(differences);
}

/** `rxnat map` within 30 ms of Node's bare start-up; whole-process UPnP within 0.1x of `upnpc -i -a`. */
function startupChecks(results: BenchResults): TargetCheck[] {
  const startup = results.startup;
  if (!startup) return [];
  const checks: TargetCheck[] = [];
  const node = startupRow(results, 'node.exit');
  const map = startupRow(results, 'rxnat.map');
  if (startup.skipped === null && node?.summary && map?.summary) {
    const value = map.summary.median - node.summary.median;
    const paired = pairedMedianDifference(map, node);
    checks.push({
      section: 'startup',
      unit: 'ms',
      target: '`rxnat map` spawn to first request <= `node -e 0` + 30 ms',
      measured: `${ms(map.summary.median)} ms / ${ms(node.summary.median)} ms (medians)`,
      value,
      limit: 30,
      kind: 'max',
      met: value <= 30,
      note: `difference of medians${paired !== undefined ? `; paired per round ${ms(paired)} ms` : ''}; defaults (--nat any, default gateway from /proc/net/route), private network namespace, nobody answering`,
    });
  }
  // The whole-process rows: this section's own, else the latency section's of the same run.
  const lab = startup.process ?? results.latency;
  if (lab && lab.skipped === null && lab.contestants.some((c) => c.id === 'proc.rxnat.upnp.ssdp')) {
    const find = (id: string): LatencyContestantResult | undefined => lab.contestants.find((c) => c.id === id && c.gateway === 'igdv2');
    const nodeMs = medianOf(find('proc.node'));
    checks.push({
      ...ratioCheck(
        'rxnat map --nat upnp (whole process) <= 0.1x of `upnpc -i -a`',
        find('proc.rxnat.upnp.ssdp'),
        find('proc.upnpc.i'),
        0.1,
        `both whole processes, spawn to first \`mapped\` / exit, miniupnpd in the lab${nodeMs !== null ? `; \`node -e 0\` alone ${ms(nodeMs)} ms` : ''}`,
      ),
      section: 'startup',
      unit: 'x',
    });
  }
  return checks;
}

/** Every target the results can speak to. */
export function evaluateTargets(results: BenchResults): TargetCheck[] {
  return [...latencyChecks(results), ...startupChecks(results), ...scaleChecks(results), ...teardownChecks(results), ...soakChecks(results)];
}
