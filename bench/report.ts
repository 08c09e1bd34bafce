/**
 * The bench report: from the latest results (for each section, the newest
 * `bench/results/<ISO>.json` that ran it), a Markdown table `bench/results/latest.md` and the
 * latency chart `docs/bench-latency.svg` (horizontal bars on a log scale: medians, p10-p90
 * whiskers).
 *
 * Usage: node --import tsx bench/report.ts [--results DIR] [--md FILE] [--svg FILE]
 *
 * @packageDocumentation
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { CONTESTANTS, GATEWAY_LABELS, UPNP_FLOOR_PAIRS, upnpOnlyRuns } from './latency/contestants.js';
import { ROOT } from './lib/machine.js';
import { median } from './lib/stats.js';
import { evaluateTargets, pairedMedianDifference, type TargetCheck } from './lib/targets.js';
import { describeSoakFaults, soakRunFaults, soakWindowFigures } from './states/soak-faults.js';
import type { BenchResults, FootprintResults, LatencyContestantResult, ScaleScenarioResult, SectionKey, ShortSoakResults, TeardownResults } from './lib/types.js';

/** Results files written by bench/run.ts (not fuzz or soak files). */
const RESULT_FILE = /^\d{4}-\d{2}-\d{2}T[\d-]+(\.\d+)?Z\.json$/;

export const DEFAULT_RESULTS_DIR = join(ROOT, 'bench', 'results');
export const DEFAULT_MD = join(DEFAULT_RESULTS_DIR, 'latest.md');
export const DEFAULT_SVG = join(ROOT, 'docs', 'bench-latency.svg');

/** A report's input: one results object whose sections may come from different runs. */
export interface ComposedResults {
  readonly results: BenchResults;
  /** The file each section came from. */
  readonly sources: Readonly<Record<SectionKey, string | null>>;
}

