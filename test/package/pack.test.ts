/**
 * The package as npm would publish it: `npm pack` of a copy of this checkout (so the prepack
 * build runs and nothing races a colleague's `dist/`), then checks of the tarball itself:
 *
 * - the file list: dist/, src/, package.json, README.md, LICENSE, CHANGELOG.md and nothing
 *   else (no test/, bench/, marbles/, examples/, scripts/, docs/, tsconfig);
 * - source maps: every `sourceMappingURL` names a map in the tarball, and every map's `file`
 *   and `sources` are in the tarball;
 * - the packed package.json: no install-time script, repository/homepage/bugs present;
 * - `attw` (@arethetypeswrong/cli) on the tarball, ESM-only by design: every resolution mode
 *   including node10 is checked, and only `cjs-resolves-to-esm` is ignored (TypeScript's
 *   node16 CommonJS mode flags require() of ES modules, which Node >= 20.19 supports:
 *   test/docs/commonjs.test.ts);
 * - `publint --strict` on the tarball, suggestions included;
 * - a TypeScript consumer: `npm install <tarball>` into an empty project, then `tsc` with
 *   `skipLibCheck: false` over a file importing 'rxnat' and 'rxnat/testing', with @types/node
 *   (no error allowed) and without it (only errors about Node's own types allowed: the
 *   documented requirement). Also runs the packed `rxnat` (dist/cli/main.cjs): `--help`,
 *   `--version`, a command refused by its own bundle, and the npm bin link when npm made one.
 *
 * Offline: attw and publint read the local tarball. The consumer's `npm install` takes rxnat's
 * dependencies from npm's cache or the registry; when neither answers (a network error), the
 * tarball is unpacked into node_modules/rxnat and this checkout's rxjs and default-gateway are
 * linked next to it instead, and the test says so. Every child process has a time limit.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = (pkg: string, file: string): string => join(ROOT, 'node_modules', pkg, file);
const TSC = BIN('typescript', 'bin/tsc');
const ATTW = BIN('@arethetypeswrong/cli', 'dist/index.js');

/** Not copied into the staging checkout: ignored build output, caches, other tools' sandboxes. */
const SKIP_TOP = new Set(['node_modules', '.git', 'dist', 'build', 'reports', '.stryker-tmp', 'tmp-probe']);
/** Top-level entries the tarball may hold: `files` of package.json, plus what npm always adds. */
const ALLOWED_TOP_FILES = new Set(['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md']);
const ALLOWED_TOP_DIRS = new Set(['dist', 'src']);
const REQUIRED = [
  'package.json',
  'README.md',
  'LICENSE',
  'CHANGELOG.md',
  'dist/index.js',
  'dist/index.d.ts',
  'dist/testing/index.js',
  'dist/testing/index.d.ts',
  'dist/cli/main.cjs',
  'dist/cli/map.cjs',
  'src/index.ts',
];
const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall', 'prepare'];

let tmp = '';
let tarball = '';
/** Tarball contents, paths relative to the package root (`package/` stripped). */
let files = new Map<string, Buffer>();

/** The environment for a child npm: none of the outer `npm test`'s package or prefix variables. */
function npmEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(package_|lifecycle_|config_local_prefix$|config_dry_run$|config_json$)/i.test(key) || key === 'INIT_CWD') continue;
    env[key] = value;
  }
  env['npm_config_update_notifier'] = 'false';
  env['npm_config_fund'] = 'false';
  env['npm_config_audit'] = 'false';
  return env;
}

