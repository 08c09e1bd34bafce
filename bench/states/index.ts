/**
 * The state sections ("mapping states that never lie"), each scenario in a fresh process
 * (`child.ts`) with the simulator in that process, on 127.0.0.1 only:
 *
 * - `teardown`: 1,000 UPnP mappings (distinct internal ports) on a gateway that takes 20 ms per
 *   DeletePortMapping, all stopped at once: mappings left when every stream has completed, stop
 *   to all completed against the gateway's serial time (1,000 x 20 ms), last states with an error.
 * - `soak-short`: 1,000 mappings with 3 s leases, once on UPnP and once on PCP, for a window of
 *   `RXNAT_BENCH_SOAK_SECONDS` (default 120; 20 with `--quick`) on a gateway that cannot keep up
 *   (UPnP: every AddPortMapping 5 ms late, one at a time; PCP: silent 5 s every 20 s; see
 *   `soak-faults.ts`): each second, the streams that read `mapped`/`degraded` while the router's
 *   table holds no unexpired entry for them.
 *
 * @packageDocumentation
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { RXNAT_MODULE_ENV, RXNAT_TESTING_ENV, type RxnatBuild } from '../lib/build.js';
import type { ChildExit, ShortSoakResults, SoakRunResult, TeardownConfig, TeardownResults } from '../lib/types.js';
import type { SoakRun } from './soak.js';
import { describeSoakFaults, LIE_GRACE_MS, SOAK_FAULTS, soakWindowFigures, type FaultySoakConfig } from './soak-faults.js';
import type { StateJob, StateReply } from './child.js';
import type { TeardownRun } from './teardown.js';

export interface StateOptions {
  readonly quick: boolean;
  readonly build: RxnatBuild;
  readonly log: (line: string) => void;
}

/** The environment variable that sets the soak window per protocol, in seconds. */
export const SOAK_SECONDS_ENV = 'RXNAT_BENCH_SOAK_SECONDS';

export const TEARDOWN: TeardownConfig = { mappings: 1000, deleteDelayMs: 20, lifetimeSeconds: 3600, completionBoundMs: 120_000 };

/** The soak window: the env var, else 20 s with `--quick`, else 120 s. */
export function soakWindow(quick: boolean, env: NodeJS.ProcessEnv = process.env): { seconds: number; source: string } {
  const raw = env[SOAK_SECONDS_ENV];
  if (raw !== undefined && raw.trim() !== '') {
    const seconds = Number(raw);
    if (!Number.isInteger(seconds) || seconds < 1) throw new Error(`${SOAK_SECONDS_ENV} must be a positive integer (seconds), not ${JSON.stringify(raw)}`);
    return { seconds, source: `${SOAK_SECONDS_ENV}=${seconds}` };
  }
  return quick ? { seconds: 20, source: '--quick' } : { seconds: 120, source: 'default' };
}

export function soakConfigs(windowSeconds: number): FaultySoakConfig[] {
  const common = { mappings: 1000, lifetimeSeconds: 3, windowSeconds, rampBoundMs: 60_000, lieGraceMs: LIE_GRACE_MS } as const;
  return [
    { ...common, protocol: 'upnp', faults: SOAK_FAULTS.upnp },
    { ...common, protocol: 'pcp', faults: SOAK_FAULTS.pcp },
  ];
}

/** How long a child gets to end on its own after it reported. */
const EXIT_GRACE_MS = 5000;

/** Runs one job in a fresh process; resolves with its result and whether it then ended on its own. */
function runChild<T>(job: StateJob, build: RxnatBuild, log: (line: string) => void): Promise<T & Pick<ChildExit, 'exitedOnItsOwn'>> {
  return new Promise((resolve, reject) => {
    const child = fork(join(import.meta.dirname, 'child.ts'), [JSON.stringify(job)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, [RXNAT_MODULE_ENV]: build.index, [RXNAT_TESTING_ENV]: build.testing },
    });
    let reply: StateReply | undefined;
    let killer: NodeJS.Timeout | undefined;
    let killed = false;
    child.on('message', (message: StateReply) => {
      reply = message;
      // It disconnects after sending; it must then exit on its own (nothing left running).
      killer = setTimeout(() => {
        killed = true;
        log(`${job.kind}: the scenario process did not exit ${EXIT_GRACE_MS / 1000} s after reporting (something is still running); killing it`);
        child.kill('SIGKILL');
      }, EXIT_GRACE_MS);
    });
    child.on('exit', (code, signal) => {
      if (killer) clearTimeout(killer);
      if (!reply) reject(new Error(`${job.kind} process exited (${signal ?? code}) without a result`));
      else if (!reply.ok) reject(new Error(reply.error));
      else resolve({ ...(reply.result as T), exitedOnItsOwn: !killed && code === 0 });
    });
  });
}