/** Composes the latest results: for each section, the newest file in `dir` that ran it. */
export function composeLatest(dir: string = DEFAULT_RESULTS_DIR): ComposedResults | undefined {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => RESULT_FILE.test(f)).sort().reverse();
  } catch {
    return undefined;
  }
  const loaded = files.map((file) => ({ file, results: JSON.parse(readFileSync(join(dir, file), 'utf8')) as BenchResults }));
  const newest = loaded[0];
  if (!newest) return undefined;
  const pick = <K extends SectionKey>(key: K): { file: string; value: NonNullable<BenchResults[K]> } | undefined => {
    const ran = loaded.find((l) => l.results[key] !== null && l.results[key] !== undefined && l.results[key]!.skipped === null);
    const any = loaded.find((l) => l.results[key] !== null && l.results[key] !== undefined);
    const chosen = ran ?? any;
    return chosen ? { file: chosen.file, value: chosen.results[key]! } : undefined;
  };
  const latency = pick('latency');
  const startup = pick('startup');
  const scale = pick('scale');
  const footprint = pick('footprint');
  const teardown = pick('teardown');
  const soakShort = pick('soakShort');
  return {
    results: {
      ...newest.results,
      latency: latency?.value ?? null,
      startup: startup?.value ?? null,
      scale: scale?.value ?? null,
      footprint: footprint?.value ?? null,
      teardown: teardown?.value ?? null,
      soakShort: soakShort?.value ?? null,
    },
    sources: {
      latency: latency?.file ?? null,
      startup: startup?.file ?? null,
      scale: scale?.file ?? null,
      footprint: footprint?.file ?? null,
      teardown: teardown?.file ?? null,
      soakShort: soakShort?.file ?? null,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Formatting

function fmtMs(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
  if (value >= 100) return `${value.toFixed(0)} ms`;
  if (value >= 10) return `${value.toFixed(1)} ms`;
  return `${value.toFixed(2)} ms`;
}

/** `p10-p90` with the unit once: "10.8-20.6 ms", "1.95-2.18 s". */
function fmtRange(a: number, b: number): string {
  const unit = (v: number): string => (v >= 1000 ? ' s' : ' ms');
  const left = unit(a) === unit(b) ? fmtMs(a).slice(0, -unit(a).length) : fmtMs(a);
  return `${left}–${fmtMs(b)}`;
}

function fmtBytes(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-';
  if (Math.abs(value) >= 1024 * 1024) return `${(value / 1024 / 1024).toFixed(1)} MiB`;
  if (Math.abs(value) >= 1024) return `${(value / 1024).toFixed(1)} KiB`;
  return `${value.toFixed(0)} B`;
}

function fmtRatio(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return '-';
  return value >= 10 ? `${value.toFixed(0)}x` : value >= 1 ? `${value.toFixed(2)}x` : `${value.toFixed(3)}x`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function verdict(check: TargetCheck): string {
  if (check.met === null) return 'undecided';
  if (check.met && check.value === null) return '**met** (the peer fails)';
  return check.met ? '**met**' : '**missed**';
}

const PROTOCOL_FLOOR: Record<string, string> = { pmp: 'floor.pmp', pcp: 'floor.pcp', upnp: 'floor.upnp' };

/** The floor a contestant is compared with (same protocol and router), if any. */
function floorOf(results: BenchResults, c: LatencyContestantResult): LatencyContestantResult | undefined {
  if (c.kind === 'process' || c.kind === 'floor' || (c.id.endsWith('.url') && c.protocol !== 'upnp')) return undefined;
  const floorId = c.id.endsWith('.url') ? 'floor.upnp.url' : PROTOCOL_FLOOR[c.protocol];
  return results.latency?.contestants.find((x) => x.id === floorId && x.gateway === c.gateway);
}

/** A diagnostic row (a variant run to explain a figure, not a contestant of the issue). */
function isDiagnostic(c: LatencyContestantResult): boolean {
  return c.label.startsWith('diagnostic:');
}

function orderIndex(c: LatencyContestantResult): number {
  const index = CONTESTANTS.findIndex((s) => s.id === c.id);
  return (c.gateway === 'igdv1' ? 100 : c.gateway === 'upnp-only' ? 200 : 0) + (index < 0 ? 99 : index);
}

// ---------------------------------------------------------------------------------------------
// Markdown

function latencyMarkdown(results: BenchResults, source: string | null): string[] {
  const latency = results.latency;
  if (!latency) return ['## Latency', '', 'Not run.', ''];
  if (latency.skipped !== null) return ['## Latency', '', `Skipped: ${latency.skipped}.`, ''];
  const lines = [
    '## Latency: time to a mapped external address (miniupnpd in the gateway lab)',
    '',
    `From \`${source}\`. ${latency.runsPerContestant} timed runs per contestant after one warm-up run (${upnpOnlyRuns(latency.runsPerContestant)} on the UPnP-only router, whose target compares two UPnP contestants within 10 %, and for ${UPNP_FLOOR_PAIRS.map((id) => `\`${id}\``).join(', ')} on the others: miniupnpd's AddPortMapping takes about 6 or about 25 ms, which 30 runs do not average out), interleaved round-robin; ` +
      'every mapping deleted after each run and the router\'s forwarding rules checked empty. In-process rows: start (subscribe / construct) until the ' +
      'mapping is confirmed. Process rows: spawn until exit (reference clients) or until the first `mapped` line (`rxnat map`). ' +
      `rxnat: ${latency.cli.note}.`,
    '',
    '| contestant | router | median | p10 | p90 | p25-p75 | runs ok | x floor | notes |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
  ];
  for (const c of [...latency.contestants].sort((a, b) => orderIndex(a) - orderIndex(b))) {
    const s = c.summary;
    const floor = floorOf(results, c);
    const ratio = s && floor?.summary ? s.median / floor.summary.median : null;
    const notes: string[] = [];
    if (c.abandoned) notes.push(`abandoned: ${c.abandoned}`);
    else if (c.failures.length > 0) notes.push(`${c.failures.length} failed: ${c.failures[0]!.error}`);
    if (c.leftovers.length > 0) notes.push(`left forwardings after ${c.leftovers.length} run(s)`);
    const details = Object.entries(c.details).map(([k, v]) => `${k} x${v}`);
    if (details.length > 0) notes.push(details.join(', '));
    const mid = (xs: readonly number[] | undefined): number | undefined => (xs && xs.length > 0 ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : undefined);
    const discovery = mid(c.extraMs.discoveryMs);
    const add = mid(c.extraMs.addAfterDiscoveryMs);
    if (discovery !== undefined && add !== undefined) notes.push(`discovery ${fmtMs(discovery)} + add ${fmtMs(add)} (medians)`);
    const exit = c.extraMs.exitMs;
    if (exit && exit.length > 0) notes.push(`process exit (after delete) median ${fmtMs([...exit].sort((a, b) => a - b)[Math.floor(exit.length / 2)]!)}`);
    const attempted = c.samplesMs.length + c.failures.filter((f) => f.run > 0).length;
    const runs = c.abandoned ? `0 (gave up after ${c.failures.length})` : `${c.samplesMs.length}/${attempted}`;
    lines.push(
      `| ${cell(c.label)} | ${GATEWAY_LABELS[c.gateway] ?? c.gateway} | ${s ? fmtMs(s.median) : 'failed'} | ${fmtMs(s?.p10)} | ${fmtMs(s?.p90)} | ` +
        `${s ? `${fmtMs(s.p25)} - ${fmtMs(s.p75)}` : '-'} | ${runs} | ${fmtRatio(ratio)} | ${cell(notes.join('; '))} |`,
    );
  }
  lines.push('');
  return lines;
}

function targetsMarkdown(checks: readonly TargetCheck[]): string[] {
  if (checks.length === 0) return [];
  const lines = [
    '## Targets',
    '',
    'Latency ratios are ratios of medians; "90% CI" is a bootstrap interval of that ratio, "paired" the median of per-round ratios ' +
      '(runs are interleaved, so each pair ran seconds apart).',
    '',
    '| target | measured | value | 90% CI | paired | limit | verdict | note |',
    '|---|---|---:|---:|---:|---:|---|---|',
  ];
  for (const check of checks) {
    const isRatio = check.section === 'latency' || check.unit === 'x';
    const value =
      check.value === null
        ? '-'
        : isRatio
          ? fmtRatio(check.value)
          : check.unit === 'ms'
            ? fmtMs(check.value)
            : check.limit >= 100
              ? check.value.toFixed(0)
              : Number.isInteger(check.value)
                ? String(check.value)
                : check.value.toFixed(3);
    const limit = isRatio ? `${check.limit}x` : check.unit === 'ms' ? fmtMs(check.limit) : String(check.limit);
    const ci = check.ci90 ? `${fmtRatio(check.ci90[0])} - ${fmtRatio(check.ci90[1])}` : '';
    const paired = check.paired !== undefined ? fmtRatio(check.paired) : '';
    lines.push(`| ${cell(check.target)} | ${cell(check.measured)} | ${value} | ${ci} | ${paired} | ${limit} | ${verdict(check)} | ${cell(check.note)} |`);
  }
  const met = checks.filter((c) => c.met === true).length;
  const missed = checks.filter((c) => c.met === false).length;
  lines.push('', `${met} met, ${missed} missed, ${checks.length - met - missed} undecided.`, '');
  return lines;
}

function startupMarkdown(results: BenchResults, source: string | null): string[] {
  const startup = results.startup;
  if (!startup) return [];
  const lines = ['## Start-up', ''];
  if (startup.skipped !== null) lines.push(`Spawn to first request: skipped: ${startup.skipped}.`, '');
  else {
    const node = startup.spawn.find((c) => c.id === 'node.exit');
    lines.push(
      `From \`${source}\`. Spawn until the first datagram reached the gateway (or until exit, where marked), in a private network namespace ` +
        '(`unshare -n`) whose default route goes via 192.168.1.1, an address of its own loopback where the driver listens on udp 5351 and 1900; ' +
        `nobody answers, each run is killed at its first datagram. ${startup.runsPerContestant} runs per contestant after one warm-up run, interleaved. ` +
        `rxnat: ${startup.cli.note}.`,
      '',
      '| contestant | median | p10 | p90 | runs | over `node -e 0` (paired median) | CPU until the request (median) | waiting for a CPU (median) | first request |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---|',
    );
    for (const c of startup.spawn) {
      const over = node && c !== node ? pairedMedianDifference(c, node) : undefined;
      const first = Object.entries(c.firstRequest).map(([kind, n]) => `${kind} ${n}`).join(', ');
      lines.push(
        `| ${cell(c.label)} | ${c.summary ? fmtMs(c.summary.median) : 'failed'} | ${c.summary ? fmtMs(c.summary.p10) : '-'} | ${c.summary ? fmtMs(c.summary.p90) : '-'} | ` +
          `${c.samplesMs.length}/${c.samplesMs.length + c.failures.filter((f) => f.run > 0).length} | ${over !== undefined ? fmtMs(over) : '-'} | ` +
          `${c.cpuMs && c.cpuMs.length > 0 ? fmtMs(median(c.cpuMs)) : '-'} | ${c.runQueueMs && c.runQueueMs.length > 0 ? fmtMs(median(c.runQueueMs)) : '-'} | ${cell(first || (c.failures[0]?.error ?? ''))} |`,
      );
    }
    lines.push('');
  }
  const lab = startup.process ?? results.latency;
  if (lab && lab.skipped === null) {
    const find = (id: string): LatencyContestantResult | undefined => lab.contestants.find((c) => c.id === id && c.gateway === 'igdv2');
    const ref = (id: string): number | null => find(id)?.summary?.median ?? null;
    const refs: Array<[string, string]> = [
      ['proc.node', '`node -e 0`'],
      ['proc.natpmpc', '`natpmpc -a`'],
      ['proc.upnpc.i', '`upnpc -i -a`'],
    ];
    lines.push(
      `Whole processes against miniupnpd in the gateway lab${startup.process ? '' : ' (the latency section\'s rows)'}: spawn until the first \`mapped\` line (\`rxnat map\`) or until exit (the others); ${lab.runsPerContestant} runs each after a warm-up, interleaved.`,
      '',
      `| process | median | p10 | p90 | runs | ${refs.map(([, label]) => `/ ${label}`).join(' | ')} |`,
      `|---|---:|---:|---:|---:|${refs.map(() => '---:').join('|')}|`,
    );
    for (const c of lab.contestants.filter((x) => x.kind === 'process')) {
      const m = c.summary?.median ?? null;
      lines.push(
        `| ${cell(c.label)} | ${m !== null ? fmtMs(m) : 'failed'} | ${c.summary ? fmtMs(c.summary.p10) : '-'} | ${c.summary ? fmtMs(c.summary.p90) : '-'} | ${c.samplesMs.length}/${c.samplesMs.length + c.failures.filter((f) => f.run > 0).length} | ` +
          `${refs.map(([id]) => (m !== null && ref(id) !== null ? fmtRatio(m / ref(id)!) : '-')).join(' | ')} |`,
      );
    }
    lines.push('');
  } else if (lab) lines.push(`Whole processes: skipped: ${lab.skipped}.`, '');
  return lines;
}

function scaleMarkdown(results: BenchResults, source: string | null): string[] {
  const scale = results.scale;
  if (!scale) return ['## Scale', '', 'Not run.', ''];
  if (scale.skipped !== null) return ['## Scale', '', `Skipped: ${scale.skipped}.`, ''];
  const scenarios = scale.scenarios;
  const row = (name: string, value: (s: ScaleScenarioResult) => string): string => `| ${name} | ${scenarios.map((s) => cell(value(s))).join(' | ')} |`;
  const lines = [
    '## Scale: mapping streams against gateway simulators on loopback',
    '',
    `From \`${source}\`. Each scenario in a fresh process (\`--expose-gc\`), the simulators in another; rxnat ${scale.rxnat}. ` +
      'In flight = requests a simulated gateway received and had not answered yet (it answers after the reply delay).',
    '',
    `| | ${scenarios.map((s) => cell(s.name)).join(' | ')} |`,
    `|---|${scenarios.map(() => '---:').join('|')}|`,
    row('protocol, lease, limit, reply delay', (s) => `${s.protocol}, ${s.lifetimeSeconds} s, ${s.limit}, ${s.replyDelayMs} ms`),
    row('Nat objects', (s) => (s.nat === 'shared' ? 'one per gateway, shared' : 'one per stream (own discovery)')),
    row('time until all mapped', (s) => fmtMs(s.timeToAllMappedMs)),
    row('per stream: median (p90)', (s) => `${fmtMs(s.perStreamMappedMs?.median)} (${fmtMs(s.perStreamMappedMs?.p90)})`),
    row('peak in flight per gateway: map / idle+renew / teardown', (s) => `${s.peakInFlight.mapping} / ${s.peakInFlight.idleAndRenewals} / ${s.peakInFlight.teardown}`),
    row('heap per mapping (after GC)', (s) => fmtBytes(s.memory.heapPerMappingBytes)),
    row('RSS per mapping (after GC)', (s) => fmtBytes(s.memory.rssPerMappingBytes)),
    row('idle CPU (window, requests, GC in window)', (s) =>
      s.idle
        ? `${s.idle.cpuPercent.toFixed(3)} % (${(s.idle.windowMs / 1000).toFixed(1)} s, ${s.idle.requests} req${s.idle.gcs !== undefined ? `, ${s.idle.gcs} GC${s.idle.gcs === 1 ? '' : 's'}${s.idle.gcs > 0 ? ` ${fmtMs(s.idle.gcMs)}` : ''}` : ''})`
        : '-',
    ),
    row('renewals: all renewed in, CPU', (s) =>
      s.renewals.renewalsTotal > 0 ? `${fmtMs(s.renewals.phaseMs)}, ${s.renewals.cpuPercent.toFixed(1)} % (${s.renewals.cpuPerRenewalUs.toFixed(0)} µs/renewal)` : '-',
    ),
    row('states other than mapped after mapping', (s) => String(s.renewals.notMappedStates)),
    row('teardown: until tables empty', (s) => fmtMs(s.teardown.timeToEmptyMs)),
    row('mappings left on simulators', (s) => String(s.teardown.leftOnSimulators)),
    row('requests (by kind)', (s) => Object.entries(s.requestsByKind).map(([k, v]) => `${k} ${v}`).join(', ')),
    row('of which retransmissions', (s) => String(s.retransmissions ?? '-')),
    row('active handles before / after', (s) => `${s.activeResources.before} / ${s.activeResources.after}`),
    row('errors', (s) => (s.errors.length > 0 ? s.errors.join('; ') : 'none')),
    '',
  ];
  return lines;
}

function footprintMarkdown(footprint: FootprintResults | null, source: string | null): string[] {
  if (!footprint) return ['## Footprint', '', 'Not run.', ''];
  if (footprint.skipped !== null) return ['## Footprint', '', `Skipped: ${footprint.skipped}.`, ''];
  const node = footprint.nodeStartup?.median ?? 0;
  const rxnat = footprint.entries.find((e) => e.name === 'rxnat');
  const auditAnswered = footprint.entries.some((e) => e.audit !== null);
  const lines = [
    '## Footprint: each installed alone (production dependencies)',
    '',
    `From \`${source}\`. Import time: a fresh \`node\` importing the package, median of ${footprint.nodeStartupMs.length} rounds; each round also times a bare ` +
      `\`node\` (median ${fmtMs(node)}) and "net" is the median of the per-round differences.`,
    '',
    `| package set | packages | node_modules | import (median) | import net of node | vs rxnat (packages / size / net import) |${auditAnswered ? ' npm audit (prod) |' : ''}`,
    `|---|---:|---:|---:|---:|---|${auditAnswered ? '---|' : ''}`,
  ];
  for (const e of footprint.entries) {
    if (e.error !== null) {
      lines.push(`| ${cell(e.name)} | - | - | - | - | failed: ${cell(e.error)} |${auditAnswered ? ' - |' : ''}`);
      continue;
    }
    const net = e.netImportMs ?? (e.importSummary?.median ?? NaN) - node;
    const rNet = rxnat?.netImportMs ?? (rxnat?.importSummary?.median ?? NaN) - node;
    const vs =
      rxnat && rxnat !== e && rxnat.packages && rxnat.installBytes
        ? `${fmtRatio((e.packages ?? NaN) / rxnat.packages)} / ${fmtRatio((e.installBytes ?? NaN) / rxnat.installBytes)} / ${fmtRatio(net / rNet)}`
        : '';
    const audit = e.audit
      ? Object.entries(e.audit).filter(([k, v]) => v > 0 && k !== 'total').map(([k, v]) => `${v} ${k}`).join(', ') || 'none'
      : `unavailable${e.auditError ? ` (${e.auditError.slice(0, 80)})` : ''}`;
    lines.push(`| ${cell(e.name)} | ${e.packages} | ${fmtBytes(e.installBytes)} | ${fmtMs(e.importSummary?.median)} | ${fmtMs(net)} | ${vs} |${auditAnswered ? ` ${cell(audit)} |` : ''}`);
  }
  lines.push('');
  const auditError = footprint.entries.find((e) => e.auditError)?.auditError;
  if (!auditAnswered && auditError) lines.push(`\`npm audit\` was unavailable here (${auditError.slice(0, 120)}); no advisory counts.`, '');
  for (const e of footprint.entries) {
    if (e.packageNames.length > 0) lines.push(`- ${e.name}: ${e.packageNames.join(', ')}`);
  }
  lines.push('');
  return lines;
}

function teardownMarkdown(t: TeardownResults | null | undefined, source: string | null): string[] {
  const title = '## Bulk teardown: UPnP mappings stopped at once on a slow-deleting gateway';
  if (!t) return [title, '', 'Not run.', ''];
  if (t.skipped !== null) return [title, '', `Skipped: ${t.skipped}.`, ''];
  const all = t.completed === t.mappings;
  const statuses = Object.entries(t.lastStates.byStatus).map(([k, v]) => `${k} ${v}`).join(', ');
  const requests = Object.entries(t.requestsByAction).map(([k, v]) => `${k} ${v}`).join(', ');
  const row = (name: string, value: string): string => `| ${name} | ${cell(value)} |`;
  return [
    title,
    '',
    `From \`${source}\`. ${t.mappings.toLocaleString('en-US')} mapPort streams (distinct internal ports, ${t.lifetimeSeconds} s leases) on the simulator's UPnP IGD ` +
      `(loopback, same process), one Nat with the backend's default maxConcurrentRequests (${t.maxConcurrentRequests}); every DeletePortMapping answered after ${t.deleteDelayMs} ms. ` +
      'Once all were `mapped`, one `stop` Subject emitted for all of them; the gateway\'s table was read the instant the last stream completed. ' +
      `rxnat ${t.rxnat}.`,
    '',
    '| | |',
    '|---|---:|',
    row('time until all mapped', fmtMs(t.timeToAllMappedMs)),
    row('stop to all completed', `${fmtMs(t.stopToCompletedMs)}${all ? '' : ` (bound; ${t.completed}/${t.mappings} completed)`}`),
    row(`x the gateway's serial time (${t.mappings} x ${t.deleteDelayMs} ms = ${fmtMs(t.serialDeleteMs)})`, fmtRatio(t.ratioToSerial)),
    row('per stream, stop to complete: median (p90, max)', t.perStreamCompletedMs ? `${fmtMs(t.perStreamCompletedMs.median)} (${fmtMs(t.perStreamCompletedMs.p90)}, ${fmtMs(t.perStreamCompletedMs.max)})` : '-'),
    row('mappings left on the gateway when all had completed', String(t.leftAtCompletion)),
    row(`... ${t.graceMs / 1000} s later`, String(t.leftAfterGrace)),
    row('DeletePortMapping received after the stop', String(t.deleteRequests)),
    row('last states', statuses),
    row('last states with a non-null error (unconfirmed deletes)', `${t.lastStates.withError}${t.lastStates.errorSamples.length > 0 ? ` (${t.lastStates.errorSamples[0]})` : ''}`),
    row('requests (by action)', requests),
    row('process ended on its own / handles left', `${t.exitedOnItsOwn ? 'yes' : 'no'} / ${t.activeResourcesAfter.length > 0 ? t.activeResourcesAfter.join(', ') : 'none'}`),
    row('errors', t.errors.length > 0 ? t.errors.join('; ') : 'none'),
    '',
  ];
}

function soakMarkdown(soak: ShortSoakResults | null | undefined, source: string | null): string[] {
  const title = '## Short-lease soak: do `mapped` states match the router\'s table?';
  if (!soak) return [title, '', 'Not run.', ''];
  if (soak.skipped !== null) return [title, '', `Skipped: ${soak.skipped}.`, ''];
  const runs = soak.runs;
  if (runs.length === 0) return [title, '', 'No runs.', ''];
  const row = (name: string, value: (r: (typeof runs)[number]) => string): string => `| ${name} | ${runs.map((r) => cell(value(r))).join(' | ')} |`;
  const kinds = (byKind: Readonly<Record<string, number>>): string => Object.entries(byKind).map(([k, v]) => `${k} ${v}`).join(', ') || '-';
  return [
    title,
    '',
    `From \`${source}\`. Per protocol, a fresh process with the simulator in it (loopback): ${runs[0]!.mappings.toLocaleString('en-US')} mapPort streams with ` +
      `${runs[0]!.lifetimeSeconds} s leases (PCP with the simulator's pcpMinLifetimeSeconds 1), the Nat with the backend's defaults. Every second the table ` +
      '(unexpired entries) and every stream\'s latest state are read at one instant; a lie is a stream reading `mapped` or `degraded` while the table has no entry ' +
      'of that protocol on its protocol/external port forwarding to its internal port. Sampled from the subscribe on; the window starts once every stream was ' +
      `mapped once. Window ${runs[0]!.windowSeconds} s (${soak.windowSource}; \`RXNAT_BENCH_SOAK_SECONDS\` sets it). rxnat ${soak.rxnat}.`,
    '',
    'During the window the gateway cannot keep up, so leases do lapse on the router (a gateway that answers at once never lets a lease lapse, and such a run ' +
      'cannot show a lie: its target is then undecided). UPnP: every AddPortMapping is answered, and done, late; with the client\'s one request at a time ' +
      'at most 1000/delay adds a second are served (200 at 5 ms), fewer than the 333 a second 1,000 leases of 3 s need: the router must lose some whatever the client does. PCP: the server answers nothing for longer than a lease, periodically, ' +
      'so every lease lapses and every stream must read `unmapped` until it is mapped again. The faults end with the window, before the teardown. ' +
      'A stream that still reads `mapped` less than the grace after its entry expired is not counted as a lie (the sample and the expiry are different ' +
      'instants; the next sample, a second later, catches it if it still reads `mapped`): those are counted apart.',
    '',
    `| | ${runs.map((r) => r.protocol).join(' | ')} |`,
    `|---|${runs.map(() => '---:').join('|')}|`,
    row('maxConcurrentRequests (backend default)', (r) => String(r.maxConcurrentRequests)),
    row('time until all mapped once', (r) => (r.timeToAllMappedMs === null ? 'not all' : fmtMs(r.timeToAllMappedMs))),
    row('gateway fault in the window', (r) => describeSoakFaults(soakRunFaults(r).faults)),
    row('silent phases (s since the subscribe)', (r) => soakRunFaults(r).silentPhases?.map((p) => `${p.from}-${p.to}`).join(', ') || '-'),
    row('samples (ramp + window)', (r) => `${r.rampSamples.length} + ${r.samples.length}`),
    row('lies: max per sample', (r) => String(r.lies.max)),
    row('lies: samples with any / streams caught', (r) => `${r.lies.samplesWithLies} / ${r.lies.streams}${r.lies.firstAtSeconds !== null ? ` (first at ${r.lies.firstAtSeconds} s)` : ''}`),
    row('lies in samples where the event loop ran on time (delay ≤ grace)', (r) => (r.lies.samplesWithLiesOnTime === undefined ? '-' : String(r.lies.samplesWithLiesOnTime))),
    row('mapped/degraded within the grace of the router\'s expiry (not lies): max per sample / samples', (r) => {
      const extra = soakRunFaults(r);
      return extra.withinGrace && extra.lieGraceMs !== undefined ? `${extra.withinGrace.max} / ${extra.withinGrace.samples} (grace ${extra.lieGraceMs} ms)` : '-';
    }),
    row('router\'s table (unexpired entries) per sample: min / median / max', (r) => {
      const f = soakWindowFigures(r);
      return f ? `${f.table.min} / ${f.table.median} / ${f.table.max}${f.routerLost ? '' : ' (never lost a mapping)'}` : '-';
    }),
    row('unmapped per sample: min / max', (r) => {
      const f = soakWindowFigures(r);
      return f ? `${f.unmapped.min} / ${f.unmapped.max}` : '-';
    }),
    row('mapped per sample: min / median / max', (r) => (r.mappedPerSample ? `${r.mappedPerSample.min} / ${r.mappedPerSample.median} / ${r.mappedPerSample.max}` : '-')),
    row('granted lease of the mapped (s: streams)', (r) => Object.entries(r.grantedLifetimes).map(([k, v]) => `${k}: ${v}`).join(', ') || '-'),
    row('requests in the window (per second)', (r) => `${r.windowRequests.total} (${r.windowRequests.perSecond.toFixed(0)}/s)`),
    row('requests over the run, by kind', (r) => kinds(r.requestsByKind)),
    row('CPU (client + simulator), event-loop delay p99 / max', (r) => `${r.cpuPercent.toFixed(0)} %, ${fmtMs(r.eventLoopDelayMs.p99)} / ${fmtMs(r.eventLoopDelayMs.max)}`),
    row('teardown (stop to all completed), left on the gateway', (r) => `${fmtMs(r.teardown.ms)}, ${r.teardown.leftOnGateway}${r.teardown.completed !== r.mappings ? ` (${r.teardown.completed} completed)` : ''}`),
    row('process ended on its own / handles left', (r) => `${r.exitedOnItsOwn ? 'yes' : 'no'} / ${r.activeResourcesAfter.length > 0 ? r.activeResourcesAfter.join(', ') : 'none'}`),
    row('errors', (r) => (r.errors.length > 0 ? r.errors.slice(0, 5).join('; ') : 'none')),
    '',
  ];
}

/** The Markdown report. */
export function renderMarkdown(composed: ComposedResults): string {
  const { results, sources } = composed;
  const m = results.machine;
  const checks = evaluateTargets(results);
  const peerVersions = Object.entries(results.versions.peers).map(([k, v]) => `${k} ${v}`).join(', ');
  const tools = Object.entries(results.versions.tools).map(([k, v]) => `${k} ${v}`).join(', ');
  const lines = [
    '# rxnat benchmark',
    '',
    `Generated from the latest results (${Object.values(sources).filter((s): s is string => s !== null).filter((s, i, a) => a.indexOf(s) === i).map((s) => `\`${s}\``).join(', ')}). ` +
      'Regenerate: `npm run bench` (or `npm run bench:report` from existing results).',
    '',
    `- Machine: ${m.cpuModel}, ${m.cores} cores, ${(m.memoryBytes / 1024 ** 3).toFixed(1)} GiB, ${m.os.distro} (${m.os.platform} ${m.os.release}, ${m.os.arch}), node ${m.node}`,
    `- rxnat ${results.versions.rxnat} (${results.versions.git}), rxjs ${results.versions.rxjs}`,
    `- Peers: ${peerVersions}`,
    `- Tools: ${tools}`,
    ...(m.clearedEnv && m.clearedEnv.length > 0
      ? [`- Environment: ${m.clearedEnv.map((name) => `\`${name}\``).join(', ')} unset for every contestant (this machine sets it; it makes every Node.js start read a CA bundle, ~50 ms here, whatever the code; rxnat makes no TLS connection)`]
      : []),
    ...(results.load ? [`- Load average (1/5/15 min) at start ${results.load.start.join(' / ')}, at end ${results.load.end.join(' / ')} (${m.cores} cores; other work on the machine widens the spreads)`] : []),
    '',
    ...targetsMarkdown(checks),
    ...latencyMarkdown(results, sources.latency),
    ...startupMarkdown(results, sources.startup),
    ...scaleMarkdown(results, sources.scale),
    ...footprintMarkdown(results.footprint, sources.footprint),
    ...teardownMarkdown(results.teardown, sources.teardown),
    ...soakMarkdown(results.soakShort, sources.soakShort),
  ];
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n').trim()}\n`;
}

