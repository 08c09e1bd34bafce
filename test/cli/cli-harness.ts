/**
 * Runs the `rxnat` CLI as a child process (`node --import tsx src/cli/main.ts ...`) against a
 * gateway simulator on loopback.
 *
 * Network safety: every gateway command must carry an explicit `--nat` spec, and
 * {@link assertLoopbackOnly} refuses any command line that could reach a real gateway or the
 * multicast group (no `--nat`, `any`/`upnp`/`pmp`/`pcp` without loopback addresses/targets).
 * Children are killed by their own PID only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { GatewaySimulator } from '../../src/testing/simulator.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
const NETWORK_COMMANDS = new Set(['discover', 'ip', 'status', 'map', 'unmap', 'list']);

/** The CLI options that point every backend at `sim` (and bind loopback). */
export function simArgs(sim: GatewaySimulator): string[] {
  return ['--gateway', sim.address, '--pmp-port', String(sim.pmpPort), '--ssdp-target', `${sim.ssdpTarget.address}:${sim.ssdpTarget.port}`, '--local-address', sim.address];
}

/** Throws unless the command line can only talk to 127.0.0.1. */
export function assertLoopbackOnly(args: readonly string[]): void {
  const command = args[0] ?? '';
  if (!NETWORK_COMMANDS.has(command) || args.includes('--help') || args.includes('-h')) return;
  const value = (name: string): string[] => args.flatMap((a, i) => (a === name && args[i + 1] !== undefined ? [args[i + 1]!] : []));
  const loopbackOnly = (texts: readonly string[]): boolean => texts.length > 0 && texts.every((t) => /^127\.\d+\.\d+\.\d+$/.test(t.split(':')[0]!));
  if (command === 'status') {
    // status probes PCP and NAT-PMP at --gateway (else the default route's router) and UPnP at
    // --ssdp-target (else multicast): all three must be given, on loopback. With --ipv6, PCP over
    // IPv6 asks --gateway6 (else the IPv6 default router): ::1 too, and the targets may be [::1].
    const ipv6 = args.includes('--ipv6');
    const v6Loopback = (texts: readonly string[]): boolean => texts.length > 0 && texts.every((t) => t === '::1' || t === '[::1]');
    const targetsOk = ipv6
      ? value('--ssdp-target').length > 0 && value('--ssdp-target').every((t) => /^127\.\d+\.\d+\.\d+:\d+$/.test(t) || /^\[::1\]:\d+$/.test(t))
      : loopbackOnly(value('--ssdp-target'));
    const ipv6Ok = !ipv6 || (v6Loopback(value('--gateway6')) && value('--control-host').every((t) => t === '::1'));
    const ok = loopbackOnly(value('--gateway')) && targetsOk && ipv6Ok && loopbackOnly(value('--local-address')) && !args.some((a) => a.includes('='));
    if (!ok) throw new Error(`test safety: status needs loopback --gateway, --ssdp-target and --local-address: ${JSON.stringify(args)}`);
    return;
  }
  if (isIpv6CommandLine(args)) {
    assertIpv6LoopbackOnly(args, value);
    return;
  }
  if (args.some((a) => a.startsWith('--nat=') || a.startsWith('--gateway=') || a.startsWith('--ssdp-target='))) {
    throw new Error(`test safety: give gateway options as two words, so that this check sees them: ${JSON.stringify(args)}`);
  }
  const nat = value('--nat');
  if (nat.length !== 1) throw new Error(`test safety: give exactly one explicit --nat (got ${JSON.stringify(args)})`);
  const spec = nat[0]!.toLowerCase();
  const loopback = (text: string): boolean => /^127\.\d+\.\d+\.\d+$/.test(text);
  const colon = spec.indexOf(':');
  const mechanism = colon < 0 ? spec : spec.slice(0, colon);
  const argument = colon < 0 ? '' : spec.slice(colon + 1);
  const gateways = value('--gateway');
  const targets = value('--ssdp-target');
  const localOk = value('--local-address').every(loopback);
  const pmpOk = argument !== '' ? loopback(argument) : gateways.length === 1 && loopback(gateways[0]!);
  const upnpOk = argument !== '' ? /^http:\/\/127\.\d+\.\d+\.\d+:\d+\//.test(argument) : targets.length > 0 && targets.every((t) => loopback(t.split(':')[0]!));
  const ok =
    localOk &&
    (['extip', 'ip', 'none', 'off', 'bogus'].includes(mechanism) ||
      (['pmp', 'natpmp', 'nat-pmp', 'pcp'].includes(mechanism) && pmpOk) ||
      (mechanism === 'upnp' && upnpOk) ||
      (mechanism === 'stun' && /^127\.\d+\.\d+\.\d+:\d+$/.test(argument)) ||
      (['any', 'auto', 'on'].includes(mechanism) && argument === '' && gateways.length === 1 && loopback(gateways[0]!) && targets.length > 0 && targets.every((t) => loopback(t.split(':')[0]!))));
  if (!ok) throw new Error(`test safety: this command line could leave loopback: ${JSON.stringify(args)}`);
}

