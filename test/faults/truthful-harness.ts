/**
 * Helpers of `truthful-lifecycle.test.ts`: a scope that owns every simulator and subscription a
 * test starts (and closes them whatever happens), NAT clients pointed at the simulator only
 * (explicit loopback gateway, ports and local address; never discovery against the host's
 * gateway), a recorder that also keeps when each state arrived, and the byte offsets of the
 * NAT-PMP/PCP reply fields the tests rewrite.
 *
 * @packageDocumentation
 */
import { firstValueFrom, type Observable, type Subscription } from 'rxjs';
import type { MapPortOptions, MappingState } from '../../src/core/map-port.js';
import type { MappingProtocol, Nat } from '../../src/core/nat.js';
import { pcp, type PcpOptions } from '../../src/protocols/pcp/client.js';
import { pmp, type PmpOptions } from '../../src/protocols/pmp/client.js';
import { upnp, type UpnpOptions } from '../../src/protocols/upnp/client.js';
import { startGatewaySimulator, type GatewaySimulator, type GatewaySimulatorOptions } from '../../src/testing/simulator.js';
import { MappingTable, type SimulatedMapping } from '../../src/testing/table.js';
import { FreezableClock, StateRecorder } from './harness.js';

/** The backends these tests run on. */
export type Kind = 'pmp' | 'pcp' | 'upnp';

/**
 * Fast retries and short bounds. The teardown bound (3 s) is one a loaded machine's loopback
 * deletes always meet, yet shorter than the 4 s that 200 deletes at 20 ms each take (C).
 */
export const FAST: MapPortOptions = { retry: { initialDelayMs: 50, maxDelayMs: 500 }, externalIpCacheMs: 250, teardownTimeoutMs: 3000 };

/** A long lease: nothing renews or expires within a test, only a delete removes it. */
export const LONG_LEASE_SECONDS = 7200;

/**
 * Client deadlines: 2 s per request (a healthy loopback answer meets it on a loaded machine),
 * fast retransmissions. A fault that answers "late" answers {@link LATE_MS} after the request.
 */
export const CLIENT_TIMEOUT_MS = 2000;

/** How late a late answer comes: three client deadlines, so load cannot bring it inside one. */
export const LATE_MS = CLIENT_TIMEOUT_MS * 3;

/**
 * How long a condition that must come true may take: only a failing test waits this long, so it
 * is generous enough for a loaded machine.
 */
export const PATIENCE_MS = 15_000;

/** A simulator with a freezable table clock (an hour of uptime, so epoch resets are unmistakable). */
export interface TestGateway {
  readonly sim: GatewaySimulator;
  readonly clock: FreezableClock;
}

/**
 * Everything one test starts: simulators, subscriptions, undo actions. `dispose()` ends them
 * all (subscriptions first, so deletes go out while the gateways still listen, then the
 * simulators), and is safe to call twice.
 */
export class Scope {
  private readonly sims: GatewaySimulator[] = [];
  private readonly subscriptions: Subscription[] = [];

  async gateway(options: GatewaySimulatorOptions & { readonly externalIp?: string } = {}): Promise<TestGateway> {
    const clock = new FreezableClock();
    const table = clock.withUptime(() => new MappingTable({ externalIp: options.externalIp ?? '203.0.113.1', now: clock.now }));
    const sim = await startGatewaySimulator({
      ...options,
      table,
      pmpPcp: { pcpMinLifetimeSeconds: 1, errorLifetimeSeconds: 1, ...options.pmpPcp },
    });
    this.sims.push(sim);
    return { sim, clock };
  }

  track(subscription: Subscription): Subscription {
    this.subscriptions.push(subscription);
    return subscription;
  }

  async dispose(): Promise<void> {
    for (const s of this.subscriptions.splice(0)) s.unsubscribe();
    await Promise.all(this.sims.splice(0).map((s) => s.close()));
  }
}

/** Client options pointed at the simulator only, with short deadlines unless overridden. */
export function clientOptions(kind: 'pmp', sim: GatewaySimulator, overrides?: PmpOptions): PmpOptions;
export function clientOptions(kind: 'pcp', sim: GatewaySimulator, overrides?: PcpOptions): PcpOptions;
export function clientOptions(kind: 'upnp', sim: GatewaySimulator, overrides?: UpnpOptions): UpnpOptions;
export function clientOptions(kind: Kind, sim: GatewaySimulator, overrides: PmpOptions | PcpOptions | UpnpOptions = {}): PmpOptions | PcpOptions | UpnpOptions {
  const local = { localAddress: sim.address };
  // One deadline for the probe too: PCP also uses it for the NAT-PMP requests it falls back to.
  const udp = { ...local, probeTimeoutMs: CLIENT_TIMEOUT_MS, timeoutMs: CLIENT_TIMEOUT_MS, initialRetransmitMs: 50 };
  switch (kind) {
    case 'pmp':
      return { ...udp, port: sim.pmpPort, ...overrides };
    case 'pcp':
      return { ...udp, port: sim.pcpPort, maxRetransmitMs: 200, fallbackToPmp: false, ...overrides };
    case 'upnp':
      return { ...local, descriptionUrl: sim.descriptionUrl, requestTimeoutMs: CLIENT_TIMEOUT_MS, ...overrides };
  }
}

