/**
 * Micro-benchmark of the debug logger: what a log call costs when its namespace is disabled (the
 * case on every request of every mapping when `DEBUG` is unset or excludes it) and when it is
 * enabled (formatting only; every contestant writes to the same no-op sink, so stderr is out of
 * the figures), for rxnat's own logger against `debug` and `obug`, in the same process.
 *
 *   node --import tsx bench/micro/logger.ts [--quick]
 *
 * Every contestant runs under `DEBUG='rxnat:*,-rxnat:pmp'` and logs to `rxnat:pmp` (disabled) or
 * `rxnat:map` (enabled). `debug` and `obug` are measured twice: called directly through one
 * pre-created debugger per namespace (their best case), and behind rxnat's `Logger` interface,
 * which names the namespace on each call and so needs a namespace → debugger lookup (what
 * rxnat would ship if it used them). `v0.1` is the logger this one replaced, which rebuilt its
 * patterns on every call. Each measurement is a fresh loop function (its own JIT feedback),
 * timed in process CPU time; rounds rotate through the contestants, and the figure is the median
 * of the rounds.
 *
 * @packageDocumentation
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatWithOptions, type InspectOptions } from 'node:util';
import { createDebug as createObug, enable as enableObug } from 'obug';
import { createDebugLogger, type Logger } from '../../src/core/logger.js';
import { summarize } from '../lib/stats.js';

const quick = process.argv.includes('--quick');
const ROUNDS = quick ? 5 : 11;
const DISABLED_CALLS = quick ? 2_000_000 : 10_000_000;
const ENABLED_CALLS = quick ? 50_000 : 300_000;
const NAMESPACES = 'rxnat:*,-rxnat:pmp';
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The part of `debug`'s API used here (it ships no types). */
interface DebugFn {
  (formatter: string, ...args: unknown[]): void;
  log: (...args: unknown[]) => void;
  inspectOpts?: InspectOptions;
  readonly enabled: boolean;
}
interface DebugModule {
  (namespace: string): DebugFn;
  enable(namespaces: string): void;
}
const require = createRequire(import.meta.url);
const createDebug = require('debug') as DebugModule;

let sunk = 0;
const sink = (line: string): void => {
  sunk += line.length;
};

// --- contestants --------------------------------------------------------------------------

const ours = createDebugLogger({ source: () => NAMESPACES, write: sink });

