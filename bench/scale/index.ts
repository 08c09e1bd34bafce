/**
 * Scale section: many mapping streams against gateway simulators on loopback, each scenario in
 * a fresh process (`client.ts`, with `--expose-gc`) so memory and CPU belong to it alone.
 *
 * @packageDocumentation
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import { RXNAT_MODULE_ENV, RXNAT_TESTING_ENV, type RxnatBuild } from '../lib/build.js';
import type { ScaleResults, ScaleScenarioResult } from '../lib/types.js';
import type { ScenarioConfig } from './client.js';

export interface ScaleOptions {
  /** Smaller scenarios (for a quick look). */
  readonly quick: boolean;
  /** The rxnat under test. */
  readonly build: RxnatBuild;
  readonly log: (line: string) => void;
}

/** The scenarios: the two, plus the limiter's scope when every stream discovers on its own. */
export function scenarios(quick: boolean): ScenarioConfig[] {
  const scale = quick ? 0.1 : 1;
  const common = { protocol: 'pmp', limit: 4, replyDelayMs: 1 } as const;
  return [
    { ...common, name: '1,000 streams, 1 gateway', streams: Math.round(1000 * scale), gateways: 1, lifetimeSeconds: 15, nat: 'shared', phases: 'full' },
    { ...common, name: '10,000 streams, 100 gateways', streams: Math.round(10_000 * scale), gateways: 100, lifetimeSeconds: 45, nat: 'shared', phases: 'full' },
    {
      ...common,
      name: '1,000 streams, 1 gateway, one discovery per stream',
      streams: Math.round(1000 * scale),
      gateways: 1,
      lifetimeSeconds: 15,
      nat: 'per-stream',
      phases: 'mapping',
    },
  ];
}

function runInProcess(config: ScenarioConfig, build: RxnatBuild): Promise<ScaleScenarioResult> {
  return new Promise((resolve, reject) => {
    const child = fork(join(import.meta.dirname, 'client.ts'), [JSON.stringify(config)], {
      execArgv: ['--import', 'tsx', '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, [RXNAT_MODULE_ENV]: build.index, [RXNAT_TESTING_ENV]: build.testing },
    });
    let settled = false;
    child.on('message', (message: { ok: true; result: ScaleScenarioResult } | { ok: false; error: string }) => {
      settled = true;
      if (message.ok) resolve(message.result);
      else reject(new Error(message.error));
    });
    child.on('exit', (code, signal) => {
      if (!settled) reject(new Error(`scale client exited (${signal ?? code}) without a result`));
    });
  });
}

export async function runScale(options: ScaleOptions): Promise<ScaleResults> {
  const started = performance.now();
  const results: ScaleScenarioResult[] = [];
  for (const config of scenarios(options.quick)) {
    options.log(`scale: ${config.name} (${config.protocol}, lease ${config.lifetimeSeconds} s, limit ${config.limit}, reply delay ${config.replyDelayMs} ms)`);
    try {
      const result = await runInProcess(config, options.build);
      results.push(result);
      options.log(
        `scale: all mapped in ${Math.round(result.timeToAllMappedMs)} ms; peak in flight ${result.peakInFlight.overall}/${config.limit}; ` +
          `${Math.round(result.memory.heapPerMappingBytes)} B heap per mapping; idle CPU ${result.idle ? result.idle.cpuPercent.toFixed(2) : '-'} %; ` +
          `teardown ${Math.round(result.teardown.timeToEmptyMs)} ms, ${result.teardown.leftOnSimulators} left` +
          (result.errors.length > 0 ? `; errors: ${result.errors.join('; ')}` : ''),
      );
    } catch (error) {
      options.log(`scale: ${config.name} failed: ${(error as Error).message}`);
      throw error;
    }
  }
  return { skipped: null, rxnat: options.build.note, scenarios: results, durationMs: performance.now() - started };
}
