/**
 * The gateway lab: a real router (miniupnpd, the daemon inside OpenWrt and many home routers)
 * running in network namespaces, for interop tests.
 *
 * ```
 * <lan ns>               <gw ns>                                  <wan ns> ("internet")
 * lan0 192.168.77.10 --  gw-lan 192.168.77.1  gw-wan 10.77.0.2 --  wan0 10.77.0.1
 * default via .77.1      miniupnpd + nft NAT, ip_forward=1         STUN responder udp/3478
 * ```
 *
 * Isolation: each lab creates three namespaces named `rxnat-<pid>-<seq>-{lan,gw,wan}` and a
 * private run directory (config, pid file, leases, logs). The veths are created directly inside
 * the namespaces, so nothing appears in the root namespace, and the addresses above exist only
 * inside them: two labs (two test files run in parallel by `node --test`, or two labs in one
 * file) use the same addresses without colliding, because every address, route, nft table and
 * socket lives in that lab's own namespaces. The only shared things are file-system paths,
 * which are per run (miniupnpd's pid file, lease file and the minissdpd socket path).
 *
 * Safety: nothing is ever started in the root namespace; processes are killed by PID only,
 * after checking that they are this process's children or live in this lab's namespace.
 * A crashed run's namespaces (prefix `rxnat-`, owner PID dead), the processes in them and its
 * run directory are removed by the next {@link startLab}. (The owner check assumes one PID
 * namespace per `/run/netns`: containers sharing `/run/netns` but not PIDs would see each
 * other's labs as stale.)
 *
 * Environment: `RXNAT_LAB=off` makes the lab unavailable (tests skip); `RXNAT_REQUIRE_LAB=1`
 * turns unavailability into a failure (see require-lab.ts); `RXNAT_LAB_KEEP=1` keeps run
 * directories (miniupnpd.conf, miniupnpd.log with its `-d` debug output, stun.log) in the
 * temp directory for debugging.
 *
 * @packageDocumentation
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The fixed lab addresses (valid only inside a lab's namespaces). */
export const LAB_ADDRESSES = {
  /** The LAN host (lan namespace, `lan0`). */
  lan: '192.168.77.10',
  /** The router's LAN address (gw namespace, `gw-lan`): NAT-PMP/PCP on udp 5351, HTTP on 5000. */
  gateway: '192.168.77.1',
  /** The router's WAN address (gw namespace, `gw-wan`): the "external IP" of mappings. */
  external: '10.77.0.2',
  /** The "internet" host (wan namespace, `wan0`): STUN responder, origin of inbound tests. */
  internet: '10.77.0.1',
} as const;

/**
 * The lab's IPv6 addresses, given only with `startLab({ ipv6: true })` (valid only inside the
 * namespaces; unique-local and documentation prefixes). No NAT66: the router forwards and
 * filters, miniupnpd opens its firewall (PCP MAP over IPv6, UPnP pinholes).
 */
export const LAB_IPV6_ADDRESSES = {
  /** The LAN host (`lan0`, fd77::/64); default route via the router's LAN address. */
  lan: 'fd77::10',
  /** The router's LAN address (`gw-lan`): PCP on udp 5351, HTTP on 5000. */
  gateway: 'fd77::1',
  /** The router's WAN address (`gw-wan`, 2001:db8:77::/64). */
  external: '2001:db8:77::2',
  /** The "internet" host (`wan0`), routing fd77::/64 to the router. */
  internet: '2001:db8:77::1',
} as const;

/** The router's UPnP description URL (from the lan namespace). */
export const LAB_DESCRIPTION_URL = `http://${LAB_ADDRESSES.gateway}:5000/rootDesc.xml`;

/** Which of a lab's namespaces. */
export type LabRole = 'lan' | 'gw' | 'wan';

/** How the gateway is configured. */
export interface LabOptions {
  /** Serve the IGDv1 description (`force_igd_desc_v1=yes`). Default false (IGDv2). */
  readonly igdV1?: boolean;
  /**
   * `enable_natpmp`: NAT-PMP and PCP on udp 5351. Default true; `false` gives a UPnP-only router
   * (nothing bound on 5351: NAT-PMP and PCP requests get ICMP port unreachable).
   */
  readonly natpmp?: boolean;
  /**
   * The gateway namespace's `net.ipv4.icmp_ratelimit` in ms (Linux default 1000: after a burst
   * of 6, one ICMP error per second per host). `0` lifts it: a bench that discovers many times
   * a second on a UPnP-only router would otherwise turn its port unreachable answers into
   * silence, which a client discovering once never meets. Default: the kernel's.
   */
  readonly icmpRateLimitMs?: number;
  /** `secure_mode`: a client may only map to its own address (else UPnP 718). Default true. */
  readonly secureMode?: boolean;
  /**
   * Run the STUN responder so miniupnpd accepts its private WAN address. Default true.
   * `false` gives the "broken uplink" gateway: it serves, but refuses every mapping
   * (UPnP 501, NAT-PMP result 3, PCP result 8).
   */
  readonly stun?: boolean;
  /** External ports (inclusive range) denied to every client, checked before the allow rule. */
  readonly denyRange?: { readonly from: number; readonly to: number };
  /** Extra miniupnpd.conf lines, appended before the permission rules (no trailing comments). */
  readonly extraConfig?: readonly string[];
  /** How long to wait for the gateway to be ready. Default 8000 ms. */
  readonly readyTimeoutMs?: number;
  /** Keep the run directory (config, logs) after {@link Lab.stop}. Default: env `RXNAT_LAB_KEEP=1`. */
  readonly keepRunDir?: boolean;
  /**
   * Also give the links IPv6 addresses ({@link LAB_IPV6_ADDRESSES}, DAD off, forwarding on in
   * the gateway only, no NAT66) and run miniupnpd with IPv6 (`ipv6_disable=no`, `lease_file6`):
   * PCP over IPv6 at [fd77::1]:5351 and the WANIPv6FirewallControl pinholes, both as accept rules
   * in `inet filter miniupnpd`. Default false: the IPv4 lab exactly as before.
   */
  readonly ipv6?: boolean;
}