/** A cold NAT source for `kind`, pointed at the simulator only (each subscription discovers anew). */
export function natSource(kind: Kind, sim: GatewaySimulator, overrides: PmpOptions | PcpOptions | UpnpOptions = {}): Observable<Nat> {
  switch (kind) {
    case 'pmp':
      return pmp(sim.address, clientOptions('pmp', sim, overrides as PmpOptions));
    case 'pcp':
      return pcp(sim.address, clientOptions('pcp', sim, overrides as PcpOptions));
    case 'upnp':
      return upnp(clientOptions('upnp', sim, overrides as UpnpOptions));
  }
}

/** Discovers the simulator once and returns its Nat (so faults can start after discovery). */
export function discover(kind: Kind, sim: GatewaySimulator, overrides: PmpOptions | PcpOptions | UpnpOptions = {}): Promise<Nat> {
  return firstValueFrom(natSource(kind, sim, overrides));
}

/** Our mappings (internal client = the simulator's loopback address) in the gateway's table. */
export function ours(sim: GatewaySimulator): SimulatedMapping[] {
  return sim.table.list().filter((m) => m.internalClient === sim.address);
}

/** Ours, as `tcp/30001->30001 (7200 s)` lines for failure messages. */
export function describeOurs(sim: GatewaySimulator): string[] {
  return ours(sim).map((m) => `${m.via} ${m.protocol}/${m.externalPort}->${m.internalPort} (${m.lifetimeSeconds} s)`);
}

/** MAP requests the NAT-PMP/PCP server received for a protocol. */
export function mapRequests(sim: GatewaySimulator, kind: 'pmp' | 'pcp', protocol: MappingProtocol): number {
  const byKind = sim.pmpPcp.counters.byKind;
  return kind === 'pcp' ? byKind['pcp.map'] : protocol === 'tcp' ? byKind['pmp.mapTcp'] : byKind['pmp.mapUdp'];
}

/** Every request the simulator received, all protocols (NAT-PMP/PCP datagrams, UPnP HTTP requests, M-SEARCH). */
export function requestsHeard(sim: GatewaySimulator): number {
  return sim.pmpPcp.counters.total + Object.values(sim.upnp.counters).reduce((a, b) => a + b, 0);
}

/**
 * A {@link StateRecorder} that also keeps `performance.now()` of each state, and can act from
 * inside an emission (`onState`): the only way to act at an exact point of the stream's life,
 * for example between a failed add and its retry, when nothing is in flight.
 */
export class TimedRecorder extends StateRecorder {
  readonly times: number[] = [];
  private readonly hooks: Array<{ match: (s: MappingState) => boolean; action: (s: MappingState) => void }> = [];

  override readonly observer = {
    next: (state: MappingState): undefined => {
      this.states.push(state);
      this.times.push(performance.now());
      for (const hook of [...this.hooks]) {
        if (hook.match(state)) {
          this.hooks.splice(this.hooks.indexOf(hook), 1);
          hook.action(state);
        }
      }
      return undefined;
    },
    error: (error: unknown) => {
      this.error = error;
    },
    complete: () => {
      this.completed = true;
    },
  };

  /** Runs `action` once, synchronously inside the first later emission that `match`es. */
  onState(match: (s: MappingState) => boolean, action: (s: MappingState) => void): void {
    this.hooks.push({ match, action });
  }

  /** When the first state matching `match` arrived (`performance.now()`), if one did. */
  firstTime(match: (s: MappingState) => boolean): number | undefined {
    const i = this.states.findIndex(match);
    return i < 0 ? undefined : this.times[i];
  }
}

/**
 * NAT-PMP reply fields (RFC 6886 §3.2, §3.3): version 0, opcode 1, result 2-3, epoch 4-7;
 * external address 8-11 (address reply); internal port 8-9, external port 10-11, lifetime 12-15 (map reply).
 */
export const PMP = { epoch: 4, externalIp: 8, externalPort: 10, lifetime: 12 } as const;

/**
 * PCP reply fields (RFC 6887 §7.2, §11.1): version 0, opcode 1, result 3, lifetime 4-7, epoch 8-11;
 * MAP data from 24: nonce 24-35, protocol 36, internal port 40-41, external port 42-43, external address 44-59.
 */
export const PCP = { lifetime: 4, epoch: 8, nonce: 24, externalPort: 42, externalIp: 44 } as const;

/** A copy of `bytes` with `length` bytes at `offset` replaced by `value` (big-endian) or by the given bytes. */
export function patch(bytes: Uint8Array, offset: number, value: number | readonly number[], length = 4): Uint8Array {
  const copy = Uint8Array.from(bytes);
  if (typeof value === 'number') {
    for (let i = length - 1, v = value; i >= 0; i--, v = Math.floor(v / 256)) copy[offset + i] = v & 0xff;
  } else {
    copy.set(value, offset);
  }
  return copy;
}

/** Whether a NAT-PMP/PCP request the server logged is a MAP (NAT-PMP map UDP/TCP, PCP MAP). */
export const isMap = (kind: string): boolean => kind === 'pmp.mapTcp' || kind === 'pmp.mapUdp' || kind === 'pcp.map';