/** Runs npm (the one running this test when there is one), bounded in time. */
function npm(args: string[], cwd: string, timeoutMs: number): SpawnSyncReturns<string> {
  const execPath = process.env['npm_execpath'];
  const [command, argv] = execPath !== undefined && /npm-cli\.[cm]?js$/.test(execPath) ? [process.execPath, [execPath, ...args]] : ['npm', args];
  return spawnSync(command, argv, { cwd, env: npmEnv(), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

function output(run: SpawnSyncReturns<string>): string {
  const timedOut = run.error !== undefined ? `\n(${run.error.message})` : '';
  return `exit ${run.status} signal ${run.signal}${timedOut}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`;
}

/** The files of a .tgz (ustar, with pax `path` records), without the leading `package/`. */
function untar(gz: Buffer): Map<string, Buffer> {
  const data = gunzipSync(gz);
  const out = new Map<string, Buffer>();
  let paxPath: string | undefined;
  for (let at = 0; at + 512 <= data.length; ) {
    const header = data.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const field = (start: number, length: number): string => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1) || '0';
    const prefix = field(345, 155);
    const body = data.subarray(at + 512, at + 512 + size);
    at += 512 + Math.ceil(size / 512) * 512;
    if (type === 'x') {
      const match = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      paxPath = match?.[1];
      continue;
    }
    const name = paxPath ?? (prefix !== '' ? `${prefix}/${field(0, 100)}` : field(0, 100));
    paxPath = undefined;
    if (type !== '0' && type !== '') continue;
    out.set(name.replace(/^package\//, ''), Buffer.from(body));
  }
  return out;
}

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'rxnat-pack-'));
  const stage = join(tmp, 'stage');
  cpSync(ROOT, stage, {
    recursive: true,
    filter: (source) => {
      const rel = relative(ROOT, source);
      if (rel === '') return true;
      const parts = rel.split(sep);
      if (parts.length === 1 && (SKIP_TOP.has(rel) || rel.endsWith('.tgz'))) return false;
      return !(parts[0] === 'docs' && parts[1] === 'api') && !rel.endsWith('.tsbuildinfo');
    },
  });
  symlinkSync(join(ROOT, 'node_modules'), join(stage, 'node_modules'), 'dir');
  const packed = npm(['pack', '--pack-destination', tmp, '--loglevel', 'warn'], stage, 180_000);
  assert.equal(packed.status, 0, `npm pack failed\n${output(packed)}`);
  const tgz = readdirSync(tmp).filter((name) => name.endsWith('.tgz'));
  assert.equal(tgz.length, 1, `expected one tarball in ${tmp}, got ${JSON.stringify(tgz)}\n${output(packed)}`);
  tarball = join(tmp, tgz[0]!);
  files = untar(readFileSync(tarball));
});

after(() => {
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
});