// ---------------------------------------------------------------------------------------------
// SVG

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const COLORS: Record<string, string> = {
  rxnat: '#1f6fd1',
  diagnostic: '#9dbde8',
  floor: '#8a8f98',
  peer: '#e07b24',
  process: '#7a4fc9',
};

interface ChartGroup {
  readonly title: string;
  readonly rows: LatencyContestantResult[];
}

function chartGroups(results: BenchResults): ChartGroup[] {
  const all = [...(results.latency?.contestants ?? [])].sort((a, b) => orderIndex(a) - orderIndex(b));
  const inProcess = all.filter((c) => c.kind !== 'process');
  const groups: ChartGroup[] = [
    { title: 'NAT-PMP (in process)', rows: inProcess.filter((c) => c.protocol === 'pmp') },
    { title: 'PCP (in process)', rows: inProcess.filter((c) => c.protocol === 'pcp') },
    { title: 'UPnP IGD, router serving IGDv2 (in process)', rows: inProcess.filter((c) => c.protocol === 'upnp' && c.gateway === 'igdv2') },
    { title: 'UPnP IGD, router forced to IGDv1 (in process)', rows: inProcess.filter((c) => c.protocol === 'upnp' && c.gateway === 'igdv1') },
    { title: 'UPnP IGD, UPnP-only router (in process)', rows: inProcess.filter((c) => c.protocol === 'upnp' && c.gateway === 'upnp-only') },
    { title: 'Discovery race, router with PCP and NAT-PMP (in process)', rows: inProcess.filter((c) => c.protocol === 'any' && c.gateway !== 'upnp-only') },
    { title: 'Discovery race, UPnP-only router (in process)', rows: inProcess.filter((c) => c.protocol === 'any' && c.gateway === 'upnp-only') },
    { title: 'Whole process (spawn until mapped / exit)', rows: all.filter((c) => c.kind === 'process') },
  ];
  return groups.filter((g) => g.rows.length > 0);
}

