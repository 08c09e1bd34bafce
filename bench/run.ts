/**
 * rxnat's benchmark: rxnat against every peer in the same run, reported as ratios.
 *
 * Sections:
 * - latency: time to a mapped external address against miniupnpd in the gateway lab (needs
 *   root and network namespaces; skipped with a message otherwise);
 * - startup: `rxnat map` from spawn to its first request on the wire (private network namespace,
 *   no network reached) next to `node -e 0`, and whole processes to a first mapping against
 *   miniupnpd next to `upnpc -i -a` and `natpmpc -a` (the latency section's process rows);
 * - scale: 1,000 and 10,000 mapping streams against gateway simulators on loopback;
 * - footprint: packages, install size and import time of rxnat, each peer and the originally
 *   requested stack, each installed alone in a temp directory;
 * - teardown: 1,000 UPnP mappings stopped at once on a simulator that takes 20 ms per delete
 *   (loopback; see bench/states);
 * - soak-short: 1,000 mappings with 3 s leases on the simulator's UPnP and PCP, each for
 *   RXNAT_BENCH_SOAK_SECONDS (default 120), the router's table checked against every stream's state each second.
 *
 * Usage: node --import tsx bench/run.ts [SECTION ...] [--only SECTION[,...]] [--runs N]
 *        [--contestants ID[,...]] [--no-report] [--quick]
 * --contestants keeps only those latency contestants (ids of bench/latency/contestants.ts, or
 * prefixes ending in '.'), for example the race and SSDP rows alone:
 *   node --import tsx bench/run.ts latency --contestants floor.,rxnat.pmp,rxnat.pcp,rxnat.upnp.ssdp,rxnat.discover
 * (note: 'rxnat.discover' then also needs its diagnostics listed, or 'rxnat.discover.' as a prefix).
 * SECTION: latency, startup, scale, footprint, teardown, soak-short (positional names and --only add up;
 * none: all). Only the state scenarios: node --import tsx bench/run.ts teardown soak-short
 * Writes bench/results/<ISO>.json, then the report (bench/results/latest.md and
 * docs/bench-latency.svg) unless --no-report.
 *
 * Network: only loopback and the lab's own namespaces are ever addressed (see each section).
 *
 * @packageDocumentation
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg, tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { buildRxnat, removeBuild } from './lib/build.js';
import { clearStartCostVariables, machineInfo, ROOT, versions } from './lib/machine.js';
import { SECTIONS, type BenchResults, type Section } from './lib/types.js';
import { writeReport } from './report.js';

const USAGE = `usage: node --import tsx bench/run.ts [${SECTIONS.join('|')} ...] [--only SECTION[,...]] [--contestants ID[,...]] [--runs N] [--quick] [--no-report]`;

function parse(): { only: Section[]; runs: number; quick: boolean; report: boolean; contestants: string[] } {
  const { values, positionals } = parseArgs({
    options: {
      only: { type: 'string', multiple: true },
      contestants: { type: 'string', multiple: true },
      runs: { type: 'string' },
      quick: { type: 'boolean' },
      'no-report': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const only = [...(values.only ?? []), ...positionals].flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  for (const name of only) {
    if (!SECTIONS.includes(name as Section)) throw new Error(`unknown section "${name}"; ${USAGE}`);
  }
  const runs = values.runs === undefined ? (values.quick ? 5 : 20) : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer; ${USAGE}`);
  const contestants = (values.contestants ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  return {
    only: only.length > 0 ? SECTIONS.filter((section) => only.includes(section)) : [...SECTIONS],
    runs,
    quick: values.quick === true,
    report: values['no-report'] !== true,
    contestants,
  };
}

const log = (line: string): void => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

async function main(): Promise<void> {
  const options = parse();
  const clearedEnv = clearStartCostVariables();
  // The CLI's code cache goes to a directory of this run, not the user's ~/.cache (removed at exit).
  const cacheHome = mkdtempSync(join(tmpdir(), 'rxnat-bench-cache-'));
  process.env['XDG_CACHE_HOME'] = cacheHome;
  process.once('exit', () => rmSync(cacheHome, { recursive: true, force: true }));
  const startedAt = new Date();
  const results: BenchResults = {
    schema: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    durationMs: 0,
    argv: process.argv.slice(2),
    options: { only: options.only, runs: options.runs },
    machine: { ...machineInfo(), clearedEnv },
    versions: versions(),
    load: { start: loadavg().map((l) => Math.round(l * 100) / 100), end: [] },
    latency: null,
    startup: null,
    scale: null,
    footprint: null,
    teardown: null,
    soakShort: null,
  };
  log(`rxnat bench: ${options.only.join(', ')}; ${options.runs} runs; ${results.machine.cpuModel} x${results.machine.cores}, node ${results.machine.node}; load ${results.load.start.join(' ')}`);
  if (clearedEnv.length > 0) log(`environment: ${clearedEnv.join(', ')} unset for every contestant (it costs each Node.js start, whatever the code)`);
  if (results.load.start[0]! > results.machine.cores * 0.5) log('note: the machine is busy (load average above half the cores): timings will be noisier');
  const build = buildRxnat();
  log(`rxnat under test: ${build.note} (${Math.round(build.buildMs)} ms)`);
  try {
    if (options.only.includes('latency')) {
      const { runLatency } = await import('./latency/index.js');
      const ids = options.contestants;
      results.latency = await runLatency({
        runs: options.runs,
        build,
        log,
        // --contestants: only these latency contestants (an id, or a prefix ending in '.': 'rxnat.', 'floor.').
        ...(ids.length > 0 ? { filter: (spec: { id: string }) => ids.some((id) => spec.id === id || (id.endsWith('.') && spec.id.startsWith(id))) } : {}),
      });
    }
    if (options.only.includes('startup')) {
      const { runStartup } = await import('./startup/index.js');
      // The whole-process rows are the latency section's: run them here only when it does not run.
      results.startup = await runStartup({ runs: options.runs, build, log, lab: !options.only.includes('latency') });
    }
    if (options.only.includes('scale')) {
      const { runScale } = await import('./scale/index.js');
      results.scale = await runScale({ quick: options.quick, build, log });
    }
    if (options.only.includes('footprint')) {
      const { runFootprint } = await import('./footprint/index.js');
      results.footprint = await runFootprint({ quick: options.quick, build, log });
    }
    if (options.only.includes('teardown')) {
      const { runTeardownSection } = await import('./states/index.js');
      results.teardown = await runTeardownSection({ quick: options.quick, build, log });
    }
    if (options.only.includes('soak-short')) {
      const { runSoakSection } = await import('./states/index.js');
      results.soakShort = await runSoakSection({ quick: options.quick, build, log });
    }
  } finally {
    removeBuild(build);
  }
  results.load.end = loadavg().map((l) => Math.round(l * 100) / 100);
  results.finishedAt = new Date().toISOString();
  results.durationMs = Date.now() - startedAt.getTime();
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${results.startedAt.replace(/:/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 1)}\n`);
  log(`results: ${file} (${Math.round(results.durationMs / 1000)} s)`);
  if (options.report) {
    const written = writeReport();
    for (const path of written.files) log(`report: ${path}`);
    console.log(`\n${written.summary}`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