test('the tarball holds dist/, src/, package.json, README, LICENSE and CHANGELOG, and nothing else', () => {
  const names = [...files.keys()].sort();
  const missing = REQUIRED.filter((name) => !files.has(name));
  assert.deepEqual(missing, [], `missing from the tarball: ${missing.join(', ')}`);
  const stray = names.filter((name) => {
    const [top] = name.split('/');
    return name.includes('/') ? !ALLOWED_TOP_DIRS.has(top!) : !ALLOWED_TOP_FILES.has(name);
  });
  assert.deepEqual(stray, [], `not meant for the tarball: ${stray.join(', ')}`);
  // dist/cli/ holds the command's CommonJS bundles (scripts/build-cli.mjs), no maps.
  const oddDist = names.filter((name) => name.startsWith('dist/') && !(name.startsWith('dist/cli/') ? /^dist\/cli\/[\w-]+\.cjs$/ : /\.(js|d\.ts)(\.map)?$/).test(name));
  assert.deepEqual(oddDist, [], `unexpected files in dist/: ${oddDist.join(', ')}`);
  const oddSrc = names.filter((name) => name.startsWith('src/') && !name.endsWith('.ts'));
  assert.deepEqual(oddSrc, [], `unexpected files in src/: ${oddSrc.join(', ')}`);
  assert.match(files.get('LICENSE')!.toString('utf8'), /^MIT License\n\nCopyright \(c\) \d{4} the rxnat authors\n/);
  assert.match(files.get('CHANGELOG.md')!.toString('utf8'), /^## \[Unreleased\]/m);
  assert.match(files.get('dist/cli/main.cjs')!.toString('utf8'), /^#!\/usr\/bin\/env node\n/, 'the bin needs its shebang');
  const pkg = JSON.parse(files.get('package.json')!.toString('utf8')) as { bin?: Record<string, string> };
  assert.deepEqual(pkg.bin, { rxnat: './dist/cli/main.cjs' });
});

test('every source map and declaration map is in the tarball, and so is every file it points at', () => {
  const problems: string[] = [];
  const maps = new Set<string>();
  for (const [name, content] of files) {
    if (!/\.(js|d\.ts)$/.test(name)) continue;
    const url = /\/\/# sourceMappingURL=(\S+)\s*$/.exec(content.toString('utf8'))?.[1];
    if (url === undefined) continue;
    if (url.startsWith('data:')) {
      problems.push(`${name}: inline source map (maps are separate files here)`);
      continue;
    }
    const map = posix.normalize(posix.join(posix.dirname(name), url));
    maps.add(map);
    if (!files.has(map)) problems.push(`${name}: its map ${map} is not in the tarball`);
  }
  for (const [name, content] of files) {
    if (!name.endsWith('.map')) continue;
    if (!maps.has(name)) problems.push(`${name}: no file in the tarball refers to this map`);
    const map = JSON.parse(content.toString('utf8')) as { file?: string; sourceRoot?: string; sources?: string[] };
    const dir = posix.join(posix.dirname(name), map.sourceRoot ?? '');
    if (map.file !== undefined && !files.has(posix.normalize(posix.join(posix.dirname(name), map.file)))) problems.push(`${name}: its file ${map.file} is not in the tarball`);
    if (!Array.isArray(map.sources) || map.sources.length === 0) problems.push(`${name}: no sources`);
    for (const source of map.sources ?? []) {
      const target = posix.normalize(posix.join(dir, source));
      if (target.startsWith('../') || !files.has(target)) problems.push(`${name}: source ${source} (${target}) is not in the tarball`);
    }
  }
  assert.ok(maps.size > 0, 'expected source maps in dist/');
  assert.deepEqual(problems, [], problems.join('\n'));
});

test('the packed package.json runs nothing at install and names its repository', () => {
  const pkg = JSON.parse(files.get('package.json')!.toString('utf8')) as Record<string, unknown> & { scripts?: Record<string, string> };
  const installTime = INSTALL_SCRIPTS.filter((name) => pkg.scripts?.[name] !== undefined);
  assert.deepEqual(installTime, [], `install-time scripts in the published package.json: ${installTime.join(', ')}`);
  assert.equal(pkg['license'], 'MIT');
  for (const field of ['repository', 'homepage', 'bugs']) assert.ok(pkg[field] !== undefined, `package.json has no ${field}`);
});

test('attw: the types resolve in every mode (ESM-only by design: cjs-resolves-to-esm ignored)', () => {
  const run = spawnSync(
    process.execPath,
    [ATTW, tarball, '--format', 'ascii', '--no-color', '--no-emoji', '--no-definitely-typed', '--ignore-rules', 'cjs-resolves-to-esm'],
    { cwd: tmp, encoding: 'utf8', timeout: 120_000, env: { ...process.env, FORCE_COLOR: '0' } },
  );
  assert.equal(run.status, 0, `attw found problems\n${output(run)}`);
});

test('publint --strict: no error, warning or suggestion', async () => {
  const bytes = readFileSync(tarball);
  const { messages, pkg } = await publint({
    pack: { tarball: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer },
    level: 'suggestion',
    strict: true,
  });
  const lines = messages.map((message) => `${message.type}: ${formatMessage(message, pkg, { color: false }) ?? message.code}`);
  assert.deepEqual(lines, [], lines.join('\n'));
});

test('a TypeScript consumer compiles against the installed tarball, with skipLibCheck off', async (t) => {
  const consumer = join(tmp, 'consumer');
  mkdirSync(consumer);
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'rxnat-consumer', version: '1.0.0', private: true, type: 'module' }, null, 2));

  const install = npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--fetch-retries=0', '--fetch-timeout=30000', tarball], consumer, 150_000);
  const installLog = `${install.stdout}\n${install.stderr}`;
  if (install.status === 0) {
    assert.doesNotMatch(installLog, /rxnat@[^\s]* \((preinstall|install|postinstall|prepare):/, `installing the tarball runs an install script\n${output(install)}`);
  } else if (/ENOTCACHED|EAI_AGAIN|ENOTFOUND|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network/i.test(installLog)) {
    // No registry and not all in npm's cache: same layout by hand, this checkout's dependencies.
    t.diagnostic(`npm install of the tarball needs the registry, which did not answer; unpacked it instead\n${install.stderr.trim().split('\n').slice(-3).join('\n')}`);
    rmSync(join(consumer, 'node_modules'), { recursive: true, force: true });
    for (const [name, content] of files) {
      const target = join(consumer, 'node_modules', 'rxnat', ...name.split('/'));
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, content);
    }
    for (const dependency of ['rxjs', 'default-gateway']) symlinkSync(join(ROOT, 'node_modules', dependency), join(consumer, 'node_modules', dependency), 'dir');
  } else {
    assert.fail(`npm install of the tarball failed\n${output(install)}`);
  }

  writeFileSync(
    join(consumer, 'index.ts'),
    [
      "import { mapPort, parseNat, extIp, natMap, natService, discoverNat, RxnatError, type MappingState, type Nat } from 'rxnat';",
      "import { startGatewaySimulator, MappingTable, type GatewaySimulator } from 'rxnat/testing';",
      "import type { Observable } from 'rxjs';",
      '',
      "const nat: Nat = extIp('203.0.113.7');",
      "const states: Observable<MappingState> = mapPort(nat, { protocol: 'tcp', internalPort: 8080 });",
      'export async function run(signal: AbortSignal): Promise<string> {',
      '  const sim: GatewaySimulator = await startGatewaySimulator();',
      "  const parsed = parseNat('any', sim.discoverOptions);",
      "  if (parsed !== null) await natMap(parsed, signal, 'udp', 4001, 4001, 'consumer');",
      '  await sim.close();',
      '  return [typeof natService, typeof discoverNat, typeof MappingTable, RxnatError.name, String(states)].join();',
      '}',
      '',
    ].join('\n'),
  );
  const compile = (types: string[]): SpawnSyncReturns<string> => {
    writeFileSync(
      join(consumer, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types },
        files: ['index.ts'],
      }),
    );
    return spawnSync(process.execPath, [TSC, '-p', 'tsconfig.json', '--pretty', 'false'], { cwd: consumer, encoding: 'utf8', timeout: 120_000 });
  };

  // Without @types/node: only errors that name Node's own types (the README's stated requirement).
  const bare = compile([]);
  const errors = `${bare.stdout}${bare.stderr}`.split('\n').filter((line) => / error TS\d+:/.test(line));
  const nodeTypes = /Cannot find module 'node:[\w/]+'|Cannot find (?:name|namespace) '(?:Buffer|NodeJS|process|global|require|__dirname|__filename)'/;
  const other = errors.filter((line) => !nodeTypes.test(line));
  assert.deepEqual(other, [], `without @types/node, errors other than missing Node types:\n${output(bare)}`);
  assert.ok(bare.status === 0 || errors.length > 0, `tsc failed without reporting errors\n${output(bare)}`);
  t.diagnostic(
    errors.length === 0
      ? 'without @types/node: compiles with skipLibCheck off'
      : `without @types/node (skipLibCheck off), ${errors.length} error(s), all about Node's types:\n${errors.map((line) => line.replace(/^.*node_modules\//, '')).join('\n')}`,
  );

  // With @types/node (this checkout's), nothing may fail.
  mkdirSync(join(consumer, 'node_modules', '@types'), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(consumer, 'node_modules', '@types', 'node'), 'dir');
  const withNode = compile(['node']);
  assert.equal(withNode.status, 0, `with @types/node the consumer does not compile\n${output(withNode)}`);

  // The packed command runs (help, --version and a command refused after its bundle loaded:
  // nothing leaves the machine), with its code cache in the test's own directory.
  const cli = (args: string[]): SpawnSyncReturns<string> =>
    spawnSync(process.execPath, [join(consumer, 'node_modules', 'rxnat', 'dist', 'cli', 'main.cjs'), ...args], {
      cwd: consumer,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, XDG_CACHE_HOME: join(tmp, 'cache'), DEBUG: '' },
    });
  const help = cli(['--help']);
  assert.equal(help.status, 0, output(help));
  assert.match(help.stdout, /rxnat/);
  const version = cli(['--version']);
  assert.equal(version.status, 0, output(version));
  assert.equal(version.stdout.trim(), (JSON.parse(files.get('package.json')!.toString('utf8')) as { version: string }).version);
  const refused = cli(['map', 'tcp', '8080', '--nat', 'none']);
  assert.equal(refused.status, 2, output(refused));
  assert.match(refused.stderr, /--nat none turns NAT traversal off/);
  // Installed by npm: the bin link, run as a program (shebang, mode, resolved through the link).
  const bin = join(consumer, 'node_modules', '.bin', 'rxnat');
  if (existsSync(bin)) {
    const linked = spawnSync(bin, ['--version'], { cwd: consumer, encoding: 'utf8', timeout: 30_000, env: { ...process.env, XDG_CACHE_HOME: join(tmp, 'cache') } });
    assert.equal(linked.status, 0, output(linked));
    assert.equal(linked.stdout, version.stdout);
  } else {
    t.diagnostic('no node_modules/.bin/rxnat (the tarball was unpacked by hand): the bin link is not checked');
  }
});