const IPV6_MECHANISMS = new Set(['any6', 'pcp6', 'pinhole', 'upnp6']);

/** Whether a command line asks for IPv6 openings (`--ipv6`, `--internal-address`, `--pinholes` or an IPv6 spec). */
function isIpv6CommandLine(args: readonly string[]): boolean {
  const nat = args.flatMap((a, i) => (a === '--nat' && args[i + 1] !== undefined ? [args[i + 1]!.toLowerCase()] : []));
  return args.includes('--ipv6') || args.includes('--internal-address') || args.includes('--pinholes') || nat.some((n) => IPV6_MECHANISMS.has(n.split(':')[0]!) || n.includes('['));
}

/**
 * The IPv6 rules: everything on loopback (127.0.0.0/8 or ::1). PCP over IPv6 needs `--gateway ::1`
 * (else the host's IPv6 default router is asked) unless the spec is pinholes only or names
 * `[::1]`; SSDP needs explicit loopback targets (with targets given, no IPv6 multicast is sent)
 * unless the spec names a loopback description URL; `--control-host` must be ::1.
 */
function assertIpv6LoopbackOnly(args: readonly string[], value: (name: string) => string[]): void {
  const loopback = (text: string): boolean => /^127\.\d+\.\d+\.\d+$/.test(text) || /^\[?::1\]?$/.test(text);
  const targetHost = (t: string): string => t.replace(/:\d+$/, '');
  if (args.some((a) => a.includes('='))) throw new Error(`test safety: give options as two words: ${JSON.stringify(args)}`);
  const nat = value('--nat');
  if (nat.length !== 1) throw new Error(`test safety: give exactly one explicit --nat (got ${JSON.stringify(args)})`);
  const spec = nat[0]!.toLowerCase();
  const colon = spec.indexOf(':');
  const mechanism = colon < 0 ? spec : spec.slice(0, colon);
  const argument = colon < 0 ? '' : spec.slice(colon + 1);
  const gateways = value('--gateway');
  const targets = value('--ssdp-target');
  const urlOk = /^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]):\d+\//.test(argument);
  const pinholesOnly = ['pinhole', 'upnp6', 'upnp'].includes(mechanism) || args.includes('--pinholes');
  const pcpOk = pinholesOnly || (argument !== '' ? loopback(argument) : gateways.length === 1 && loopback(gateways[0]!));
  const ssdpOk = urlOk || (['pcp', 'pcp6', 'pmp'].includes(mechanism) && !args.includes('--pinholes')) || (targets.length > 0 && targets.every((t) => loopback(targetHost(t))));
  const ok =
    ['any', 'any6', 'pcp', 'pcp6', 'upnp', 'pinhole', 'upnp6', 'pmp', 'extip'].includes(mechanism) &&
    value('--local-address').every(loopback) &&
    value('--control-host').every(loopback) &&
    gateways.every(loopback) &&
    pcpOk &&
    ssdpOk;
  if (!ok) throw new Error(`test safety: this IPv6 command line could leave loopback: ${JSON.stringify(args)}`);
}