/** The outcome of a command run inside a namespace. Never thrown: inspect `code`. */
export interface ExecResult {
  /** Exit code, `null` when killed by a signal. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The command was killed because it outlived its `timeoutMs`. */
  readonly timedOut: boolean;
  readonly durationMs: number;
}

/** The outcome of a node process run by {@link Lab.runNodeInLan}. */
export interface NodeRunResult<T = unknown> extends ExecResult {
  /** The last non-empty stdout line parsed as JSON (the result convention), else `undefined`. */
  readonly json: T | undefined;
}

/** Options of {@link Lab.execIn}. */
export interface ExecOptions {
  /** Kill (SIGKILL) the process after this long. Default 10000 ms. */
  readonly timeoutMs?: number;
  /** Written to stdin (stdin is closed either way). */
  readonly input?: string;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Options of {@link Lab.runNodeInLan}. */
export interface NodeRunOptions extends ExecOptions {
  /** Load tsx (TypeScript files, importing `src/*.ts`). Default true; false starts ~0.15 s faster. */
  readonly tsx?: boolean;
}

/** Options of {@link Lab.spawnNodeIn}. */
export interface SpawnNodeOptions {
  /** Load tsx. Default true. */
  readonly tsx?: boolean;
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * A script for {@link Lab.runNodeInLan}: a file path (absolute, or relative to the repository
 * root), or an inline ES module. Inline code is JavaScript evaluated with the repository root as
 * its base (bare imports resolve from its node_modules; with tsx, `await import('./src/x.ts')`
 * works). Arguments: `process.argv.slice(2)` for files, `process.argv.slice(1)` for inline code,
 * and `JSON.parse(process.env.RXNAT_LAB_ARGS)` for both.
 */
export type NodeScript = string | { readonly code: string };

/** A port forwarding as installed by miniupnpd in `prerouting_miniupnpd`. */
export interface LabRule {
  readonly protocol: 'tcp' | 'udp';
  readonly externalPort: number;
  readonly internalClient: string;
  readonly internalPort: number;
}

/** Whether the lab can run here; `reason` says why not. */
export interface LabAvailability {
  readonly available: boolean;
  readonly reason?: string;
}

/** The repository root (two levels above this file). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const STUN_SCRIPT = join(REPO_ROOT, 'test', 'lab', 'stun-responder.mjs');
const NS_PREFIX = 'rxnat-';
// The roles of other topologies (lab-two-gateways.ts: gwa, wanb, ...) are lower-case words too.
const NS_PATTERN = /^rxnat-(\d+)-(\d+|probe)(?:-([a-z0-9]+))?$/;
const RUN_DIR_PATTERN = /^rxnat-(\d+)-\d+-[A-Za-z0-9]{6}$/;
const TSX_IMPORT = 'tsx';

// Closes every inherited fd above 2, then execs the command: a daemon must not hold the test
// runner's pipes (node --test waits for EOF on them) or anything else we inherited.
const CLOSE_FDS_AND_EXEC =
  'for fd in /proc/$$/fd/*; do fd=${fd##*/}; if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null; fi; done; exec "$@"';

let sequence = 0;
const liveLabs = new Set<Lab>();

function now(): number {
  return performance.now();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/** Runs a command (no shell); resolves with its outcome, kills it (SIGKILL) on timeout. */
function exec(
  cmd: string,
  args: readonly string[],
  options: ExecOptions & { onSpawn?: (child: ChildProcess) => void } = {},
): Promise<ExecResult> {
  const started = now();
  return new Promise((resolveExec) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: REPO_ROOT,
      env: options.env ? { ...process.env, ...options.env } : process.env,
    });
    options.onSpawn?.(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
    const timer = setTimeout(() => {
      timedOut = true;
      killOwnChild(child, 'SIGKILL');
    }, options.timeoutMs ?? 10_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      resolveExec({ code: null, signal: null, stdout, stderr: stderr + error.message, timedOut, durationMs: now() - started });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveExec({ code, signal, stdout, stderr, timedOut, durationMs: now() - started });
    });
  });
}

