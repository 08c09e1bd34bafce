/**
 * What `rxnat` loads before it answers: `--help` and usage errors must not load rxjs, the
 * protocol stacks or any command (main.ts imports a command only to run it); a command loads
 * the backend its `--nat` names and no other; on Linux the default gateway comes from
 * /proc/net/route, so neither `default-gateway` nor execa is loaded. Checked by the modules a
 * child process loads, for the sources (under tsx) and for the bundled CLI the package ships
 * (main.cjs, and one CommonJS bundle per command, compiled through a V8 code cache): each
 * command runs from its own bundle, the demo's simulator is in no other, and the code cache is
 * used on a second run and survives a damaged entry (no timing: the machine may be busy).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RECORDER = join(ROOT, 'test', 'cli', 'support', 'load-recorder.mjs');
/** CommonJS requires and vm.Script compilations (the bundled CLI): preloaded with --import too. */
const REQUIRE_RECORDER = join(ROOT, 'test', 'cli', 'support', 'require-recorder.mjs');
const FIRST_REQUEST = join(ROOT, 'test', 'cli', 'support', 'first-request.mjs');
/** How to start a CLI: Node's options, then the script. */
interface Cli {
  readonly nodeArgs: readonly string[];
  readonly script: string;
  /** Added to the child's environment (the bundled CLI's code cache directory). */
  readonly env?: Readonly<Record<string, string>>;
}
const SOURCES: Cli = { nodeArgs: ['--import', 'tsx'], script: join(ROOT, 'src', 'cli', 'main.ts') };
/** `node <options> --import RECORDER <script> <args>`. */
const recorded = (cli: Cli, args: readonly string[]): string[] => [...cli.nodeArgs, '--import', RECORDER, cli.script, ...args];

/** Runs `rxnat <args>` (no network: help, usage errors, --nat none) and lists the modules it loaded. */
async function loadedBy(args: readonly string[], cli: Cli = SOURCES, env: Readonly<Record<string, string>> = {}): Promise<{ code: number; stdout: string; stderr: string; modules: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'rxnat-load-'));
  const log = join(dir, 'modules.txt');
  try {
    const child = spawn(process.execPath, recorded(cli, args), {
      cwd: ROOT,
      env: { ...process.env, DEBUG: '', ...cli.env, ...env, RXNAT_LOAD_LOG: log },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 137)));
    clearTimeout(timer);
    let modules: string[] = [];
    try {
      modules = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
    } catch {
      // nothing loaded through the hooks
    }
    return { code, stdout, stderr, modules };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A private network namespace (`unshare -n`) whose default route goes via 192.168.1.1, an address on its loopback. */
const NETNS_SETUP = [
  'ip link set lo up',
  'ip link add v0 type veth peer name v1',
  'ip link set v0 up',
  'ip link set v1 up',
  'ip addr add 192.168.1.10/24 dev v0',
  'ip route add default via 192.168.1.1 dev v0',
  'ip addr add 192.168.1.1/32 dev lo',
].join(' && ');
const NETNS_GATEWAY = '192.168.1.1';
const netnsAvailable = (): boolean =>
  process.platform === 'linux' && spawnSync('unshare', ['-n', 'sh', '-c', `${NETNS_SETUP} && true`], { stdio: 'ignore', timeout: 10_000 }).status === 0;

/**
 * Runs `node <cli> <args>` under the load recorder until its first datagram reaches
 * `host:port` (a socket of first-request.mjs), then kills it; inside a private network
 * namespace when `netns` (only loopback and that namespace's own addresses are ever used).
 */