const s = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

export async function runTeardownSection(options: StateOptions): Promise<TeardownResults> {
  const config = TEARDOWN;
  options.log(`teardown: ${config.mappings} UPnP mappings, ${config.deleteDelayMs} ms per DeletePortMapping, all stopped at once`);
  const run = await runChild<TeardownRun>({ kind: 'teardown', config }, options.build, options.log);
  const result: TeardownResults = { ...run, skipped: null, rxnat: options.build.note };
  options.log(
    `teardown: all mapped in ${s(result.timeToAllMappedMs)}; stop to ${result.completed === result.mappings ? 'all' : `${result.completed} of ${result.mappings}`} completed ` +
      `${s(result.stopToCompletedMs)} = ${result.ratioToSerial.toFixed(3)}x the serial ${s(result.serialDeleteMs)}; ` +
      `${result.leftAtCompletion} left on the gateway (${result.leftAfterGrace} after ${result.graceMs / 1000} s); ` +
      `${result.lastStates.withError} last states with an error; ${result.deleteRequests} deletes received` +
      `${result.exitedOnItsOwn ? '' : `; process did not exit on its own (${result.activeResourcesAfter.join(', ') || 'no handles listed'})`}` +
      (result.errors.length > 0 ? `; errors: ${result.errors.slice(0, 3).join('; ')}` : ''),
  );
  return result;
}

export async function runSoakSection(options: StateOptions): Promise<ShortSoakResults> {
  const started = performance.now();
  const window = soakWindow(options.quick);
  const runs: SoakRunResult[] = [];
  for (const config of soakConfigs(window.seconds)) {
    options.log(
      `soak-short: ${config.mappings} ${config.protocol} mappings, ${config.lifetimeSeconds} s leases, ${config.windowSeconds} s window (${window.source}); ` +
        `gateway fault in the window: ${describeSoakFaults(config.faults)}`,
    );
    const run = await runChild<SoakRun>({ kind: 'soak', config }, options.build, options.log);
    runs.push(run);
    const figures = soakWindowFigures(run);
    options.log(
      `soak-short ${config.protocol}: all mapped ${run.timeToAllMappedMs === null ? 'never' : `in ${s(run.timeToAllMappedMs)}`}; ` +
        `lies max ${run.lies.max} per sample, in ${run.lies.samplesWithLies}/${run.lies.samples} samples (${run.lies.samplesWithLiesOnTime ?? '-'} with the loop on time), ${run.lies.streams} streams ` +
        `(within ${run.lieGraceMs} ms of the router's expiry, not counted: max ${run.withinGrace.max}, in ${run.withinGrace.samples} samples); ` +
        `router's table per sample min ${figures?.table.min ?? '-'} median ${figures?.table.median ?? '-'}; ` +
        `unmapped per sample min ${figures?.unmapped.min ?? '-'} max ${figures?.unmapped.max ?? '-'}; ` +
        `mapped per sample min ${run.mappedPerSample?.min ?? '-'} median ${run.mappedPerSample?.median ?? '-'}; ` +
        (run.silentPhases.length > 0 ? `silent ${run.silentPhases.map((p) => `${p.from}-${p.to} s`).join(', ')}; ` : '') +
        `${Math.round(run.windowRequests.perSecond)} requests/s; CPU ${run.cpuPercent.toFixed(0)} %, loop delay p99 ${run.eventLoopDelayMs.p99.toFixed(1)} ms; ` +
        `teardown ${s(run.teardown.ms)}, ${run.teardown.leftOnGateway} left` +
        `${run.exitedOnItsOwn ? '' : `; process did not exit on its own (${run.activeResourcesAfter.join(', ') || 'no handles listed'})`}` +
        (run.errors.length > 0 ? `; errors: ${run.errors.slice(0, 3).join('; ')}` : ''),
    );
  }
  return { skipped: null, rxnat: options.build.note, windowSource: window.source, runs, durationMs: performance.now() - started };
}