/** The logger before this change, verbatim but for the sink: patterns rebuilt on every call. */
const v01: Logger = (() => {
  const patterns = (): RegExp[] => {
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.DEBUG ?? '';
    return env
      .split(/[\s,]+/)
      .filter((p) => p && !p.startsWith('-'))
      .map((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`));
  };
  const errorReplacer = (_key: string, value: unknown): unknown => (value instanceof Error ? { name: value.name, message: value.message } : value);
  return {
    debug(namespace, message, data) {
      if (!patterns().some((p) => p.test(namespace))) return;
      sink(`${namespace} ${message}${data ? ` ${JSON.stringify(data, errorReplacer)}` : ''}`);
    },
  };
})();

/** `log` as the library's own, minus the write to stderr. */
function libraryLog(this: { inspectOpts?: InspectOptions }, ...args: unknown[]): void {
  sink(formatWithOptions(this.inspectOpts ?? {}, ...args));
}

createDebug.enable(NAMESPACES);
const debugFn = (namespace: string): DebugFn => Object.assign(createDebug(namespace), { log: libraryLog });
const debugPmp = debugFn('rxnat:pmp');
const debugMap = debugFn('rxnat:map');

enableObug(NAMESPACES);
const obugFn = (namespace: string) => Object.assign(createObug(namespace), { log: libraryLog });
const obugPmp = obugFn('rxnat:pmp');
const obugMap = obugFn('rxnat:map');

/** rxnat's `Logger` on top of a `debug`-like factory: one debugger per namespace, cached. */
const behindLogger = (make: (namespace: string) => (formatter: string, ...args: unknown[]) => void): Logger => {
  const byNamespace = new Map<string, (formatter: string, ...args: unknown[]) => void>();
  return {
    debug(namespace, message, data) {
      let log = byNamespace.get(namespace);
      if (log === undefined) byNamespace.set(namespace, (log = make(namespace)));
      if (data === undefined) log('%s', message);
      else log('%s %j', message, data);
    },
  };
};
const debugLogger = behindLogger(debugFn);
const obugLogger = behindLogger(obugFn);

// --- measurement --------------------------------------------------------------------------

const data = { port: 8080, error: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) };
const message = 'send to 192.168.1.1:5351: 0000';

interface Contestant {
  readonly name: string;
  readonly disabled: () => void;
  readonly enabled: () => void;
}
const contestants: Contestant[] = [
  { name: 'baseline (empty call)', disabled: () => sink(''), enabled: () => sink('') },
  { name: 'rxnat (ours)', disabled: () => ours.debug('rxnat:pmp', message, data), enabled: () => ours.debug('rxnat:map', message, data) },
  { name: 'debug, direct', disabled: () => debugPmp('%s %j', message, data), enabled: () => debugMap('%s %j', message, data) },
  { name: 'debug, behind Logger', disabled: () => debugLogger.debug('rxnat:pmp', message, data), enabled: () => debugLogger.debug('rxnat:map', message, data) },
  { name: 'obug, direct', disabled: () => obugPmp('%s %j', message, data), enabled: () => obugMap('%s %j', message, data) },
  { name: 'obug, behind Logger', disabled: () => obugLogger.debug('rxnat:pmp', message, data), enabled: () => obugLogger.debug('rxnat:map', message, data) },
  { name: 'v0.1 (replaced)', disabled: () => v01.debug('rxnat:pmp', message, data), enabled: () => v01.debug('rxnat:map', message, data) },
];

/**
 * ns per call of `fn` over `calls` calls, in a loop compiled for this measurement alone. The clock
 * is the process's CPU time, not the wall: on a shared machine the wall clock also counts the
 * time other processes held the CPU, which inflates every figure alike (ratios hold either way).
 */
const time = (fn: () => void, calls: number): number => {
  const loop = new Function('fn', 'n', 'for (let i = 0; i < n; i++) fn();') as (fn: () => void, n: number) => void;
  loop(fn, Math.min(calls, 100_000)); // warm-up: let the JIT settle before the clock starts
  const start = process.cpuUsage();
  loop(fn, calls);
  const { user, system } = process.cpuUsage(start);
  return ((user + system) * 1_000) / calls;
};

const measure = (pick: (c: Contestant) => () => void, calls: number, slow: (c: Contestant) => boolean): Map<string, number> => {
  const samples = new Map<string, number[]>(contestants.map((c) => [c.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // rotate the order so no contestant always runs first (cold) or last (after GC pressure)
    for (let k = 0; k < contestants.length; k++) {
      const c = contestants[(round + k) % contestants.length]!;
      samples.get(c.name)!.push(time(pick(c), slow(c) ? Math.ceil(calls / 20) : calls));
    }
  }
  return new Map([...samples].map(([name, s]) => [name, summarize(s)!.median]));
};

const isV01 = (c: Contestant): boolean => c.name.startsWith('v0.1');
// v0.1 reads process.env on every call, so it would read the DEBUG the libraries' enable() saved
process.env.DEBUG = NAMESPACES;
const disabled = measure((c) => c.disabled, DISABLED_CALLS, isV01);
const enabled = measure((c) => c.enabled, ENABLED_CALLS, () => false);

// --- install footprint ----------------------------------------------------------------------

const bytesUnder = (path: string): { bytes: number; files: number } => {
  const stat = statSync(path);
  if (!stat.isDirectory()) return { bytes: stat.size, files: 1 };
  let bytes = 0;
  let files = 0;
  for (const entry of readdirSync(path)) {
    const sub = bytesUnder(join(path, entry));
    bytes += sub.bytes;
    files += sub.files;
  }
  return { bytes, files };
};
/** A package and its production dependencies as installed here (hoisted layout). */
const footprint = (name: string): { packages: string[]; bytes: number; version: string } => {
  const seen = new Set<string>();
  let bytes = 0;
  const visit = (pkg: string): void => {
    if (seen.has(pkg)) return;
    seen.add(pkg);
    const dir = join(root, 'node_modules', pkg);
    bytes += bytesUnder(dir).bytes;
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(manifest.dependencies ?? {})) visit(dep);
  };
  visit(name);
  const { version } = JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
  return { packages: [...seen], bytes, version };
};

// --- report -------------------------------------------------------------------------------

const pad = (s: string, n: number): string => s.padEnd(n);
const num = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1)).padStart(7);
const oursDisabled = disabled.get('rxnat (ours)')!;
const oursEnabled = enabled.get('rxnat (ours)')!;
const baseline = disabled.get('baseline (empty call)')!;
console.log(`logger micro-benchmark — node ${process.version}, ${ROUNDS} rounds, median ns of CPU time per call; DEBUG='${NAMESPACES}'`);
console.log(`${pad('contestant', 24)} ${'disabled ns'.padStart(11)} ${'÷ ours'.padStart(7)} ${'enabled ns'.padStart(11)} ${'÷ ours'.padStart(7)}`);
for (const c of contestants) {
  const d = disabled.get(c.name)!;
  const e = enabled.get(c.name)!;
  console.log(`${pad(c.name, 24)} ${num(d).padStart(11)} ${(d / oursDisabled).toFixed(2).padStart(7)} ${num(e).padStart(11)} ${(e / oursEnabled).toFixed(2).padStart(7)}`);
}
const ratio = (name: string): string => (oursDisabled / disabled.get(name)!).toFixed(2);
console.log(
  `\ndisabled call, ours ÷ debug: ${ratio('debug, direct')} (direct), ${ratio('debug, behind Logger')} (behind Logger); ` +
    `ours ÷ obug: ${ratio('obug, direct')}, ${ratio('obug, behind Logger')}; ours − empty call: ${(oursDisabled - baseline).toFixed(1)} ns`,
);
const ownSource = statSync(join(root, 'src', 'core', 'logger.ts')).size;
console.log('\ninstall footprint (production dependencies, as installed in node_modules):');
console.log(`  rxnat (ours)  0 packages, 0 B (src/core/logger.ts is ${(ownSource / 1024).toFixed(1)} kB of source)`);
for (const name of ['debug', 'obug']) {
  const f = footprint(name);
  console.log(`  ${pad(`${name}@${f.version}`, 13)} ${f.packages.length} package(s) (${f.packages.join(', ')}), ${(f.bytes / 1024).toFixed(1)} kB`);
}
if (sunk < 0) console.log(sunk); // keeps the sink observable
