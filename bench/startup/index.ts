/**
 * Start-up section: how long `rxnat map` takes from spawn to its first request on the wire,
 * next to Node's own start-up, and whole processes to a first mapping against miniupnpd next to
 * `upnpc` and `natpmpc`.
 *
 * - spawn → first request: in a private network namespace (`unshare -n`, nothing in it reaches
 *   any real network) whose default route goes via 192.168.1.1, an address of its own loopback
 *   where `driver.ts` listens on udp 5351 and 1900. `rxnat map` with no options (`--nat any`,
 *   the default gateway read from /proc/net/route), `--nat pmp`, `--nat pmp:IP`, `--nat upnp`;
 *   against `node -e 0` (spawn → exit) and a bare `node -e` sending one datagram (the floor of
 *   any Node client). Nobody answers: each run is killed at its first datagram (the warm-up
 *   run 1.5 s after it, so that rxnat writes its code cache as a first run does).
 * - whole process → first `mapped`: the latency section's process contestants (`node -e 0`,
 *   `natpmpc -a`, `upnpc -i -a`, `upnpc -u URL -a`, `rxnat map --nat pmp:GW`, `--nat upnp`,
 *   `--nat any`) against miniupnpd in the gateway lab (needs root and namespaces).
 *
 * The CLI measured is the package's: tsc's build with the CLI bundled (bench/lib/build.ts).
 *
 * @packageDocumentation
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { RxnatBuild } from '../lib/build.js';
import { ROOT } from '../lib/machine.js';
import { summarize } from '../lib/stats.js';
import type { StartupContestantResult, StartupResults } from '../lib/types.js';
import type { DriverOutput, StartupSpec } from './driver.js';

export interface StartupOptions {
  readonly runs: number;
  readonly build: RxnatBuild;
  readonly log: (line: string) => void;
  /** Also run the whole-process rows in the gateway lab (default true). */
  readonly lab?: boolean;
}

/** The private namespace: loopback up, a veth pair kept inside, default via 192.168.1.1 on loopback. */
export const SANDBOX_SETUP = [
  'ip link set lo up',
  'ip link add v0 type veth peer name v1',
  'ip link set v0 up',
  'ip link set v1 up',
  'ip addr add 192.168.1.10/24 dev v0',
  'ip route add default via 192.168.1.1 dev v0',
  'ip addr add 192.168.1.1/32 dev lo',
].join(' && ');

const GATEWAY = '192.168.1.1';

/** The spawn → first request contestants, in report order. */
export function startupSpecs(cli: readonly string[]): StartupSpec[] {
  const rxnat = (id: string, label: string, args: readonly string[]): StartupSpec => ({ id, label, command: [...cli, ...args], until: 'request' });
  return [
    { id: 'node.exit', label: 'node -e 0 (spawn to exit)', command: [process.execPath, '-e', '0'], until: 'exit' },
    {
      id: 'node.request',
      label: 'floor: node -e sending one datagram',
      command: [process.execPath, '-e', `require('node:dgram').createSocket('udp4').send('x', 5351, '${GATEWAY}', () => process.exit(0))`],
      until: 'request',
    },
    { id: 'rxnat.version', label: 'rxnat --version (spawn to exit)', command: [...cli, '--version'], until: 'exit' },
    rxnat('rxnat.map', 'rxnat map tcp 41001 (defaults: --nat any, default gateway)', ['map', 'tcp', '41001']),
    rxnat('rxnat.map.pmp', 'rxnat map tcp 41002 --nat pmp (default gateway)', ['map', 'tcp', '41002', '--nat', 'pmp']),
    rxnat('rxnat.map.pmp.ip', 'rxnat map tcp 41003 --nat pmp:GW', ['map', 'tcp', '41003', '--nat', `pmp:${GATEWAY}`]),
    rxnat('rxnat.map.upnp', 'rxnat map tcp 41004 --nat upnp', ['map', 'tcp', '41004', '--nat', 'upnp']),
  ];
}

/** Whether a private network namespace can be made here. */
export function sandboxAvailable(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  const probe = spawnSync('unshare', ['-n', 'sh', '-c', `${SANDBOX_SETUP} && true`], { encoding: 'utf8', timeout: 10_000 });
  if (probe.error) return `unshare: ${probe.error.message}`;
  return probe.status === 0 ? null : `cannot make a network namespace (needs root, unshare and ip): ${probe.stderr.trim().split('\n').slice(-1)[0] ?? ''}`;
}

const quote = (arg: string): string => `'${arg.replace(/'/g, `'\\''`)}'`;

function runDriver(specs: readonly StartupSpec[], runs: number): Promise<DriverOutput> {
  const driver = [process.execPath, '--import', 'tsx', join(ROOT, 'bench', 'startup', 'driver.ts'), JSON.stringify({ specs, runs, timeoutMs: 10_000 })];
  return new Promise((resolve, reject) => {
    const child = spawn('unshare', ['-n', 'sh', '-c', `${SANDBOX_SETUP} && exec ${driver.map(quote).join(' ')}`], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as DriverOutput);
      } catch {
        reject(new Error(`start-up driver exited ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
      }
    });
  });
}

export async function runStartup(options: StartupOptions): Promise<StartupResults> {
  const started = performance.now();
  const cli = { command: options.build.cli, source: options.build.source, note: options.build.note };
  const unavailable = sandboxAvailable();
  let spawnRows: StartupContestantResult[] = [];
  let spawnSkipped: string | null = unavailable;
  if (unavailable === null) {
    const specs = startupSpecs(options.build.cli);
    options.log(`startup: ${specs.length} contestants x (1 warm-up + ${options.runs} runs), spawn to first request, in a private network namespace`);
    try {
      const output = await runDriver(specs, options.runs);
      spawnRows = specs.map((spec, i) => {
        const r = output.results[i]!;
        return {
          id: spec.id,
          label: spec.label,
          until: spec.until,
          samplesMs: r.samplesMs,
          samplesRound: r.samplesRound,
          cpuMs: r.cpuMs,
          runQueueMs: r.runQueueMs,
          failures: r.failures,
          firstRequest: r.firstBytes,
          summary: summarize(r.samplesMs) ?? null,
        };
      });
    } catch (error) {
      spawnSkipped = (error as Error).message;
    }
  } else {
    options.log(`startup: spawn-to-first-request skipped: ${unavailable}`);
  }
  let processRows: StartupResults['process'] = null;
  if (options.lab !== false) {
    const { runLatency } = await import('../latency/index.js');
    processRows = await runLatency({ runs: options.runs, build: options.build, log: options.log, filter: (spec) => spec.kind === 'process' });
  }
  return { skipped: spawnSkipped, runsPerContestant: options.runs, cli, spawn: spawnRows, process: processRows, durationMs: performance.now() - started };
}