/** The latency chart: horizontal bars (medians) with p10-p90 whiskers on a log scale. */
export function renderSvg(composed: ComposedResults): string {
  const { results, sources } = composed;
  const width = 1000;
  const labelWidth = 330;
  const valueWidth = 170;
  const plotLeft = labelWidth + 10;
  const plotRight = width - valueWidth;
  const rowHeight = 20;
  const groupGap = 30;
  const top = 78;
  const groups = chartGroups(results);
  const samples = groups.flatMap((g) => g.rows).flatMap((c) => (c.summary ? [c.summary.p10, c.summary.p90, c.summary.median] : []));
  const lo = Math.pow(10, Math.floor(Math.log10(Math.max(0.1, Math.min(...samples, 10)))));
  const hi = Math.pow(10, Math.ceil(Math.log10(Math.max(...samples, 100))));
  const x = (v: number): number => plotLeft + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * (plotRight - plotLeft);
  const rows = groups.reduce((n, g) => n + g.rows.length, 0);
  const height = top + rows * rowHeight + groups.length * groupGap + 70;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="20" y="28" font-size="18" font-weight="bold" fill="#111">Time to a mapped external address: rxnat vs peers (miniupnpd ${esc(results.versions.tools.miniupnpd ?? '')})</text>`,
    `<text x="20" y="48" fill="#444">Median with p10-p90 whiskers, log scale, ${results.latency?.runsPerContestant ?? 0} runs each or more (see bench/results/latest.md). ${esc(results.machine.cpuModel)}, ${results.machine.cores} cores, node ${esc(results.machine.node)}. ${esc(sources.latency ?? '')}</text>`,
  );
  // Legend
  let lx = 20;
  for (const [kind, label] of [
    ['rxnat', 'rxnat'],
    ['diagnostic', 'rxnat variant (diagnostic)'],
    ['floor', 'bare protocol (floor)'],
    ['peer', 'JS peer'],
    ['process', 'whole process'],
  ] as const) {
    out.push(`<rect x="${lx}" y="58" width="12" height="12" fill="${COLORS[kind]}"/>`, `<text x="${lx + 17}" y="68.5" fill="#333">${esc(label)}</text>`);
    lx += 40 + label.length * 6.5;
  }
  const plotTop = top;
  const plotBottom = height - 50;
  // Grid and axis
  const ticks: number[] = [];
  for (let decade = lo; decade <= hi; decade *= 10) for (const m of [1, 2, 5]) if (decade * m >= lo && decade * m <= hi) ticks.push(decade * m);
  for (const t of ticks) {
    const tx = x(t).toFixed(1);
    const major = Math.abs(Math.log10(t) - Math.round(Math.log10(t))) < 1e-9;
    out.push(`<line x1="${tx}" y1="${plotTop}" x2="${tx}" y2="${plotBottom}" stroke="${major ? '#c9ccd1' : '#eceef1'}" stroke-width="1"/>`);
    out.push(`<text x="${tx}" y="${plotBottom + 16}" text-anchor="middle" fill="${major ? '#333' : '#777'}" font-size="${major ? 12 : 10}">${t >= 1000 ? `${t / 1000} s` : t}</text>`);
  }
  out.push(`<line x1="${plotLeft}" y1="${plotBottom}" x2="${plotRight}" y2="${plotBottom}" stroke="#888"/>`);
  out.push(`<text x="${(plotLeft + plotRight) / 2}" y="${plotBottom + 34}" text-anchor="middle" fill="#333">milliseconds, log scale (bar: median; whisker: p10–p90)</text>`);
  let y = top;
  for (const group of groups) {
    y += groupGap;
    out.push(`<text x="20" y="${y - 9}" font-weight="bold" fill="#222">${esc(group.title)}</text>`);
    for (const c of group.rows) {
      const cy = y + rowHeight / 2;
      const label = c.label.length > 52 ? `${c.label.slice(0, 51)}…` : c.label;
      out.push(`<text x="${labelWidth}" y="${cy + 4}" text-anchor="end" fill="#222"${(c.kind === 'rxnat' && !isDiagnostic(c)) || c.id.startsWith('proc.rxnat') ? ' font-weight="bold"' : ''}>${esc(label)}</text>`);
      if (c.summary) {
        const s = c.summary;
        out.push(`<rect x="${plotLeft}" y="${(cy - 6).toFixed(1)}" width="${(x(s.median) - plotLeft).toFixed(1)}" height="12" fill="${COLORS[isDiagnostic(c) ? 'diagnostic' : c.kind]}" opacity="0.9"/>`);
        out.push(`<line x1="${x(s.p10).toFixed(1)}" y1="${cy}" x2="${x(s.p90).toFixed(1)}" y2="${cy}" stroke="#222" stroke-width="1.2"/>`);
        for (const v of [s.p10, s.p90]) out.push(`<line x1="${x(v).toFixed(1)}" y1="${cy - 4}" x2="${x(v).toFixed(1)}" y2="${cy + 4}" stroke="#222" stroke-width="1.2"/>`);
        out.push(`<text x="${plotRight + 8}" y="${cy + 4}" fill="#222">${esc(fmtMs(s.median))}<tspan fill="#777" font-size="10.5"> (${esc(fmtRange(s.p10, s.p90))})</tspan></text>`);
      } else {
        const reason = c.failures[0]?.error ?? 'no samples';
        out.push(`<text x="${plotLeft + 6}" y="${cy + 4}" fill="#b42318">failed: ${esc(reason.length > 80 ? `${reason.slice(0, 79)}…` : reason)}</text>`);
      }
      y += rowHeight;
    }
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------

/** A short console summary of the targets. */
export function summaryText(composed: ComposedResults): string {
  const checks = evaluateTargets(composed.results);
  if (checks.length === 0) return 'no targets evaluated (sections skipped?)';
  return checks
    .map(
      (c) =>
        `${c.met === null ? '  ?' : c.met ? ' ok' : 'MISS'}  ${c.target}: ${c.measured}` +
        `${c.value !== null ? ` -> ${c.section === 'latency' || c.unit === 'x' ? fmtRatio(c.value) : c.unit === 'ms' ? fmtMs(c.value) : c.value.toFixed(3)} (limit ${c.limit}${c.unit === 'ms' ? ' ms' : ''})` : ''}` +
        `${c.ci90 ? `, 90% CI ${fmtRatio(c.ci90[0])}-${fmtRatio(c.ci90[1])}` : ''}${c.paired !== undefined ? `, paired ${fmtRatio(c.paired)}` : ''}`,
    )
    .join('\n');
}

/** Writes the Markdown report and (when latency ran) the chart; returns the files written and a summary. */
export function writeReport(
  options: { readonly resultsDir?: string; readonly md?: string; readonly svg?: string } = {},
): { files: string[]; summary: string } {
  const composed = composeLatest(options.resultsDir ?? DEFAULT_RESULTS_DIR);
  if (!composed) throw new Error(`no results in ${options.resultsDir ?? DEFAULT_RESULTS_DIR}: run \`npm run bench\` first`);
  const files: string[] = [];
  const md = options.md ?? DEFAULT_MD;
  mkdirSync(dirname(md), { recursive: true });
  writeFileSync(md, renderMarkdown(composed));
  files.push(md);
  if (composed.results.latency && composed.results.latency.skipped === null) {
    const svg = options.svg ?? DEFAULT_SVG;
    mkdirSync(dirname(svg), { recursive: true });
    writeFileSync(svg, renderSvg(composed));
    files.push(svg);
  }
  return { files: files.map((f) => relative(process.cwd(), f) || f), summary: summaryText(composed) };
}

if (import.meta.filename === process.argv[1]) {
  const { values } = parseArgs({ options: { results: { type: 'string' }, md: { type: 'string' }, svg: { type: 'string' } }, strict: true });
  const written = writeReport({
    ...(values.results !== undefined ? { resultsDir: values.results } : {}),
    ...(values.md !== undefined ? { md: values.md } : {}),
    ...(values.svg !== undefined ? { svg: values.svg } : {}),
  });
  for (const file of written.files) console.log(`wrote ${file}`);
  console.log(written.summary);
}