function firstRequestOf(cli: Cli, args: readonly string[], host: string, port: number, netns = false): { datagram: Buffer | null; error: string | null; modules: string[] } {
  const dir = mkdtempSync(join(tmpdir(), 'rxnat-load-'));
  const log = join(dir, 'modules.txt');
  try {
    const command = [process.execPath, ...recorded(cli, args)];
    const driver = [process.execPath, FIRST_REQUEST, JSON.stringify(command), host, String(port)];
    const quoted = driver.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    const env = { ...process.env, DEBUG: '', ...cli.env, RXNAT_LOAD_LOG: log };
    const run = netns ? spawnSync('unshare', ['-n', 'sh', '-c', `${NETNS_SETUP} && exec ${quoted}`], { cwd: ROOT, encoding: 'utf8', env, timeout: 60_000 })
      : spawnSync(driver[0]!, driver.slice(1), { cwd: ROOT, encoding: 'utf8', env, timeout: 60_000 });
    let reply: { datagram?: string; error?: string };
    try {
      reply = JSON.parse(run.stdout.trim().split('\n').pop() ?? '') as typeof reply;
    } catch {
      reply = { error: `driver exited ${run.status}: ${run.stderr.slice(-500)}` };
    }
    let modules: string[] = [];
    try {
      modules = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
    } catch {
      // nothing loaded through the hooks
    }
    return { datagram: reply.datagram !== undefined ? Buffer.from(reply.datagram, 'hex') : null, error: reply.error ?? null, modules };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A NAT-PMP request (RFC 6886): version 0, opcode 0 (external address), 1 (UDP) or 2 (TCP). */
const isPmpRequest = (datagram: Buffer | null): boolean => datagram !== null && datagram[0] === 0 && [0, 1, 2].includes(datagram[1]!);
const gatewayHelpers = (modules: readonly string[]): string[] => modules.filter((m) => /\/node_modules\/(default-gateway|execa)\/|^node:child_process$/.test(m));
/** A free UDP port on loopback for this run (the kernel's choice, then released). */
function freeUdpPort(): number {
  const probe = spawnSync(process.execPath, ['-e', "const s=require('dgram').createSocket('udp4');s.bind(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"], { encoding: 'utf8' });
  return Number(probe.stdout.trim());
}

const heavy = (modules: readonly string[]): string[] =>
  modules.filter((m) => /\/node_modules\/rxjs\/|\/src\/protocols\/|\/src\/transport\/|\/src\/cli\/commands\/|\/src\/core\/map-port|\/src\/parse-nat|\/src\/discover/.test(m));

describe('rxnat start-up', { concurrency: 2 }, () => {
  it('--help, a command\'s --help, bare rxnat and usage errors load neither rxjs nor a backend nor a command', async () => {
    const cases: [string[], number][] = [
      [['--help'], 0],
      [['map', 'tcp', '8080', '--help'], 0],
      [['status', '--help'], 0],
      [[], 2],
      [['map', 'tcp', '-5'], 2],
      [['map', 'tcp', '8080', '--lifetim', '5'], 2],
      [['frob'], 2],
    ];
    for (const [args, code] of cases) {
      const r = await loadedBy(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.modules.some((m) => m.endsWith('/src/cli/main.ts')), `the recorder saw main.ts: ${r.modules.join(', ')}`);
      assert.deepEqual(heavy(r.modules), [], `rxnat ${args.join(' ')} loaded only what it needs`);
    }
  });

  it('a command loads what it needs (the recorder sees rxjs and the backends then)', async () => {
    // --nat none is refused by the command itself, after it was imported: no network.
    const r = await loadedBy(['list', '--nat', 'none']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--nat none turns NAT traversal off/);
    const loaded = heavy(r.modules);
    assert.ok(loaded.some((m) => m.includes('/src/cli/commands/list.ts')), loaded.join(', '));
    assert.ok(loaded.some((m) => m.includes('/node_modules/rxjs/')), loaded.join(', '));
    assert.ok(loaded.some((m) => m.includes('/src/protocols/')), loaded.join(', '));
  });
});

describe('rxnat map: the backend it names, and the default gateway without a child process', { concurrency: 1 }, () => {
  it('--nat pmp:IP (sources) loads NAT-PMP only: no UPnP, no PCP, no default-gateway, no execa', () => {
    const port = freeUdpPort();
    const r = firstRequestOf(SOURCES, ['map', 'tcp', '8080', '--nat', 'pmp:127.0.0.1', '--pmp-port', String(port)], '127.0.0.1', port);
    assert.equal(r.error, null);
    assert.ok(isPmpRequest(r.datagram), `a NAT-PMP request: ${r.datagram?.toString('hex')}`);
    // The request leaves before the command loads (early-search.ts); how much of the command the
    // sources' ES loader has read by the time the datagram is seen depends on the machine, so
    // "before" is shown by the bundle's test below and test/cli/map.test.ts, not here.
    assert.ok(r.modules.some((m) => m.includes('/src/protocols/pmp/codec.ts')), 'the NAT-PMP codec built it');
    assert.deepEqual(r.modules.filter((m) => /\/src\/protocols\/upnp\/|\/src\/protocols\/pcp\/|\/src\/discover\.ts$|^node:crypto$/.test(m)), [], 'no other backend');
    assert.deepEqual(gatewayHelpers(r.modules), []);
  });
});

describe('the bundled CLI (scripts/build-cli.mjs, as the package ships it)', { concurrency: 1 }, () => {
  let pkg = '';
  let cli: Cli = SOURCES;
  /** The CLI's files among what a child loaded, once each (both recorders may see main.cjs). */
  const cliFiles = (modules: readonly string[]): string[] => [...new Set(modules.filter((m) => m.startsWith('file:') && m.includes('/dist/cli/')).map((m) => m.slice(m.lastIndexOf('/') + 1)))];
  before(() => {
    pkg = mkdtempSync(join(tmpdir(), 'rxnat-bundle-'));
    copyFileSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    symlinkSync(join(ROOT, 'node_modules'), join(pkg, 'node_modules'), 'dir');
    const build = spawnSync(process.execPath, [join(ROOT, 'scripts', 'build-cli.mjs'), '--outdir', join(pkg, 'dist', 'cli')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    assert.equal(build.status, 0, build.stderr);
    // The code cache of these runs stays in the package's temp directory.
    cli = { nodeArgs: ['--import', REQUIRE_RECORDER], script: join(pkg, 'dist', 'cli', 'main.cjs'), env: { XDG_CACHE_HOME: join(pkg, 'cache') } };
  });
  after(() => rmSync(pkg, { recursive: true, force: true }));

  it('--help and a usage error load neither rxjs nor a socket module', async () => {
    for (const [args, code] of [[['--help'], 0], [['map', 'tcp', '-5'], 2]] as const) {
      const r = await loadedBy(args, cli);
      assert.equal(r.code, code, r.stderr);
      assert.deepEqual(cliFiles(r.modules), ['main.cjs'], `rxnat ${args.join(' ')} loads main.cjs only: ${r.modules.join(', ')}`);
      const withRxjs = r.modules.filter((m) => m.startsWith('file:') && /\bSubscriber\s*=\s*class\b/.test(readFileSync(fileURLToPath(m), 'utf8')));
      assert.deepEqual(withRxjs, [], `rxnat ${args.join(' ')}: no file holding rxjs`);
      assert.deepEqual(r.modules.filter((m) => /^node:(dgram|http|net|crypto|vm)$/.test(m)), []);
    }
  });

  it('--version answers from main.cjs alone', async () => {
    const r = await loadedBy(['--version'], cli);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
    assert.deepEqual(cliFiles(r.modules), ['main.cjs']);
  });

  it('each command runs from its own bundle (refused by the command itself: --nat none, no network)', async () => {
    const cases: [string[], string][] = [
      [['discover'], 'discover.cjs'],
      [['ip'], 'discover.cjs'],
      [['list'], 'list.cjs'],
      [['map', 'tcp', '8080'], 'map.cjs'],
      [['map', 'tcp', '8080', '--leave'], 'map.cjs'],
      [['unmap', 'tcp', '8080'], 'unmap.cjs'],
    ];
    for (const [args, bundle] of cases) {
      const r = await loadedBy([...args, '--nat', 'none'], cli);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`^rxnat: --nat none turns NAT traversal off; .* \\(see rxnat ${args[0]} --help\\)\\n$`));
      assert.deepEqual(cliFiles(r.modules), ['main.cjs', bundle], `${args.join(' ')}: ${r.modules.join(', ')}`);
    }
    // status takes no --nat: every probe goes to a closed port on loopback, and finds nothing.
    const port = freeUdpPort();
    const status = await loadedBy(['status', '--gateway', '127.0.0.1', '--pmp-port', String(port), '--ssdp-target', `127.0.0.1:${port}`, '--local-address', '127.0.0.1', '--timeout', '500', '--json'], cli);
    assert.equal(status.code, 1, status.stderr);
    const report = JSON.parse(status.stdout) as { protocols: Record<string, { status: string }> };
    assert.deepEqual(Object.keys(report.protocols).sort(), ['pcp', 'pmp', 'upnp']);
    assert.deepEqual(cliFiles(status.modules), ['main.cjs', 'status.cjs']);
  });

  it('the demo runs from demo.cjs, the only bundle holding the gateway simulator', async () => {
    const holders = readdirSync(join(pkg, 'dist', 'cli')).filter((name) => readFileSync(join(pkg, 'dist', 'cli', name), 'utf8').includes('startGatewaySimulator'));
    assert.deepEqual(holders, ['demo.cjs']);
    // Loopback only: the simulator binds 127.0.0.1 and every backend is pointed at it.
    const r = await loadedBy(['demo'], cli);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Demo done in /m);
    assert.deepEqual(cliFiles(r.modules), ['main.cjs', 'demo.cjs']);
  });

  it('a second run compiles its bundle from the code cache; a damaged entry is compiled anew and rewritten', async () => {
    const cacheHome = mkdtempSync(join(tmpdir(), 'rxnat-cache-'));
    try {
      const env = { XDG_CACHE_HOME: cacheHome, DEBUG: 'rxnat:cli' };
      const run = async (): Promise<string> => {
        const r = await loadedBy(['list', '--nat', 'none'], cli, env);
        assert.equal(r.code, 2, r.stderr);
        assert.match(r.stderr, /^rxnat: --nat none turns NAT traversal off/m);
        return r.stderr;
      };
      assert.match(await run(), /code cache: none yet .*\n(?:.*\n)*.*code cache: written/);
      const dir = join(cacheHome, 'rxnat');
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      const entries = readdirSync(dir);
      assert.equal(entries.length, 1, entries.join(', '));
      assert.match(entries[0]!, /^list-[0-9a-f]{8}\.v8cache$/);
      assert.equal(statSync(join(dir, entries[0]!)).mode & 0o777, 0o600);
      const second = await run();
      assert.match(second, /code cache: used/);
      assert.doesNotMatch(second, /code cache: written/);
      // V8's part of the entry overwritten with garbage (the header still matches).
      const entry = join(dir, entries[0]!);
      const data = readFileSync(entry);
      const header = data.indexOf('\n', data.indexOf('\n') + 1) + 1;
      writeFileSync(entry, Buffer.concat([data.subarray(0, header), Buffer.alloc(data.length - header, 0x5a)]));
      assert.match(await run(), /code cache: rejected by V8.*\n(?:.*\n)*.*code cache: written/);
      assert.match(await run(), /code cache: used/);
      // Cut short (V8's header kept, most of its data gone).
      writeFileSync(entry, readFileSync(entry).subarray(0, header + 64));
      assert.match(await run(), /code cache: rejected by V8.*\n(?:.*\n)*.*code cache: written/);
      assert.match(await run(), /code cache: used/);
    } finally {
      rmSync(cacheHome, { recursive: true, force: true });
    }
  });

  it('map --nat pmp:IP sends NAT-PMP, with neither default-gateway nor execa loaded', () => {
    const port = freeUdpPort();
    const r = firstRequestOf(cli, ['map', 'tcp', '8080', '--nat', 'pmp:127.0.0.1', '--pmp-port', String(port)], '127.0.0.1', port);
    assert.equal(r.error, null);
    assert.ok(isPmpRequest(r.datagram), `a NAT-PMP request: ${r.datagram?.toString('hex')}`);
    // Sent by main.cjs before it loads map.cjs (early-search.ts); whether map.cjs is in by the time
    // the datagram is seen depends on the machine (test/cli/map.test.ts shows the order).
    assert.ok(['main.cjs', 'main.cjs,map.cjs'].includes(cliFiles(r.modules).join(',')), cliFiles(r.modules).join(','));
    assert.deepEqual(gatewayHelpers(r.modules), []);
    assert.deepEqual(r.modules.filter((m) => m === 'node:crypto'), [], 'PCP (node:crypto) not loaded for NAT-PMP');
  });

  it('map --nat pmp with no address asks the default gateway from /proc/net/route (private network namespace)', (t) => {
    if (!netnsAvailable()) {
      t.skip('needs Linux, root, `unshare -n` and `ip`');
      return;
    }
    const r = firstRequestOf(cli, ['map', 'tcp', '8080', '--nat', 'pmp', '--pmp-port', '15351'], NETNS_GATEWAY, 15351, true);
    assert.equal(r.error, null);
    assert.ok(isPmpRequest(r.datagram), `a NAT-PMP request reached the default gateway: ${r.datagram?.toString('hex')}`);
    assert.deepEqual(gatewayHelpers(r.modules), [], 'the routing table was read, nothing spawned');
  });

  it('map --nat pcp:IP sends its PCP ANNOUNCE before node:crypto is loaded (needed only for a mapping nonce)', () => {
    const port = freeUdpPort();
    const r = firstRequestOf(cli, ['map', 'tcp', '8080', '--nat', 'pcp:127.0.0.1', '--pcp-port', String(port)], '127.0.0.1', port);
    assert.equal(r.error, null);
    assert.ok(r.datagram !== null && r.datagram[0] === 2 && (r.datagram[1]! & 0x7f) === 0, `a PCP ANNOUNCE request: ${r.datagram?.toString('hex')}`);
    assert.deepEqual(r.modules.filter((m) => m === 'node:crypto'), []);
  });
});