/** The CLI options that point IPv6 discovery at `sim` (started with `ipv6: true`) on loopback only. */
export function simArgsIpv6(sim: GatewaySimulator): string[] {
  return [
    '--gateway', '::1',
    '--pcp-port', String(sim.pcp6!.port),
    '--ssdp-target', `${sim.ssdpTarget.address}:${sim.ssdpTarget.port}`,
    '--ssdp-target', `[::1]:${sim.upnp6!.ssdpPort}`,
    '--local-address', '::1',
    '--control-host', '::1',
  ];
}

/** A running CLI process, its output collected. */
export interface CliProcess {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  /** Resolves when stdout or stderr has a line matching `pattern` (rejects after `timeoutMs`, default 30 s: the machine may be busy). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code (signal exits as 128 + n). */
  readonly exited: Promise<{ code: number; stdout: string; stderr: string; elapsedMs: number }>;
  /** Sends a signal to this child, by PID. */
  signal(signal: NodeJS.Signals): void;
}

/** Starts `rxnat <args>` (checked by {@link assertLoopbackOnly}). */
export function startCli(args: readonly string[], options: { readonly env?: NodeJS.ProcessEnv } = {}): CliProcess {
  assertLoopbackOnly(args);
  const env = { ...process.env, ...options.env };
  delete env.DEBUG;
  if (options.env?.DEBUG) env.DEBUG = options.env.DEBUG;
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    listeners.forEach((l) => l());
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
    listeners.forEach((l) => l());
  });
  const exited = new Promise<{ code: number; stdout: string; stderr: string; elapsedMs: number }>((resolve) => {
    child.on('close', (code, signal) => {
      const signals: Record<string, number> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
      resolve({ code: code ?? 128 + (signals[signal ?? ''] ?? 0), stdout, stderr, elapsedMs: performance.now() - started });
    });
  });
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    signal: (signal) => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, signal);
    },
    waitFor: (pattern, timeoutMs = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(stdout) || pattern.test(stderr)) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no ${pattern} within ${timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`));
        }, timeoutMs);
        listeners.add(check);
        void exited.then(() => {
          if (listeners.has(check)) {
            listeners.delete(check);
            clearTimeout(timer);
            if (pattern.test(stdout) || pattern.test(stderr)) resolve();
            else reject(new Error(`exited before ${pattern}; stdout: ${stdout}; stderr: ${stderr}`));
          }
        });
        check();
      }),
  };
}

/** Runs `rxnat <args>` to its end; kills it (by PID) if it outlives `timeoutMs` (default 45 s: a busy machine). */
export async function runCli(args: readonly string[], timeoutMs = 45_000): Promise<{ code: number; stdout: string; stderr: string; elapsedMs: number }> {
  const cli = startCli(args);
  const timer = setTimeout(() => cli.signal('SIGKILL'), timeoutMs);
  try {
    return await cli.exited;
  } finally {
    clearTimeout(timer);
  }
}

export { closedUdpPort } from '../support/net.js';

/** Polls `condition` every 20 ms until it holds (rejects after `timeoutMs`). */
export async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Parses every line of `text` as JSON. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Runs several command lines, at most `limit` at once (the machine may have two cores). */
export async function runMany(argsList: readonly (readonly string[])[], limit = 4): Promise<Awaited<ReturnType<typeof runCli>>[]> {
  const results: Awaited<ReturnType<typeof runCli>>[] = new Array(argsList.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < argsList.length) {
      const index = next++;
      results[index] = await runCli(argsList[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, argsList.length) }, worker));
  return results;
}
