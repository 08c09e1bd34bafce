/**
 * `rxnat demo`: the gateway simulator on loopback, and one port mapped through each backend in
 * turn (PCP, NAT-PMP, UPnP via SSDP), showing the live state stream.
 *
 * @packageDocumentation
 */
import { ReplaySubject, type Observable } from 'rxjs';
import { mapPort, type MappingState } from '../core/map-port.js';
import type { MappingProtocol, Nat } from '../core/nat.js';
import { pcp } from '../protocols/pcp/client.js';
import { pmp } from '../protocols/pmp/client.js';
import { upnp } from '../protocols/upnp/client.js';
import { startGatewaySimulator, type GatewaySimulator } from '../testing/simulator.js';
import { cliLog, type CliIo } from './commands/common.js';
import { deletedLine, formatTable, mappingEvent, stateLine } from './format.js';

/** Lease asked for in the demo: short, so a renewal (at a third) shows within about a second. */
const DEMO_LIFETIME_SECONDS = 3;
/** How often the demo's mappings re-read the external IP (the library default is 15 s). */
const DEMO_IP_CHECK_MS = 400;
/** Longest wait for any one step before the demo gives up. */
const STEP_TIMEOUT_MS = 6000;

interface DemoStep {
  readonly title: string;
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  readonly newExternalIp: string;
  readonly nat$: (sim: GatewaySimulator) => Observable<Nat>;
}

const STEPS: readonly DemoStep[] = [
  {
    title: 'PCP (RFC 6887)',
    protocol: 'tcp',
    internalPort: 8080,
    newExternalIp: '198.51.100.7',
    nat$: (sim) => pcp(sim.address, { port: sim.pcpPort, localAddress: sim.address, fallbackToPmp: false }),
  },
  {
    title: 'NAT-PMP (RFC 6886)',
    protocol: 'udp',
    internalPort: 30303,
    newExternalIp: '198.51.100.8',
    nat$: (sim) => pmp(sim.address, { port: sim.pmpPort, localAddress: sim.address }),
  },
  {
    title: 'UPnP IGD, found by SSDP (unicast to the simulator)',
    protocol: 'tcp',
    internalPort: 8443,
    newExternalIp: '198.51.100.9',
    nat$: (sim) => upnp({ ssdpTargets: [sim.ssdpTarget], localAddress: sim.address, timeoutMs: 1500 }),
  },
];

/**
 * Runs the demo and resolves with the exit code (0, or 1 if a step did not happen in time).
 * Everything happens on 127.0.0.1: the simulator binds loopback ports, and every backend is
 * given the simulator's address, ports and SSDP target, with loopback as local address.
 *
 * @example
 * ```ts
 * process.exitCode = await runDemo(io);
 * ```
 */
