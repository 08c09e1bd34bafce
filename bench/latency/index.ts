/**
 * Latency section: time to a mapped external address against a real router (miniupnpd in the
 * gateway lab's network namespaces). The timing happens inside the lan namespace, in
 * `lan-driver.ts`; this side starts the labs, sends the runs round-robin (the start of each
 * round rotates, so no contestant always follows the same one), and after every run checks the
 * router's forwarding rules (`lab.rules()`): anything left is recorded and removed.
 *
 * @packageDocumentation
 */
import { Lab, startLab, type LabProcess, type LabRule } from '../lib/lab.js';
import { RXNAT_MODULE_ENV, type RxnatBuild } from '../lib/build.js';
import { summarize } from '../lib/stats.js';
import type { LatencyContestantResult, LatencyResults } from '../lib/types.js';
import { CONTESTANTS, resultKey, runsOn, type ContestantSpec, type LabGateway } from './contestants.js';

export interface LatencyOptions {
  /** Timed runs per contestant (after one warm-up run). */
  readonly runs: number;
  /** The rxnat under test (its CLI for the whole-process contestants). */
  readonly build: RxnatBuild;
  /** Per-run bound, ms. */
  readonly timeoutMs?: number;
  /** Only these contestant ids (default all). */
  readonly filter?: (spec: ContestantSpec) => boolean;
  readonly log: (line: string) => void;
}

type DriverReply = { ok: true; ms: number; extra?: Record<string, number>; detail?: string } | { ok: false; error: string };

const DRIVER = 'bench/latency/lan-driver.ts';
/** Early failures in a row after which a contestant is abandoned on that gateway. */
const ABANDON_AFTER = 3;

export async function runLatency(options: LatencyOptions): Promise<LatencyResults> {
  const started = performance.now();
  const cli = { command: options.build.cli, source: options.build.source, note: options.build.note };
  const availability = await Lab.available();
  const missing = ['upnpc', 'natpmpc'].filter((tool) => !Lab.hasBinary(tool));
  if (!availability.available || missing.length > 0) {
    const reason = availability.available ? `${missing.join(', ')} not installed` : (availability.reason ?? 'unavailable');
    options.log(`latency: skipped, the gateway lab is unavailable here: ${reason}`);
    return { skipped: reason, runsPerContestant: options.runs, gateways: [], cli, contestants: [], durationMs: performance.now() - started };
  }
  const results: LatencyContestantResult[] = [];
  const gateways: LatencyResults['gateways'][number][] = [];
  for (const gateway of ['igdv2', 'igdv1', 'upnp-only'] as const) {
    const specs = CONTESTANTS.filter((spec) => spec.gateways.includes(gateway) && (options.filter?.(spec) ?? true));
    if (specs.length === 0) continue;
    // The UPnP-only router answers PCP and NAT-PMP with port unreachable. Its namespace's ICMP
    // rate limit is lifted: Linux sends 6, then one per second per host, and the bench discovers
    // several times a second, where a client discovering once always gets its answer.
    const lab = await startLab(gateway === 'upnp-only' ? { natpmp: false, icmpRateLimitMs: 0 } : { igdV1: gateway === 'igdv1' });
    gateways.push({ id: gateway, startupMs: Math.round(lab.startupMs), descriptionUrl: lab.descriptionUrl });
    const counts = [...new Set(specs.map((spec) => runsOn(spec.id, gateway, options.runs)))].join(' or ');
    options.log(`latency: lab ${lab.id} up (${gateway}, ${Math.round(lab.startupMs)} ms); ${specs.length} contestants x (1 warm-up + ${counts} runs)`);
    try {
      results.push(...(await runOnLab(lab, gateway, specs, options)));
    } finally {
      await lab.stop();
    }
  }
  return { skipped: null, runsPerContestant: options.runs, gateways, cli, contestants: results, durationMs: performance.now() - started };
}