/** Like {@link exec} but rejects on a non-zero exit. */
async function execChecked(cmd: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const result = await exec(cmd, args, options);
  if (result.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${result.timedOut ? 'timeout' : (result.signal ?? `exit ${result.code}`)}): ${result.stderr.trim()}`,
    );
  }
  return result;
}

function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid ...: comm may contain spaces and parentheses
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Alive = exists and is not a zombie (killed daemons linger as zombies until reaped). */
function isAlive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
}

function netnsInode(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined;
  }
}

/** Whether `pid` lives in the named namespace (compares `/proc/PID/ns/net` with `/run/netns/NAME`). */
function inNamespace(pid: number, namespace: string): boolean {
  const ns = netnsInode(`/run/netns/${namespace}`);
  return ns !== undefined && netnsInode(`/proc/${pid}/ns/net`) === ns;
}

/** Signals a child this process spawned, by PID, if it is still running and still ours. */
function killOwnChild(child: ChildProcess, signal: NodeJS.Signals): boolean {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return false;
  if (procStat(pid)?.ppid !== process.pid) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Signals `pid` only if it lives in `namespace`. */
function killInNamespace(pid: number, namespace: string, signal: NodeJS.Signals): boolean {
  if (!isAlive(pid) || !inNamespace(pid, namespace)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, intervalMs = 10): Promise<boolean> {
  const deadline = now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

/** PIDs that live in a namespace (same inode check as `ip netns pids`). */
function namespacePids(namespace: string): number[] {
  const result = spawnSync('ip', ['netns', 'pids', namespace], { encoding: 'utf8', timeout: 5000 });
  if (result.status !== 0) return [];
  return result.stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number)
    .filter((pid) => pid !== process.pid && inNamespace(pid, namespace));
}

function listNamespaces(): string[] {
  const result = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5000 });
  if (result.status !== 0) return [];
  return result.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name.startsWith(NS_PREFIX));
}

/** Kills whatever runs in the namespaces (verified by inode) and deletes them. Synchronous. */
function destroyNamespacesSync(namespaces: readonly string[]): void {
  for (const ns of namespaces) {
    for (const pid of namespacePids(ns)) killInNamespace(pid, ns, 'SIGKILL');
  }
  for (const ns of namespaces) {
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 5000 });
  }
}

/**
 * Removes the namespaces (and kills their processes) left by crashed earlier runs: names with
 * our prefix whose owner PID is dead. Returns the names removed.
 */
export function cleanStaleLabs(): string[] {
  const ownerDead = (pattern: RegExp, name: string): boolean => {
    const match = pattern.exec(name);
    if (!match) return false;
    const owner = Number(match[1]);
    return owner !== process.pid && !isAlive(owner);
  };
  const stale = listNamespaces().filter((name) => ownerDead(NS_PATTERN, name));
  if (stale.length > 0) destroyNamespacesSync(stale);
  if (process.env.RXNAT_LAB_KEEP !== '1') {
    // run directories (config, logs) of crashed runs
    try {
      for (const entry of readdirSync(tmpdir())) {
        if (ownerDead(RUN_DIR_PATTERN, entry)) rmSync(join(tmpdir(), entry), { recursive: true, force: true });
      }
    } catch {
      // best effort
    }
  }
  return stale;
}

function which(binary: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin', '/usr/bin', '/bin'])) {
    const path = join(dir, binary);
    if (dir && existsSync(path)) return path;
  }
  return undefined;
}

let availability: Promise<LabAvailability> | undefined;

async function probeAvailability(): Promise<LabAvailability> {
  if (process.env.RXNAT_LAB === 'off') return { available: false, reason: 'disabled by RXNAT_LAB=off' };
  if (process.platform !== 'linux') return { available: false, reason: `needs Linux (this is ${process.platform})` };
  if (process.getuid?.() !== 0) return { available: false, reason: 'needs root (network namespaces, nftables)' };
  for (const binary of ['ip', 'miniupnpd', 'nft', 'curl', 'setsid', 'bash']) {
    if (!which(binary)) return { available: false, reason: `${binary} not found (see .ci/run for the packages)` };
  }
  const probe = `${NS_PREFIX}${process.pid}-probe`;
  const added = await exec('ip', ['netns', 'add', probe], { timeoutMs: 5000 });
  if (added.code !== 0) return { available: false, reason: `cannot create a network namespace: ${added.stderr.trim()}` };
  const nft = await exec('ip', ['netns', 'exec', probe, 'nft', 'add', 'table', 'inet', 'probe'], { timeoutMs: 5000 });
  await exec('ip', ['netns', 'del', probe], { timeoutMs: 5000 });
  if (nft.code !== 0) return { available: false, reason: `nftables unusable in a namespace: ${nft.stderr.trim()}` };
  return { available: true };
}

function nftLayout(): string {
  // The layout miniupnpd's nftables backend expects (Debian's nft_init.sh is broken): its
  // chains are created empty, the base chains jump into them.
  return `
table inet filter {
  chain miniupnpd { }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
  chain forward {
    type filter hook forward priority 0; policy drop;
    jump miniupnpd
    ct state established,related accept
    iifname "gw-lan" oifname "gw-wan" accept
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "gw-wan" masquerade
  }
}
`;
}

/** The addresses a gateway's miniupnpd.conf names: its STUN server and the LAN subnet it serves. */
interface GatewayNet {
  readonly internet: string;
  readonly lanSubnet: string;
}

function miniupnpdConfig(options: LabOptions, runDir: string, net: GatewayNet = { internet: LAB_ADDRESSES.internet, lanSubnet: '192.168.77.0/24' }): string {
  const lines = [
    'ext_ifname=gw-wan',
    'listening_ip=gw-lan',
    'http_port=5000',
    // IPv6 needs a non-link-local address on gw-lan (else "disabling IPv6"); ipv6_listening_ip
    // stays unset: HTTP is one dual-stack socket, and binding it to fd77::1 broke IPv4.
    options.ipv6 === true ? 'ipv6_disable=no' : 'ipv6_disable=yes',
    'enable_upnp=yes',
    // also enables PCP; miniupnpd sets the flag on 'yes' and never clears it, so one line only
    `enable_natpmp=${options.natpmp === false ? 'no' : 'yes'}`,
    `secure_mode=${options.secureMode === false ? 'no' : 'yes'}`,
    'system_uptime=no',
    'min_lifetime=1',
    'max_lifetime=86400',
    `uuid=${randomUUID()}`,
    `lease_file=${join(runDir, 'leases')}`,
    // unix socket paths are shared across namespaces: point at nothing
    `minissdpdsocket=${join(runDir, 'no-minissdpd.sock')}`,
    `force_igd_desc_v1=${options.igdV1 ? 'yes' : 'no'}`,
  ];
  if (options.ipv6 === true) lines.push(`lease_file6=${join(runDir, 'leases6')}`);
  if (options.stun !== false) {
    lines.push('ext_perform_stun=yes', `ext_stun_host=${net.internet}`, 'ext_stun_port=3478');
  }
  lines.push(...(options.extraConfig ?? []));
  if (options.denyRange) lines.push(`deny ${options.denyRange.from}-${options.denyRange.to} 0.0.0.0/0 0-65535`);
  lines.push(`allow 1024-65535 ${net.lanSubnet} 1024-65535`, 'deny 0-65535 0.0.0.0/0 0-65535');
  for (const line of lines) {
    // miniupnpd's parser takes a trailing comment as part of the value
    if (line.includes('#')) throw new Error(`miniupnpd.conf line with a '#': ${line}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Whether a UDP/TCP socket is bound on `port` in the namespace of `pid` (reads /proc/PID/net,
 * both families: with IPv6 on, miniupnpd's HTTP socket is one dual-stack tcp6 socket).
 */
function portBound(pid: number, proto: 'udp' | 'tcp', port: number): boolean {
  return portBoundIn(pid, proto, port) || portBoundIn(pid, `${proto}6`, port);
}

function portBoundIn(pid: number, table: 'udp' | 'tcp' | 'udp6' | 'tcp6', port: number): boolean {
  const proto = table.startsWith('udp') ? 'udp' : 'tcp';
  try {
    const text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    return text
      .split('\n')
      .slice(1)
      .some((line) => {
        const fields = line.trim().split(/\s+/);
        // tcp: state 0A = LISTEN
        return (fields[1] ?? '').endsWith(hex) && (proto === 'udp' || fields[3] === '0A');
      });
  } catch {
    return false;
  }
}

interface NftExpr {
  match?: {
    left?: { payload?: { protocol?: string; field?: string; base?: string; offset?: number }; meta?: { key?: string } };
    right?: unknown;
  };
  dnat?: { addr?: string; port?: number };
}

const IP_PROTOCOLS: Readonly<Record<string, 'tcp' | 'udp'>> = { '6': 'tcp', '17': 'udp', tcp: 'tcp', udp: 'udp' };

/**
 * Parses `nft -j list chain inet filter prerouting_miniupnpd` into rules. miniupnpd 2.3.1
 * writes `iif "gw-wan" @nh,72,8 6 th dport 40000 dnat ip to 192.168.77.10:40000`; the
 * `meta l4proto` and `tcp dport` spellings are understood too.
 */
export function parseNftRules(json: string): LabRule[] {
  const parsed = JSON.parse(json) as { nftables?: Array<{ rule?: { expr?: NftExpr[] } }> };
  const rules: LabRule[] = [];
  for (const item of parsed.nftables ?? []) {
    const expr = item.rule?.expr;
    if (!expr) continue;
    let protocol: 'tcp' | 'udp' | undefined;
    let externalPort: number | undefined;
    let dnat: NftExpr['dnat'];
    for (const e of expr) {
      const left = e.match?.left;
      const right = e.match?.right;
      if (left?.payload?.base === 'nh' && left.payload.offset === 72) protocol = IP_PROTOCOLS[String(right)] ?? protocol;
      if (left?.meta?.key === 'l4proto') protocol = IP_PROTOCOLS[String(right)] ?? protocol;
      if (left?.payload?.field === 'dport' && typeof right === 'number') {
        externalPort = right;
        protocol = IP_PROTOCOLS[left.payload.protocol ?? ''] ?? protocol;
      }
      if (e.dnat) dnat = e.dnat;
    }
    if (protocol && externalPort !== undefined && dnat?.addr) {
      rules.push({ protocol, externalPort, internalClient: dnat.addr, internalPort: dnat.port ?? externalPort });
    }
  }
  return rules;
}

/**
 * A node process running inside a lab namespace that the test talks to while it runs: JSON
 * lines in on stdin, JSON lines out on stdout. Made by {@link Lab.spawnNodeIn}.
 */
export class LabProcess {
  private readonly messages: unknown[] = [];
  private readonly waiters: Array<{ resolve: (value: unknown) => void; reject: (error: Error) => void }> = [];
  private partial = '';
  private stdoutText = '';
  private stderrText = '';
  private exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  private readonly exited: Promise<void>;
  private readonly started = now();

  /** @internal */
  constructor(private readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.onStdout(chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderrText += chunk));
    child.stdin?.on('error', () => undefined);
    this.exited = new Promise((resolveExit) => {
      child.on('error', (error) => {
        this.stderrText += error.message;
        this.exit ??= { code: null, signal: null };
        this.failWaiters();
        resolveExit();
      });
      child.on('close', (code, signal) => {
        this.exit = { code, signal };
        this.failWaiters();
        resolveExit();
      });
    });
  }

  /** The process's PID. */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Everything written to stderr so far. */
  get stderr(): string {
    return this.stderrText;
  }

  /**
   * The next JSON message on stdout (non-JSON lines are skipped, but kept in `stdout`).
   * Rejects if the process exits first or nothing comes within `timeoutMs` (default 10 000).
   */
  next<T = unknown>(timeoutMs = 10_000): Promise<T> {
    const queued = this.messages.shift();
    if (queued !== undefined) return Promise.resolve(queued as T);
    if (this.exit) return Promise.reject(this.exitError());
    return new Promise<T>((resolveNext, rejectNext) => {
      const waiter = {
        resolve: (value: unknown) => {
          clearTimeout(timer);
          resolveNext(value as T);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          rejectNext(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        rejectNext(new Error(`no message within ${timeoutMs} ms; stderr: ${this.stderrText.slice(-2000)}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Writes `message` as one JSON line to stdin. */
  send(message: unknown): void {
    this.child.stdin?.write(`${JSON.stringify(message)}\n`);
  }

  /** Closes stdin, waits for the exit (SIGKILL after `timeoutMs`, default 10 000) and returns the outcome. */
  async done(timeoutMs = 10_000): Promise<ExecResult> {
    this.child.stdin?.end();
    const timer = setTimeout(() => this.kill(), timeoutMs);
    await this.exited;
    clearTimeout(timer);
    return {
      code: this.exit?.code ?? null,
      signal: this.exit?.signal ?? null,
      stdout: this.stdoutText,
      stderr: this.stderrText,
      timedOut: false,
      durationMs: now() - this.started,
    };
  }

  /** SIGKILLs the process (only if it is still this process's child). */
  kill(): void {
    killOwnChild(this.child, 'SIGKILL');
  }

  private onStdout(chunk: string): void {
    this.stdoutText += chunk;
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      let message: unknown;
      try {
        message = JSON.parse(line);
      } catch {
        continue;
      }
      const waiter = this.waiters.shift();
      if (waiter) waiter.resolve(message);
      else this.messages.push(message);
    }
  }

  private exitError(): Error {
    return new Error(
      `process exited (${this.exit?.signal ?? `code ${this.exit?.code}`}); stderr: ${this.stderrText.slice(-2000)}`,
    );
  }

  private failWaiters(): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(this.exitError());
  }
}

/**
 * A running gateway lab. Create with {@link startLab}; always {@link Lab.stop} it (from an
 * `after()` hook: it is idempotent and never throws).
 */
export class Lab {
  /** Unique per lab: `rxnat-<pid>-<seq>`. */
  readonly id: string;
  /** The namespace names. */
  readonly namespaces: Readonly<Record<LabRole, string>>;
  /** This lab's private directory: miniupnpd.conf, pid file, leases, logs. */
  readonly runDir: string;
  readonly options: LabOptions;
  /** Addresses, the same in every lab (see the module comment). */
  readonly addresses = LAB_ADDRESSES;
  /** The router's UPnP description URL. */
  readonly descriptionUrl = LAB_DESCRIPTION_URL;
  /** How long {@link startLab} took, in ms. */
  startupMs = 0;
  /** Where the startup time went, in ms (links and STUN overlap). */
  readonly startupPhasesMs = { topology: 0, linksUp: 0, stun: 0, daemon: 0 };

  private daemon: ChildProcess | undefined;
  private daemonPidValue: number | undefined;
  private stun: ChildProcess | undefined;
  private readonly children = new Set<ChildProcess>();
  private stopping: Promise<void> | undefined;
  private daemonStarts = 0;

  private constructor(options: LabOptions) {
    sequence += 1;
    this.id = `${NS_PREFIX}${process.pid}-${sequence}`;
    this.namespaces = { lan: `${this.id}-lan`, gw: `${this.id}-gw`, wan: `${this.id}-wan` };
    this.runDir = mkdtempSync(join(tmpdir(), `${this.id}-`));
    this.options = options;
  }

  /**
   * Whether the lab can run on this machine: Linux, root, `ip netns` usable, miniupnpd, nft,
   * curl installed, nftables usable inside a namespace, and not disabled with `RXNAT_LAB=off`.
   * Probed once per process.
   *
   * @example
   * ```ts
   * const { available, reason } = await Lab.available();
   * if (!available) console.log('no lab:', reason);
   * ```
   */
  static available(): Promise<LabAvailability> {
    availability ??= probeAvailability();
    return availability;
  }

  /** Whether `binary` is on the PATH (or in /usr/sbin, /sbin, /usr/bin, /bin). */
  static hasBinary(binary: string): boolean {
    return which(binary) !== undefined;
  }

  /** @internal use {@link startLab}. */
  static async start(options: LabOptions = {}): Promise<Lab> {
    const started = now();
    const status = await Lab.available();
    if (!status.available) throw new Error(`gateway lab unavailable: ${status.reason}`);
    cleanStaleLabs();
    const lab = new Lab(options);
    liveLabs.add(lab);
    const phase = async (name: keyof Lab['startupPhasesMs'], run: () => Promise<void>): Promise<void> => {
      const t0 = now();
      await run();
      lab.startupPhasesMs[name] = Math.round(now() - t0);
    };
    try {
      await phase('topology', () => lab.createTopology());
      await Promise.all([
        phase('linksUp', () => lab.waitLinksUp(options.readyTimeoutMs ?? 8000)),
        phase('stun', () => (options.stun !== false ? lab.startStun() : Promise.resolve())),
      ]);
      await phase('daemon', () => lab.startDaemon());
    } catch (error) {
      const log = lab.daemonLog().split('\n').slice(-20).join('\n');
      await lab.stop();
      throw new Error(`lab ${lab.id} failed to start: ${(error as Error).message}${log ? `\nminiupnpd log:\n${log}` : ''}`, {
        cause: error,
      });
    }
    lab.startupMs = now() - started;
    return lab;
  }

  /** miniupnpd's PID, while it runs. */
  get daemonPid(): number | undefined {
    return this.daemonPidValue !== undefined && isAlive(this.daemonPidValue) ? this.daemonPidValue : undefined;
  }

  /** miniupnpd's output so far (it runs with `-d`: debug log on stderr). */
  daemonLog(): string {
    try {
      return readFileSync(join(this.runDir, 'miniupnpd.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * Runs a command inside one of the lab's namespaces (`ip netns exec NS cmd args`).
   *
   * @example
   * ```ts
   * const r = await lab.execIn('gw', 'nft', ['list', 'ruleset']);
   * ```
   */
  execIn(role: LabRole, cmd: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    if (this.stopping) return Promise.reject(new Error(`lab ${this.id} is stopped`));
    return exec('ip', ['netns', 'exec', this.namespaces[role], cmd, ...args], {
      ...options,
      onSpawn: (child) => {
        this.children.add(child);
        child.on('close', () => this.children.delete(child));
      },
    });
  }

  /**
   * Runs a command inside the lan namespace, as the LAN host 192.168.77.10.
   *
   * @example
   * ```ts
   * const r = await lab.execInLan('natpmpc', ['-g', lab.addresses.gateway]);
   * assert.equal(r.code, 0);
   * ```
   */
  execInLan(cmd: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    return this.execIn('lan', cmd, args, options);
  }

  /** Runs a command inside the wan namespace, as the "internet" host 10.77.0.1. */
  execInWan(cmd: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    return this.execIn('wan', cmd, args, options);
  }

  /**
   * Runs node (with tsx by default) inside a namespace. The script reports its result by
   * printing it as JSON on the last line of stdout; it is parsed into `json`.
   *
   * @example
   * ```ts
   * const r = await lab.runNodeIn('lan', { code: `console.log(JSON.stringify({ ok: true }))` }, [], { tsx: false });
   * assert.deepEqual(r.json, { ok: true });
   * ```
   */
  async runNodeIn<T = unknown>(
    role: LabRole,
    script: NodeScript,
    args: readonly string[] = [],
    options: NodeRunOptions = {},
  ): Promise<NodeRunResult<T>> {
    const nodeArgs = options.tsx === false ? [] : ['--import', TSX_IMPORT];
    if (typeof script === 'string') nodeArgs.push(resolve(REPO_ROOT, script));
    else nodeArgs.push('--input-type=module', '--eval', script.code);
    const env = { ...options.env, RXNAT_LAB_ARGS: JSON.stringify(args) };
    const result = await this.execIn(role, process.execPath, [...nodeArgs, ...args], { ...options, env });
    return { ...result, json: lastJsonLine<T>(result.stdout) };
  }

  /**
   * Runs a node script inside the lan namespace: see {@link Lab.runNodeIn} and {@link NodeScript}.
   *
   * @example
   * ```ts
   * const r = await lab.runNodeInLan<{ ip: string }>({ code: `console.log(JSON.stringify({ ip: '?' }))` }, [], { timeoutMs: 5000 });
   * ```
   */
  runNodeInLan<T = unknown>(script: NodeScript, args: readonly string[] = [], options: NodeRunOptions = {}): Promise<NodeRunResult<T>> {
    return this.runNodeIn<T>('lan', script, args, options);
  }

  /** Runs a node script inside the wan namespace ("the internet"). */
  runNodeInWan<T = unknown>(script: NodeScript, args: readonly string[] = [], options: NodeRunOptions = {}): Promise<NodeRunResult<T>> {
    return this.runNodeIn<T>('wan', script, args, options);
  }

  /**
   * Starts node (with tsx by default) inside a namespace and returns it running, to talk to
   * over JSON lines ({@link LabProcess}). It is killed by {@link Lab.stop} at the latest.
   *
   * @example
   * ```ts
   * const driver = lab.spawnNodeIn('lan', 'test/interop/rxnat-driver.ts');
   * driver.send({ op: 'externalIp' });
   * const reply = await driver.next<{ ok: string }>();
   * await driver.done();
   * ```
   */
  spawnNodeIn(role: LabRole, script: NodeScript, args: readonly string[] = [], options: SpawnNodeOptions = {}): LabProcess {
    if (this.stopping) throw new Error(`lab ${this.id} is stopped`);
    const nodeArgs = options.tsx === false ? [] : ['--import', TSX_IMPORT];
    if (typeof script === 'string') nodeArgs.push(resolve(REPO_ROOT, script));
    else nodeArgs.push('--input-type=module', '--eval', script.code);
    const child = spawn('ip', ['netns', 'exec', this.namespaces[role], process.execPath, ...nodeArgs, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: REPO_ROOT,
      env: { ...process.env, ...options.env, RXNAT_LAB_ARGS: JSON.stringify(args) },
    });
    this.children.add(child);
    child.on('close', () => this.children.delete(child));
    return new LabProcess(child);
  }

  /**
   * The port forwardings miniupnpd installed: the DNAT rules of `prerouting_miniupnpd`.
   *
   * @example
   * ```ts
   * assert.deepEqual(await lab.rules(), [{ protocol: 'tcp', externalPort: 40000, internalClient: '192.168.77.10', internalPort: 40000 }]);
   * ```
   */
  async rules(): Promise<LabRule[]> {
    const result = await this.execIn('gw', 'nft', ['-j', 'list', 'chain', 'inet', 'filter', 'prerouting_miniupnpd']);
    if (result.code !== 0) throw new Error(`nft list failed: ${result.stderr.trim()}`);
    return parseNftRules(result.stdout);
  }

  /**
   * Stops miniupnpd (SIGTERM, then SIGKILL after 2 s) and starts it again with the same config.
   * NAT-PMP/PCP epochs restart at 0, as after a router reboot. By default the mappings survive
   * (miniupnpd reloads its lease file); `clearMappings: true` deletes the lease file and the nft
   * rules first, as a router that reboots and forgets its table.
   *
   * @example
   * ```ts
   * await lab.restartDaemon({ clearMappings: true });
   * assert.deepEqual(await lab.rules(), []);
   * ```
   */
  async restartDaemon(options: { readonly clearMappings?: boolean } = {}): Promise<void> {
    await this.killDaemon('SIGTERM');
    if (options.clearMappings) {
      rmSync(join(this.runDir, 'leases'), { force: true });
      await this.flushRules();
    }
    await this.startDaemon();
  }

  /**
   * Stops miniupnpd without restarting it: NAT-PMP/PCP requests then get ICMP port
   * unreachable, UPnP connections are refused. Resolves once it is dead.
   */
  async killDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const daemon = this.daemon;
    const pid = this.daemonPidValue ?? daemon?.pid;
    this.daemon = undefined;
    this.daemonPidValue = undefined;
    if (pid === undefined || !isAlive(pid)) return;
    // Ours if it lives in the lab's gateway namespace, or is still our direct child (before exec).
    const signal_ = (sig: NodeJS.Signals): boolean =>
      killInNamespace(pid, this.namespaces.gw, sig) || (daemon?.pid === pid && killOwnChild(daemon, sig));
    if (!signal_(signal)) return;
    const exited = (): boolean => !isAlive(pid);
    if (!(await waitFor(exited, 2000))) {
      signal_('SIGKILL');
      await waitFor(exited, 2000);
    }
  }

  /**
   * Deletes every forwarding miniupnpd installed, behind its back (as a router that lost its
   * table): flushes `prerouting_miniupnpd`, `postrouting_miniupnpd` and `miniupnpd`.
   */
  async flushRules(): Promise<void> {
    const flush = ['prerouting_miniupnpd', 'postrouting_miniupnpd', 'miniupnpd']
      .map((chain) => `flush chain inet filter ${chain}`)
      .join('\n');
    await execChecked('ip', ['netns', 'exec', this.namespaces.gw, 'nft', '-f', '-'], { input: `${flush}\n` });
  }

  /**
   * Tears the lab down: kills its processes (by PID, each checked to be ours or to live in the
   * lab's namespaces), deletes the namespaces and the run directory. Idempotent, never throws.
   */
  stop(): Promise<void> {
    this.stopping ??= this.teardown();
    return this.stopping;
  }

  private async teardown(): Promise<void> {
    try {
      await this.killDaemon('SIGTERM');
    } catch {
      // fall through to the namespace sweep
    }
    const stun = this.stun;
    this.stun = undefined;
    if (stun) {
      killOwnChild(stun, 'SIGKILL');
      await waitFor(() => stun.exitCode !== null || stun.signalCode !== null || !isAlive(stun.pid ?? 0), 1000);
    }
    for (const child of this.children) killOwnChild(child, 'SIGKILL');
    destroyNamespacesSync(Object.values(this.namespaces));
    liveLabs.delete(this);
    if (!(this.options.keepRunDir ?? process.env.RXNAT_LAB_KEEP === '1')) {
      rmSync(this.runDir, { recursive: true, force: true });
    }
  }

  /** Synchronous last-resort cleanup for process exit. */
  destroySync(): void {
    for (const pid of [this.daemonPidValue, this.stun?.pid]) {
      if (pid === undefined) continue;
      if (!killInNamespace(pid, this.namespaces.gw, 'SIGKILL')) killInNamespace(pid, this.namespaces.wan, 'SIGKILL');
    }
    destroyNamespacesSync(Object.values(this.namespaces));
    if (!(this.options.keepRunDir ?? process.env.RXNAT_LAB_KEEP === '1')) rmSync(this.runDir, { recursive: true, force: true });
  }

  private async createTopology(): Promise<void> {
    const { lan, gw, wan } = this.namespaces;
    // One batch: namespaces, then each veth created directly inside its two namespaces.
    const root = [
      `netns add ${lan}`,
      `netns add ${gw}`,
      `netns add ${wan}`,
      // Distinct ifindexes on the two ends (fresh namespaces would give both index 2): the
      // kernel treats a link event as urgent when ifindex != iflink, so the operstate goes UP
      // at once instead of after linkwatch's ~1 s rate limit (see waitLinksUp).
      `link add lan0 index 10 netns ${lan} type veth peer name gw-lan index 11 netns ${gw}`,
      `link add gw-wan index 12 netns ${gw} type veth peer name wan0 index 13 netns ${wan}`,
    ];
    await execChecked('ip', ['-batch', '-'], { input: `${root.join('\n')}\n` });
    const inside: Record<LabRole, string[]> = {
      lan: [
        'link set lo up',
        `addr add ${LAB_ADDRESSES.lan}/24 dev lan0`,
        'link set lan0 up',
        `route add default via ${LAB_ADDRESSES.gateway}`,
      ],
      gw: [
        'link set lo up',
        `addr add ${LAB_ADDRESSES.gateway}/24 dev gw-lan`,
        `addr add ${LAB_ADDRESSES.external}/24 dev gw-wan`,
        'link set gw-lan up',
        'link set gw-wan up',
        `route add default via ${LAB_ADDRESSES.internet}`,
      ],
      wan: ['link set lo up', `addr add ${LAB_ADDRESSES.internet}/24 dev wan0`, 'link set wan0 up'],
    };
    if (this.options.ipv6 === true) {
      // No DAD (addresses usable at once), forwarding in the gateway only, no NAT66.
      const v6 = LAB_IPV6_ADDRESSES;
      inside.lan.push(`addr add ${v6.lan}/64 dev lan0 nodad`, `route add ::/0 via ${v6.gateway}`);
      inside.gw.push(`addr add ${v6.gateway}/64 dev gw-lan nodad`, `addr add ${v6.external}/64 dev gw-wan nodad`, `route add ::/0 via ${v6.internet}`);
      inside.wan.push(`addr add ${v6.internet}/64 dev wan0 nodad`, `route add fd77::/64 via ${v6.external}`);
    }
    await Promise.all(
      (Object.keys(inside) as LabRole[]).map((role) =>
        execChecked('ip', ['-n', this.namespaces[role], '-batch', '-'], { input: `${inside[role].join('\n')}\n` }),
      ),
    );
    await Promise.all([
      ...(this.options.ipv6 === true ? [execChecked('ip', ['netns', 'exec', gw, 'sysctl', '-qw', 'net.ipv6.conf.all.forwarding=1'])] : []),
      execChecked('ip', ['netns', 'exec', gw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']),
      ...(this.options.icmpRateLimitMs !== undefined
        ? [execChecked('ip', ['netns', 'exec', gw, 'sysctl', '-qw', `net.ipv4.icmp_ratelimit=${Math.max(0, Math.floor(this.options.icmpRateLimitMs))}`])]
        : []),
      execChecked('ip', ['netns', 'exec', gw, 'nft', '-f', '-'], { input: nftLayout() }),
    ]);
  }

  /**
   * Waits until every veth is operationally up. Packets flow as soon as the carrier is on, but
   * IFF_RUNNING follows the operstate, which the kernel's linkwatch updates lazily (rate
   * limited to about once a second when links come and go quickly, as when labs are created
   * back to back); until then libuv's `os.networkInterfaces()` leaves the interface out, and a
   * client that enumerates interfaces (nat-upnp's SSDP, for one) sees none.
   */
  private async waitLinksUp(timeoutMs: number): Promise<void> {
    const links: ReadonlyArray<[LabRole, string]> = [
      ['lan', 'lan0'],
      ['gw', 'gw-lan'],
      ['gw', 'gw-wan'],
      ['wan', 'wan0'],
    ];
    const up = async (): Promise<boolean> => {
      const states = await Promise.all(
        (['lan', 'gw', 'wan'] as const).map(async (role) => [role, (await exec('ip', ['-n', this.namespaces[role], '-o', 'link', 'show'])).stdout] as const),
      );
      return links.every(([role, ifname]) =>
        states.some(([r, out]) => r === role && new RegExp(`^\\d+: ${ifname}@.* state UP `, 'm').test(out)),
      );
    };
    if (!(await waitFor(up, timeoutMs, 25))) throw new Error(`lab links not operationally up within ${timeoutMs} ms`);
  }

  /** Spawns a long-running process in a namespace: fds > 2 closed, own session, output to a log. */
  private spawnDaemon(role: LabRole, logName: string, argv: readonly string[], stdout: 'pipe' | 'log'): ChildProcess {
    const log = openSync(join(this.runDir, logName), 'a');
    try {
      const child = spawn(
        'bash',
        ['-c', CLOSE_FDS_AND_EXEC, 'lab-exec', 'setsid', 'ip', 'netns', 'exec', this.namespaces[role], ...argv],
        { stdio: ['ignore', stdout === 'pipe' ? 'pipe' : log, log], cwd: REPO_ROOT },
      );
      child.on('error', () => undefined);
      child.unref();
      return child;
    } finally {
      closeSync(log);
    }
  }

  private async startStun(): Promise<void> {
    const child = this.spawnDaemon(
      'wan',
      'stun.log',
      [process.execPath, STUN_SCRIPT, LAB_ADDRESSES.internet, '3478'],
      'pipe',
    );
    this.stun = child;
    const stdout = child.stdout;
    if (!stdout) throw new Error('stun responder has no stdout');
    await new Promise<void>((resolveReady, rejectReady) => {
      let buffer = '';
      const timer = setTimeout(() => done(new Error('STUN responder not ready after 10 s')), 10_000);
      const done = (error?: Error): void => {
        clearTimeout(timer);
        stdout.removeAllListeners('data');
        child.removeListener('exit', onExit);
        if (error) rejectReady(error);
        else resolveReady();
      };
      const onExit = (code: number | null): void => done(new Error(`STUN responder exited (${code})`));
      stdout.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        if (buffer.includes('"ready":true')) done();
      });
      child.on('exit', onExit);
    });
    // Nothing more is written to stdout: let go of the pipe so it cannot hold the event loop.
    stdout.destroy();
  }

  private async startDaemon(): Promise<void> {
    const conf = join(this.runDir, 'miniupnpd.conf');
    const pidFile = join(this.runDir, 'miniupnpd.pid');
    writeFileSync(conf, miniupnpdConfig(this.options, this.runDir));
    rmSync(pidFile, { force: true });
    this.daemonStarts += 1;
    if (this.daemonStarts > 1) writeFileSync(join(this.runDir, 'miniupnpd.log'), `--- restart ${this.daemonStarts - 1} ---\n`, { flag: 'a' });
    const child = this.spawnDaemon('gw', 'miniupnpd.log', ['miniupnpd', '-d', '-f', conf, '-P', pidFile], 'log');
    this.daemon = child;
    const timeoutMs = this.options.readyTimeoutMs ?? 8000;
    const deadline = now() + timeoutMs;
    const exitedEarly = (): boolean => child.exitCode !== null || child.signalCode !== null;

    const pidReady = await waitFor(() => {
      if (exitedEarly()) return true;
      try {
        const pid = Number(readFileSync(pidFile, 'utf8').trim());
        if (pid > 0 && inNamespace(pid, this.namespaces.gw)) {
          this.daemonPidValue = pid;
          return true;
        }
      } catch {
        // not yet written
      }
      return false;
    }, timeoutMs);
    if (exitedEarly()) throw new Error(`miniupnpd exited at startup (${child.exitCode ?? child.signalCode})`);
    const pid = this.daemonPidValue;
    if (!pidReady || pid === undefined) throw new Error(`miniupnpd wrote no pid file within ${timeoutMs} ms`);

    const bound = await waitFor(
      () => exitedEarly() || ((this.options.natpmp === false || portBound(pid, 'udp', 5351)) && portBound(pid, 'tcp', 5000)),
      Math.max(0, deadline - now()),
    );
    if (exitedEarly()) throw new Error(`miniupnpd exited at startup (${child.exitCode ?? child.signalCode})`);
    if (!bound) throw new Error(`miniupnpd did not bind ${this.options.natpmp === false ? '' : 'udp 5351 / '}tcp 5000 within ${timeoutMs} ms`);

    const described = await waitFor(
      async () => {
        const r = await this.execIn('lan', 'curl', ['-sf', '-o', '/dev/null', '-m', '1', this.descriptionUrl]);
        return r.code === 0;
      },
      Math.max(0, deadline - now()),
      20,
    );
    if (!described) throw new Error(`${this.descriptionUrl} not served from the lan namespace within ${timeoutMs} ms`);
  }
}

function lastJsonLine<T>(stdout: string): T | undefined {
  const lines = stdout.split('\n').filter((line) => line.trim() !== '');
  const last = lines[lines.length - 1];
  if (last === undefined) return undefined;
  try {
    return JSON.parse(last) as T;
  } catch {
    return undefined;
  }
}

process.on('exit', () => {
  for (const lab of liveLabs) lab.destroySync();
});

/** A fresh lab id, `rxnat-<pid>-<seq>` (the sequence {@link startLab} uses). */
function nextLabId(): string {
  sequence += 1;
  return `${NS_PREFIX}${process.pid}-${sequence}`;
}

/**
 * The building blocks of {@link Lab}, for other topologies built on the same conventions
 * (bench/lib/lab-two-gateways.ts): namespace names `rxnat-<pid>-<seq>-<role>` cleaned by
 * {@link cleanStaleLabs}, processes killed by PID only after the ownership checks, the nft
 * layout and miniupnpd.conf of one gateway (`net` gives its STUN server and LAN subnet).
 *
 * @internal
 */
export const labKit = {
  exec,
  execChecked,
  waitFor,
  isAlive,
  inNamespace,
  killInNamespace,
  killOwnChild,
  destroyNamespacesSync,
  nftLayout,
  miniupnpdConfig,
  portBound,
  nextLabId,
  lastJsonLine,
  CLOSE_FDS_AND_EXEC,
  STUN_SCRIPT,
  TSX_IMPORT,
} as const;

/**
 * Starts a gateway lab: three fresh namespaces, the nft layout, the STUN responder and
 * miniupnpd, and waits until the router answers (pid file, udp 5351 bound, description
 * served to the LAN). Takes about 0.5 s. Throws if the lab is unavailable
 * ({@link Lab.available}) or the router does not come up.
 *
 * @example
 * ```ts
 * const lab = await startLab({ igdV1: true });
 * try {
 *   const r = await lab.execInLan('upnpc', ['-u', lab.descriptionUrl, '-l']);
 * } finally {
 *   await lab.stop();
 * }
 * ```
 */
export function startLab(options: LabOptions = {}): Promise<Lab> {
  return Lab.start(options);
}