export async function runDemo(io: CliIo): Promise<number> {
  const started = performance.now();
  const out = (line = ''): void => void io.stdout.write(`${line}\n`);
  const sim = await startGatewaySimulator({ pmpPcp: { pcpMinLifetimeSeconds: 1 } });
  cliLog(io, 'demo simulator started', { address: sim.address, pmpPort: sim.pmpPort, ssdpPort: sim.ssdpTarget.port });
  try {
    out('rxnat demo: a gateway simulator on 127.0.0.1; nothing is sent off loopback.');
    out(`  NAT-PMP + PCP  udp ${sim.address}:${sim.pmpPort}`);
    out(`  UPnP IGD v2    ssdp ${sim.ssdpTarget.address}:${sim.ssdpTarget.port}, ${sim.descriptionUrl}`);
    out(`  external IP    ${sim.table.externalIp}`);
    out();
    out('Simulator table before:');
    out(simTable(sim));
    let index = 0;
    for (const step of STEPS) {
      index++;
      out(`== ${index}/${STEPS.length} ${step.title}: ${step.protocol} port ${step.internalPort}, ${DEMO_LIFETIME_SECONDS} s lease ==`);
      await runStep(step, sim, io, out);
      out();
    }
    out('Simulator table after:');
    out(simTable(sim));
    out(`Demo done in ${((performance.now() - started) / 1000).toFixed(1)} s.`);
    return sim.table.list().length === 0 ? 0 : 1;
  } catch (error) {
    io.stderr.write(`rxnat: demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    await sim.close();
  }
}

async function runStep(step: DemoStep, sim: GatewaySimulator, io: CliIo, out: (line?: string) => void): Promise<void> {
  const t0 = performance.now();
  const stamp = (): string => `+${((performance.now() - t0) / 1000).toFixed(2)} s`.padStart(8);
  const note = (text: string): void => out(`${stamp()}  -- ${text}`);
  const stop$ = new ReplaySubject<void>(1);
  const watch = new StateWatch();
  let previous: MappingState | undefined;
  let lastMapped: MappingState | undefined;
  let stopping = false;
  const subscription = mapPort(
    step.nat$(sim),
    { protocol: step.protocol, internalPort: step.internalPort, lifetimeSeconds: DEMO_LIFETIME_SECONDS, description: 'rxnat demo' },
    { stop: stop$, externalIpCacheMs: DEMO_IP_CHECK_MS, logger: io.logger },
  ).subscribe({
    next: (state) => {
      const line = stopping && state.status === 'unmapped' && lastMapped ? deletedLine(lastMapped) : stateLine(state, mappingEvent(state, previous));
      out(`${stamp()}  ${line}`);
      previous = state;
      if (state.status === 'mapped') lastMapped = state;
      watch.next(state);
    },
    error: (error: unknown) => watch.fail(error),
    complete: () => watch.complete(),
  });
  try {
    const mapped = await watch.until((s) => s.status === 'mapped', 'the first mapping');
    out(simTable(sim));
    await watch.until((s) => s.status === 'mapped' && s.renewals > mapped.renewals, 'a renewal');
    note(`simulator: external IP ${sim.table.externalIp} -> ${step.newExternalIp}`);
    sim.setExternalIp(step.newExternalIp);
    const moved = await watch.until((s) => s.externalIp === step.newExternalIp, 'the external IP change');
    await watch.until((s) => s.status === 'mapped' && s.renewals > moved.renewals, 'the re-add on the new IP');
    note('stopping: the mapping is deleted, then a last unmapped state');
    stopping = true;
    stop$.next();
    await watch.done();
  } finally {
    subscription.unsubscribe();
  }
}

/** Lets the demo await states of a running mapping stream. */
class StateWatch {
  private last: MappingState | undefined;
  private waiter: { test: (s: MappingState) => boolean; resolve: (s: MappingState) => void } | undefined;
  private finished = false;
  private failure: unknown;
  private onEnd: { resolve: () => void; reject: (e: unknown) => void } | undefined;

  next(state: MappingState): void {
    this.last = state;
    if (this.waiter?.test(state)) {
      const { resolve } = this.waiter;
      this.waiter = undefined;
      resolve(state);
    }
  }

  fail(error: unknown): void {
    this.finished = true;
    this.failure = error ?? new Error('failed');
    this.onEnd?.reject(this.failure);
  }

  complete(): void {
    this.finished = true;
    this.onEnd?.resolve();
  }

  /** The first state (the current one included) that passes `test`, within the step bound. */
  until(test: (s: MappingState) => boolean, what: string): Promise<MappingState> {
    if (this.last && test(this.last)) return Promise.resolve(this.last);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`no ${what} within ${STEP_TIMEOUT_MS} ms (last state: ${this.last?.status ?? 'none'}${this.last?.error ? `, ${this.last.error.message}` : ''})`));
      }, STEP_TIMEOUT_MS);
      this.waiter = {
        test,
        resolve: (s) => {
          clearTimeout(timer);
          resolve(s);
        },
      };
    });
  }

  /** Resolves when the stream completes, within the step bound. */
  done(): Promise<void> {
    if (this.finished) return this.failure !== undefined ? Promise.reject(this.failure) : Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the stop did not complete within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
      this.onEnd = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }
}

function toEntry(sim: GatewaySimulator) {
  return (m: ReturnType<GatewaySimulator['table']['list']>[number]) => ({
    protocol: m.protocol,
    externalPort: m.externalPort,
    internalClient: m.internalClient,
    internalPort: m.internalPort,
    description: `${m.description} (via ${m.via})`,
    lifetimeSeconds: sim.table.remainingSeconds(m),
    enabled: true,
  });
}

/** The simulator's table, indented, or "(empty)". */
function simTable(sim: GatewaySimulator): string {
  const entries = sim.table.list().map(toEntry(sim));
  return entries.length === 0 ? '    (empty)' : indent(formatTable(entries));
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}