async function runOnLab(lab: Lab, gateway: LabGateway, specs: readonly ContestantSpec[], options: LatencyOptions): Promise<LatencyContestantResult[]> {
  const timeoutMs = options.timeoutMs ?? 8000;
  const cli = options.build.cli;
  const env = { [RXNAT_MODULE_ENV]: options.build.index };
  let driver = await startDriver(lab, env);
  const entries = specs.map((spec, index) => ({
    spec,
    runs: runsOn(spec.id, gateway, options.runs),
    port: 41000 + index + (gateway === 'igdv1' ? 500 : gateway === 'upnp-only' ? 1000 : 0),
    consecutiveFailures: 0,
    result: {
      key: resultKey(spec.id, gateway),
      id: spec.id,
      label: spec.label,
      kind: spec.kind,
      protocol: spec.protocol,
      gateway,
      span: spec.span,
      samplesMs: [],
      samplesRound: [],
      warmupMs: null,
      extraMs: {},
      details: {},
      failures: [],
      leftovers: [],
      abandoned: null,
      summary: null,
    } as LatencyContestantResult,
  }));

  // Round 0 is the warm-up (each contestant's first run in the driver pays for loading its code).
  // Contestants with more runs go on alone once the others are done (still round-robin).
  const rounds = Math.max(...entries.map((e) => e.runs));
  for (let round = 0; round <= rounds; round++) {
    const order = entries.map((_, i) => entries[(i + round) % entries.length]!);
    for (const entry of order) {
      const { result, spec } = entry;
      if (result.abandoned !== null || round > entry.runs) continue;
      const message = { op: 'run', contestant: spec.id, port: entry.port, igd: gateway === 'igdv1' ? 1 : 2, cli, timeoutMs };
      let reply: DriverReply;
      try {
        driver.send(message);
        reply = await driver.next<DriverReply>(timeoutMs + 5000);
      } catch (error) {
        reply = { ok: false, error: `driver lost: ${(error as Error).message.slice(0, 300)}` };
        driver.kill();
        driver = await startDriver(lab, env);
      }
      if (reply.ok) {
        entry.consecutiveFailures = 0;
        if (round === 0) result.warmupMs = reply.ms;
        else {
          result.samplesMs.push(reply.ms);
          result.samplesRound.push(round);
          for (const [name, value] of Object.entries(reply.extra ?? {})) (result.extraMs[name] ??= []).push(value);
          if (reply.detail) result.details[reply.detail] = (result.details[reply.detail] ?? 0) + 1;
        }
      } else {
        entry.consecutiveFailures++;
        result.failures.push({ run: round, error: reply.error });
        if (entry.consecutiveFailures >= ABANDON_AFTER && result.samplesMs.length === 0) {
          result.abandoned = `the first ${ABANDON_AFTER} runs failed; last error: ${reply.error}`;
          options.log(`latency: ${result.key} abandoned: ${reply.error}`);
        }
      }
      const left = await lab.rules();
      if (left.length > 0) {
        result.leftovers.push({ run: round, rules: left });
        await removeRules(lab, left);
      }
    }
    if (round > 0 && (round % 5 === 0 || round === rounds)) options.log(`latency: ${gateway} round ${round}/${rounds}`);
  }
  driver.send({ op: 'exit' });
  await driver.done(5000);
  for (const { result } of entries) result.summary = summarize(result.samplesMs) ?? null;
  return entries.map((e) => e.result);
}

async function startDriver(lab: Lab, env: Record<string, string>): Promise<LabProcess> {
  const driver = lab.spawnNodeIn('lan', DRIVER, [], { env });
  await driver.next(20_000);
  return driver;
}

/** Deletes forwardings a contestant left: UPnP DeletePortMapping from the LAN host, then a flush if any remain. */
async function removeRules(lab: Lab, rules: readonly LabRule[]): Promise<void> {
  for (const rule of rules) {
    await lab.execInLan('upnpc', ['-u', lab.descriptionUrl, '-d', String(rule.externalPort), rule.protocol], { timeoutMs: 5000 });
  }
  if ((await lab.rules()).length > 0) await lab.flushRules();
}
