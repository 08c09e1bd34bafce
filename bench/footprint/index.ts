/**
 * Footprint section: what each contender costs a project that installs it. Each package set is
 * installed alone (production dependencies only) into its own temp directory with the ordinary
 * npm client (from its cache, else the npm registry); then: packages installed, size of
 * node_modules, and time to import: a fresh `node` per sample, 10 rounds after a warm-up, each
 * round timing a bare `node` and every contender in rotating order (net = import - bare node of
 * the same round, median).
 *
 * rxnat is the current sources compiled and packed (`npm pack` of the build from
 * bench/lib/build.ts), installed from the tarball like any user would.
 *
 * @packageDocumentation
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RxnatBuild } from '../lib/build.js';
import { packageVersion } from '../lib/machine.js';
import { summarize } from '../lib/stats.js';
import type { FootprintEntry, FootprintResults } from '../lib/types.js';

export interface FootprintOptions {
  readonly quick: boolean;
  readonly build: RxnatBuild;
  readonly log: (line: string) => void;
}

interface Contender {
  readonly name: string;
  readonly install: readonly string[];
  readonly imports: readonly string[];
}

/** An installed contender (its directory is removed at the end of the section). */
interface Installed {
  readonly contender: Contender;
  readonly dir: string;
  entry: FootprintEntry;
}

const IMPORT_SAMPLES = 10;

function run(command: string, args: readonly string[], cwd: string, timeoutMs = 180_000): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: stderr + error.message, ms: performance.now() - started });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

const lastLines = (text: string): string => text.trim().split('\n').slice(-3).join(' | ');

/** Wall time of one fresh node importing `imports` (ESM, resolved from `cwd`). */
async function importOnce(cwd: string, imports: readonly string[]): Promise<number> {
  const code = imports.length === 0 ? '0' : `await Promise.all([${imports.map((m) => `import(${JSON.stringify(m)})`).join(', ')}]);`;
  const result = await run(process.execPath, ['--input-type=module', '-e', code], cwd, 30_000);
  if (result.code !== 0) throw new Error(`import of ${imports.join(', ')} failed: ${lastLines(result.stderr)}`);
  return result.ms;
}

function du(path: string, flag: '-sb' | '-sB1'): number | null {
  const result = spawnSync('du', [flag, path], { encoding: 'utf8' });
  const bytes = Number(result.stdout.split('\t')[0]);
  return result.status === 0 && Number.isFinite(bytes) ? bytes : null;
}

function failedEntry(contender: Contender, error: string): FootprintEntry {
  return {
    name: contender.name,
    install: contender.install,
    imports: contender.imports,
    packages: null,
    packageNames: [],
    installBytes: null,
    diskBytes: null,
    importMs: [],
    importSummary: null,
    netImportMs: null,
    audit: null,
    auditError: null,
    error: error.slice(0, 500),
  };
}

/** Installs one contender alone in a temp directory; counts and sizes it. */
async function install(contender: Contender): Promise<Installed> {
  const dir = mkdtempSync(join(tmpdir(), 'rxnat-bench-footprint-'));
  try {
    writeFileSync(join(dir, 'package.json'), `${JSON.stringify({ name: 'footprint', version: '1.0.0', private: true, type: 'module' })}\n`);
    const installed = await run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', ...contender.install], dir);
    if (installed.code !== 0) throw new Error(`npm install failed: ${lastLines(installed.stderr)}`);
    const ls = await run('npm', ['ls', '--all', '--parseable', '--omit=dev'], dir);
    const paths = new Set(ls.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '' && l !== dir));
    const packageNames = [...paths].map((p) => p.slice(p.lastIndexOf('node_modules/') + 'node_modules/'.length)).sort();
    const audit = await run('npm', ['audit', '--omit=dev', '--json'], dir, 60_000);
    let advisories: Record<string, number> | null = null;
    let auditError: string | null = null;
    try {
      const parsed = JSON.parse(audit.stdout) as { metadata?: { vulnerabilities?: Record<string, number> }; message?: string };
      advisories = parsed.metadata?.vulnerabilities ?? null;
      if (!advisories) auditError = parsed.message ?? 'no answer';
    } catch {
      auditError = audit.stderr.trim().split('\n').find((l) => l.includes('audit')) ?? 'no answer';
    }
    return {
      contender,
      dir,
      entry: {
        ...failedEntry(contender, ''),
        packages: paths.size,
        packageNames,
        installBytes: du(join(dir, 'node_modules'), '-sb'),
        diskBytes: du(join(dir, 'node_modules'), '-sB1'),
        audit: advisories,
        auditError,
        error: null,
      },
    };
  } catch (error) {
    return { contender, dir, entry: failedEntry(contender, (error as Error).message) };
  }
}

