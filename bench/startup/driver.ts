/**
 * The start-up driver: runs INSIDE a private network namespace made by `bench/startup/index.ts`
 * (`unshare -n`: loopback, a veth pair with no peer outside, and a default route via
 * 192.168.1.1, an address of that namespace's loopback), so whatever a contestant sends to its
 * default gateway reaches this process and nothing else. Never run it in the root namespace.
 *
 * It binds UDP 192.168.1.1:5351 (NAT-PMP and PCP) and :1900 (SSDP), then spawns each contestant
 * round-robin (the start rotating each round) and times spawn until the first datagram reaches
 * either socket (the contestant is killed then: nobody answers, nothing is mapped), or spawn
 * until exit for the contestants that send nothing. Prints one JSON object on stdout.
 *
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';

/** One contestant: a command line and what ends its timed span. */
export interface StartupSpec {
  readonly id: string;
  readonly label: string;
  readonly command: readonly string[];
  /** `request`: spawn until its first datagram; `exit`: spawn until the process has exited. */
  readonly until: 'request' | 'exit';
}

/** What the driver prints. */
export interface DriverOutput {
  readonly results: {
    readonly id: string;
    samplesMs: number[];
    samplesRound: number[];
    /** `request` contestants: CPU time of the process until its first datagram, and time it waited for a CPU (/proc/PID/schedstat). */
    cpuMs: number[];
    runQueueMs: number[];
    failures: { run: number; error: string }[];
    firstBytes: Record<string, number>;
  }[];
  readonly gateway: string;
}

export const SANDBOX_GATEWAY = '192.168.1.1';
const PORTS = [5351, 1900];

interface Config {
  readonly specs: readonly StartupSpec[];
  readonly runs: number;
  readonly timeoutMs: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const sockets: Socket[] = [];
let onDatagram: ((data: Buffer, port: number) => void) | undefined;
for (const port of PORTS) {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, SANDBOX_GATEWAY, () => resolve());
  });
  socket.on('message', (data) => onDatagram?.(data, port));
  sockets.push(socket);
}

/** `pmp:0`, `pcp:1`, `ssdp` — what kind of request came first. */
function kindOf(data: Buffer, port: number): string {
  if (port === 1900) return 'ssdp';
  return data[0] === 0 ? `pmp:${data[1]}` : data[0] === 2 ? `pcp:${data[1]! & 0x7f}` : `udp${port}`;
}

/** CPU time and run-queue wait of a live process so far, ms (`/proc/PID/schedstat`, ns). */
function schedstat(pid: number | undefined): { cpuMs: number; runQueueMs: number } | undefined {
  try {
    const [cpu, wait] = readFileSync(`/proc/${pid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    return cpu !== undefined && wait !== undefined ? { cpuMs: cpu / 1e6, runQueueMs: wait / 1e6 } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * How long a contestant of the warm-up round lives on after its first datagram: as a user's
 * first run does, long enough for what it keeps between runs to be written (rxnat's code cache
 * is written after 1 s, src/cli/code-cache.ts). Measured rounds are killed at once.
 */
const WARM_UP_LINGER_MS = 1500;

function once(spec: StartupSpec, warmUp = false): Promise<{ ms: number; kind: string; cpu?: { cpuMs: number; runQueueMs: number } }> {
  return new Promise((resolve, reject) => {
    const [command, ...args] = spec.command;
    let stderr = '';
    let settled = false;
    const t0 = performance.now();
    const child = spawn(command!, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, DEBUG: '' } });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const finish = (outcome: { ms: number; kind: string; cpu?: { cpuMs: number; runQueueMs: number } } | Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      onDatagram = undefined;
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      const done = (): void => (outcome instanceof Error ? reject(outcome) : resolve(outcome));
      if (child.exitCode !== null || child.signalCode !== null) done();
      else child.once('exit', done);
    };
    const timer = setTimeout(() => finish(new Error(`no ${spec.until} within ${config.timeoutMs} ms; stderr: ${stderr.slice(-300)}`)), config.timeoutMs);
    /** The first datagram's timing, while a warm-up contestant lingers. */
    let heard: { ms: number; kind: string; cpu?: { cpuMs: number; runQueueMs: number } } | undefined;
    if (spec.until === 'request') {
      onDatagram = (data, port) => {
        if (heard !== undefined) return;
        const ms = performance.now() - t0;
        const cpu = schedstat(child.pid);
        heard = { ms, kind: kindOf(data, port), ...(cpu ? { cpu } : {}) };
        if (warmUp) setTimeout(() => finish(heard!), WARM_UP_LINGER_MS);
        else finish(heard);
      };
    }
    child.once('error', (error) => finish(error));
    child.once('exit', (code, signal) => {
      if (spec.until === 'exit') {
        if (code === 0) finish({ ms: performance.now() - t0, kind: 'exit' });
        else finish(new Error(`exit ${signal ?? code}: ${stderr.slice(-300)}`));
      } else if (heard !== undefined) {
        finish(heard);
      } else {
        // a datagram may still be in the socket's queue: give it a moment
        setTimeout(() => finish(new Error(`exited (${signal ?? code}) before sending: ${stderr.slice(-300)}`)), 50);
      }
    });
  });
}

const results: DriverOutput['results'] = config.specs.map((spec) => ({ id: spec.id, samplesMs: [], samplesRound: [], cpuMs: [], runQueueMs: [], failures: [], firstBytes: {} }));
// Round 0 warms the file system cache and the code caches of each contestant (its processes
// linger after their first datagram, WARM_UP_LINGER_MS); it is not kept.
for (let round = 0; round <= config.runs; round++) {
  for (let i = 0; i < config.specs.length; i++) {
    const index = (i + round) % config.specs.length;
    const spec = config.specs[index]!;
    const result = results[index]!;
    try {
      const { ms, kind, cpu } = await once(spec, round === 0);
      if (round > 0) {
        if (cpu) {
          result.cpuMs.push(cpu.cpuMs);
          result.runQueueMs.push(cpu.runQueueMs);
        }
        result.samplesMs.push(ms);
        result.samplesRound.push(round);
        result.firstBytes[kind] = (result.firstBytes[kind] ?? 0) + 1;
      }
    } catch (error) {
      result.failures.push({ run: round, error: (error as Error).message.slice(0, 400) });
    }
  }
}
for (const socket of sockets) socket.close();
const output: DriverOutput = { results, gateway: SANDBOX_GATEWAY };
process.stdout.write(`${JSON.stringify(output)}\n`);