/** Packs the compiled rxnat; returns the tarball path, in a temp directory of its own. */
async function packRxnat(build: RxnatBuild): Promise<string> {
  if (build.source !== 'compiled') throw new Error(`rxnat could not be compiled: ${build.note}`);
  const out = mkdtempSync(join(tmpdir(), 'rxnat-bench-pack-'));
  const result = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', out], build.packageDir);
  const tarball = readdirSync(out).find((f) => f.endsWith('.tgz'));
  if (result.code !== 0 || !tarball) throw new Error(`npm pack failed: ${lastLines(result.stderr)}`);
  return join(out, tarball);
}

export async function runFootprint(options: FootprintOptions): Promise<FootprintResults> {
  const started = performance.now();
  const samples = options.quick ? 3 : IMPORT_SAMPLES;
  const npm = spawnSync('npm', ['--version'], { encoding: 'utf8' });
  if (npm.status !== 0) {
    options.log('footprint: skipped, npm is not available');
    return { skipped: 'npm not available', nodeStartupMs: [], nodeStartup: null, entries: [], durationMs: performance.now() - started };
  }
  const v = (name: string): string => `${name}@${packageVersion(name)}`;
  let tarball: string | undefined;
  const entries: FootprintEntry[] = [];
  const installed: Installed[] = [];
  const scratch = mkdtempSync(join(tmpdir(), 'rxnat-bench-node-'));
  try {
    const rxnat: Contender = { name: 'rxnat', install: [], imports: ['rxnat'] };
    try {
      tarball = await packRxnat(options.build);
    } catch (error) {
      entries.push(failedEntry(rxnat, (error as Error).message));
    }
    const contenders: Contender[] = [
      ...(tarball ? [{ ...rxnat, install: [tarball] }] : []),
      { name: "rxjs alone (rxnat's peer dependency)", install: [v('rxjs')], imports: ['rxjs'] },
      { name: "default-gateway alone (rxnat's dependency)", install: [v('default-gateway')], imports: ['default-gateway'] },
      { name: 'nat-upnp', install: [v('nat-upnp')], imports: ['nat-upnp'] },
      { name: 'nat-pmp', install: [v('nat-pmp')], imports: ['nat-pmp'] },
      { name: '@achingbrain/nat-port-mapper', install: [v('@achingbrain/nat-port-mapper')], imports: ['@achingbrain/nat-port-mapper'] },
      { name: '@silentbot1/nat-api', install: [v('@silentbot1/nat-api')], imports: ['@silentbot1/nat-api'] },
      {
        name: 'requested stack (rxjs + nat-upnp + nat-pmp + default-gateway)',
        install: [v('rxjs'), v('nat-upnp'), v('nat-pmp'), v('default-gateway')],
        imports: ['rxjs', 'nat-upnp', 'nat-pmp', 'default-gateway'],
      },
    ];
    // 1. Install each alone.
    for (const contender of contenders) {
      const one = await install(contender);
      installed.push(one);
      options.log(
        one.entry.error !== null
          ? `footprint: ${one.entry.name}: ${one.entry.error}`
          : `footprint: ${one.entry.name}: ${one.entry.packages} packages, ${((one.entry.installBytes ?? 0) / 1024).toFixed(0)} KiB`,
      );
    }
    // 2. Import times, interleaved: each round times a bare node, then every contender (order
    //    rotating), so that load from other work on the machine hits all alike. Round 0 warms up.
    const bare: Contender = { name: 'node', install: [], imports: [] };
    const timed: Installed[] = [{ contender: bare, dir: scratch, entry: failedEntry(bare, '') }, ...installed.filter((i) => i.entry.error === null)];
    const nodeStartupMs: number[] = [];
    const net = new Map<Installed, number[]>();
    for (let round = 0; round <= samples; round++) {
      const times = new Map<Installed, number>();
      for (let k = 0; k < timed.length; k++) {
        const one = timed[(k + round) % timed.length]!;
        try {
          times.set(one, await importOnce(one.dir, one.contender.imports));
        } catch (error) {
          one.entry = { ...one.entry, error: (error as Error).message.slice(0, 500) };
        }
      }
      if (round === 0) continue;
      const node = times.get(timed[0]!);
      if (node !== undefined) nodeStartupMs.push(node);
      for (const [one, ms] of times) {
        if (one === timed[0]) continue;
        one.entry.importMs.push(ms);
        if (node !== undefined) net.set(one, [...(net.get(one) ?? []), ms - node]);
      }
    }
    for (const one of installed) {
      one.entry = { ...one.entry, importSummary: summarize(one.entry.importMs) ?? null, netImportMs: summarize(net.get(one) ?? [])?.median ?? null };
      entries.push(one.entry);
      if (one.entry.error === null) {
        options.log(`footprint: ${one.entry.name}: import ${one.entry.importSummary?.median.toFixed(0)} ms (net of node start-up ${one.entry.netImportMs?.toFixed(0)} ms)`);
      }
    }
    return { skipped: null, nodeStartupMs, nodeStartup: summarize(nodeStartupMs) ?? null, entries, durationMs: performance.now() - started };
  } finally {
    if (tarball) rmSync(join(tarball, '..'), { recursive: true, force: true });
    for (const one of installed) rmSync(one.dir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
}
