/**
 * The faulty-gateway scenario table: what a router can do to a mapping, and what the mapping
 * stream must do about it. Data only (plus the small helpers the rows use); the runner is
 * `simulator-faults.test.ts`, which plays each row against each backend it names with a real
 * `mapPort` stream over real loopback sockets to the gateway simulator.
 *
 * A row runs in phases. Each phase may act on the gateway, then expects a sequence of states:
 * each step is the next state (not necessarily the very next one) with that status and
 * predicate, within `withinMs`. A phase may also forbid statuses while it runs.
 *
 * 1. `setup` (before the stream starts), expecting `established` (default: `mapped`);
 * 2. `inject` (the fault), expecting `faulted`;
 * 3. `recover` (the gateway behaves again), expecting `recovered` (default: `mapped`);
 * 4. teardown (always, by the runner): the table clock is frozen (nothing expires any more, so
 *    only a delete can remove our mapping), the stream is stopped gracefully and must complete
 *    with a last `unmapped`, and the gateway's table must hold nothing of ours.
 *
 * @packageDocumentation
 */
import { defer, type Observable } from 'rxjs';
import type { MappingState, MappingStatus } from '../../src/core/map-port.js';
import type { MappingProtocol, Nat } from '../../src/core/nat.js';
import { GatewayError, GatewayLostError, GatewayResetError, GatewayTimeoutError, GatewayUnreachableError, ProtocolError } from '../../src/errors.js';
import { pcp } from '../../src/protocols/pcp/client.js';
import { pmp } from '../../src/protocols/pmp/client.js';
import { upnp } from '../../src/protocols/upnp/client.js';
import type { GatewaySimulator, GatewaySimulatorOptions } from '../../src/testing/simulator.js';
import type { SimulatedMapping } from '../../src/testing/table.js';
import type { UpnpFault } from '../../src/testing/upnp-server.js';

/** The backends a row can run on: NAT-PMP, PCP, UPnP IGDv2, UPnP IGDv1. */
export type Backend = 'pmp' | 'pcp' | 'upnp' | 'upnp-v1';

export const ALL: readonly Backend[] = ['pmp', 'pcp', 'upnp'];

/** What a row's actions and predicates see. */
export interface FaultContext {
  readonly backend: Backend;
  /** The gateway now (the rediscovery row replaces it). */
  readonly sim: GatewaySimulator;
  readonly request: { readonly protocol: MappingProtocol; readonly internalPort: number; readonly externalPort: number; readonly lifetimeSeconds: number };
  /** Every state so far. */
  readonly states: readonly MappingState[];
  latest(): MappingState | undefined;
  /** The latest `mapped` state before the current phase (for "renewals went up" predicates). */
  readonly before: MappingState | undefined;
  /** Our mappings (internal client 127.0.0.1) in the current gateway's table. */
  ours(): SimulatedMapping[];
  /** Seeded randomness (reply drops, HTTP resets). */
  random(): number;
  /** Registers something to undo at recovery (and at the end in any case). */
  onRecover(undo: () => void): void;
  /** Closes the current gateway: its ports refuse from now on. */
  closeGateway(): Promise<void>;
  /** Starts another gateway (new table, external address 198.51.100.9) on the same ports. */
  replaceGateway(): Promise<GatewaySimulator>;
}

/** One expected state. */
export interface Step {
  readonly status: MappingStatus;
  /** What else must hold, described for the failure message. */
  readonly where?: (state: MappingState, ctx: FaultContext) => boolean;
  readonly what?: string;
  /** How long the runner waits for it. Default 6000 ms. */
  readonly withinMs?: number;
}

/** One scenario. */
export interface FaultRow {
  readonly name: string;
  readonly backends: readonly Backend[];
  /** Requested lease. Default 3 s (renewed every second). */
  readonly lifetimeSeconds?: number;
  /** Simulator options for this row (merged over the runner's: short PCP leases, seeded drops). */
  readonly simulator?: (backend: Backend) => GatewaySimulatorOptions;
  /** The table's capacity (the "table full" row). */
  readonly capacity?: number;
  readonly setup?: (ctx: FaultContext) => void | Promise<void>;
  readonly established?: readonly Step[];
  readonly inject?: (ctx: FaultContext) => void | Promise<void>;
  readonly faulted?: readonly Step[];
  /** Statuses that must not appear between the injection and the recovery. */
  readonly faultedForbids?: readonly MappingStatus[];
  readonly recover?: (ctx: FaultContext) => void | Promise<void>;
  readonly recovered?: readonly Step[];
  /** Extra checks once recovered, before teardown. */
  readonly check?: (ctx: FaultContext) => void | Promise<void>;
  /**
   * Stop the stream while the fault is still on (no recovery): it must still complete, bounded
   * by `teardownTimeoutMs`; the gateway cannot hear the delete, so what is left must be gone
   * once its lease runs out (the runner does not freeze the clock for such a row).
   */
  readonly stopDuringFault?: boolean;
}

// --- Helpers the rows use ---------------------------------------------------------------------

export const isUpnp = (backend: Backend): boolean => backend === 'upnp' || backend === 'upnp-v1';

/** The client options every row uses: short deadlines, fast retransmissions, loopback only. */
export function natSource(backend: Backend, current: () => GatewaySimulator): Observable<Nat> {
  return defer(() => {
    const sim = current();
    const local = { localAddress: sim.address };
    const udp = { ...local, probeTimeoutMs: 500, timeoutMs: 500, initialRetransmitMs: 50 };
    switch (backend) {
      case 'pmp':
        return pmp(sim.address, { ...udp, port: sim.pmpPort });
      case 'pcp':
        return pcp(sim.address, { ...udp, port: sim.pcpPort, maxRetransmitMs: 200, fallbackToPmp: false });
      case 'upnp':
      case 'upnp-v1':
        return upnp({ ...local, ssdpTargets: [sim.ssdpTarget], timeoutMs: 500, requestTimeoutMs: 500 });
    }
  });
}

const refusedWith =
  (codes: Readonly<Record<'pmp' | 'pcp' | 'upnp', number>>) =>
  (state: MappingState, ctx: FaultContext): boolean =>
    state.error instanceof GatewayError && state.error.resultCode === codes[isUpnp(ctx.backend) ? 'upnp' : (ctx.backend as 'pmp' | 'pcp')];

/** The gateway refuses every add (and renewal) with the protocol's code for it. */
function refuseAdds(ctx: FaultContext, codes: Readonly<Record<'pmp' | 'pcp' | 'upnp', number>>): void {
  if (isUpnp(ctx.backend)) {
    ctx.sim.upnp.faults.inject({ kind: 'error', code: codes.upnp }, { action: 'AddPortMapping', times: Infinity });
    ctx.sim.upnp.faults.inject({ kind: 'error', code: codes.upnp }, { action: 'AddAnyPortMapping', times: Infinity });
  } else {
    const protocol = ctx.backend as 'pmp' | 'pcp';
    ctx.sim.pmpPcp.faults.refuse = { resultCode: codes[protocol], protocol, lifetimeSeconds: 1 };
  }
}

function clearFaults(ctx: FaultContext): void {
  const faults = ctx.sim.pmpPcp.faults;
  faults.refuse = undefined;
  faults.drop = undefined;
  faults.delayMs = 0;
  faults.silent = false;
  faults.tamper = undefined;
  ctx.sim.upnp.faults.clear();
}

/** Calls `listener` on every UPnP request, before the simulator answers it (so it can inject a fault for that very request). */
function onUpnpRequest(ctx: FaultContext, listener: (action: string) => void): void {
  const sim = ctx.sim;
  sim.upnp.events.on('request', listener);
  ctx.onRecover(() => sim.upnp.events.off('request', listener));
}

const hasOurs = (ctx: FaultContext): boolean => ctx.ours().some((m) => m.internalPort === ctx.request.internalPort);
const renewedSince = (state: MappingState, ctx: FaultContext): boolean => state.renewals > (ctx.before?.renewals ?? -1);

const mappedAndHeld: Step = { status: 'mapped', where: (_s, ctx) => hasOurs(ctx), what: 'mapped, and the gateway holds it' };
const degradedBy = (what: string, where: (s: MappingState, ctx: FaultContext) => boolean): Step => ({ status: 'degraded', where, what: `degraded (${what})` });
const unmappedBy = (what: string, where: (s: MappingState, ctx: FaultContext) => boolean): Step => ({
  status: 'unmapped',
  where: (s, ctx) => s.externalPort === 0 && s.externalIp === null && where(s, ctx),
  what: `unmapped (${what})`,
});
const timedOut = (s: MappingState): boolean => s.error instanceof GatewayTimeoutError;
const unreachable = (s: MappingState): boolean => s.error instanceof GatewayUnreachableError;
const lost = (s: MappingState): boolean => s.error instanceof GatewayLostError;
/** A garbage answer: NAT-PMP/PCP drop what they cannot match (so: a timeout); UPnP reports it. */
const garbage = (s: MappingState): boolean =>
  s.error instanceof GatewayTimeoutError || s.error instanceof ProtocolError || s.error instanceof GatewayUnreachableError;

const NEW_EXTERNAL_IP = '198.51.100.77';
const OTHER_CLIENT = '10.0.0.99';

// --- The table --------------------------------------------------------------------------------

export const FAULT_TABLE: readonly FaultRow[] = [
  {
    name: 'silent gateway: renewals time out, degraded until the lease ends, then unmapped',
    backends: ALL,
    inject: (ctx) => {
      if (isUpnp(ctx.backend)) ctx.sim.upnp.faults.inject({ kind: 'silent' }, { times: Infinity });
      else ctx.sim.pmpPcp.faults.silent = true;
    },
    faulted: [degradedBy('timeout', timedOut), unmappedBy('timeout', timedOut)],
    recover: clearFaults,
  },
  {
    name: 'stop while the gateway is silent (renewal in flight): completes within the teardown bound; what is left expires with its lease',
    backends: ALL,
    inject: (ctx) => {
      if (isUpnp(ctx.backend)) ctx.sim.upnp.faults.inject({ kind: 'silent' }, { times: Infinity });
      else ctx.sim.pmpPcp.faults.silent = true;
    },
    faulted: [degradedBy('timeout', timedOut)],
    stopDuringFault: true,
  },
  {
    name: 'slow gateway: answers after the deadline (1.5 s > 0.5 s), same as silent',
    backends: ALL,
    inject: (ctx) => {
      if (isUpnp(ctx.backend)) ctx.sim.upnp.faults.inject({ kind: 'delay', ms: 1500 }, { times: Infinity });
      else ctx.sim.pmpPcp.faults.delayMs = 1500;
    },
    faulted: [degradedBy('timeout', timedOut), unmappedBy('timeout', timedOut)],
    recover: clearFaults,
  },
  {
    name: '50 % reply loss (UDP): NAT-PMP/PCP retransmit through it; renewals go on, never unmapped',
    backends: ['pmp', 'pcp'],
    // 4 s leases: a renewal (four sends in its 500 ms deadline) then has room for two retries
    // before the lease ends, so a lapse needs some 12 lost replies in a row (3 s leases left one
    // retry on a loaded machine: a CI rehearsal saw the lease lapse through 50 % loss).
    lifetimeSeconds: 4,
    inject: (ctx) => {
      ctx.sim.pmpPcp.faults.drop = { probability: 0.5 };
    },
    faulted: [{ status: 'mapped', where: (s, ctx) => s.renewals >= (ctx.before?.renewals ?? 0) + 4, what: 'mapped, renewed 4 more times', withinMs: 15_000 }],
    faultedForbids: ['unmapped', 'mapping'],
    recover: clearFaults,
    recovered: [{ status: 'mapped', where: renewedSince, what: 'mapped, renewed again' }],
  },
  {
    name: 'UPnP flaky connections: half the exchanges reset mid-response or stall past the deadline; renewals go on',
    backends: ['upnp'],
    inject: (ctx) => {
      onUpnpRequest(ctx, (action) => {
        const roll = ctx.random();
        const fault: UpnpFault | undefined = roll < 0.25 ? { kind: 'reset' } : roll < 0.5 ? { kind: 'delay', ms: 1000 } : undefined;
        if (fault) ctx.sim.upnp.faults.inject(fault, { action: action as never, times: 1 });
      });
    },
    // Resets count as "unreachable": three in a row declare the gateway lost and rediscover it
    // (documented: GatewayUnreachableError covers resets), so `unmapped` may appear here.
    faulted: [{ status: 'mapped', where: (s, ctx) => s.renewals >= (ctx.before?.renewals ?? 0) + 2 && hasOurs(ctx), what: 'mapped, renewed 2 more times', withinMs: 10_000 }],
    recover: clearFaults,
    recovered: [{ status: 'mapped', where: (s, ctx) => hasOurs(ctx) && s.error === null, what: 'mapped' }],
  },
  {
    name: 'reboot, NAT-PMP/PCP: table wiped and epoch reset; re-added at once (long before the renewal)',
    backends: ['pmp', 'pcp'],
    lifetimeSeconds: 60,
    inject: (ctx) => ctx.sim.reboot(),
    // The renewal is 20 s away: only the epoch can explain a re-add within 4 s.
    // The router forgot the mapping: the state says so at once (unmapped with a GatewayResetError,
    // never degraded), until the re-add is granted.
    faulted: [{ status: 'mapped', where: (s, ctx) => renewedSince(s, ctx) && hasOurs(ctx), what: 're-added (renewals up, gateway holds it)', withinMs: 4000 }],
    faultedForbids: ['degraded', 'mapping'],
    check: (ctx) => {
      const lost = ctx.states.filter((s) => s.status === 'unmapped');
      if (!lost.every((s) => s.error instanceof GatewayResetError)) throw new Error(`unmapped after a reboot must say GatewayResetError: ${lost.map((s) => s.error?.name).join(', ')}`);
    },
  },
  {
    name: 'reboot, UPnP: table wiped and the control port moved; refused 3 times, lost, rediscovered over SSDP',
    backends: ['upnp', 'upnp-v1'],
    inject: (ctx) => ctx.sim.reboot({ moveControlPort: true }),
    faultedForbids: ['mapping'],
    faulted: [
      degradedBy('connection refused', unreachable),
      unmappedBy('gateway lost', lost),
      // Rediscovery shows no "mapping" in between: the stream stays unmapped (lost) until mapped.
      mappedAndHeld,
    ],
    recovered: [mappedAndHeld],
  },
  {
    name: 'external address change: seen by the address poll, emitted at once and re-added',
    backends: ALL,
    lifetimeSeconds: 60,
    inject: (ctx) => ctx.sim.setExternalIp(NEW_EXTERNAL_IP),
    faulted: [
      {
        status: 'mapped',
        where: (s, ctx) => s.externalIp === NEW_EXTERNAL_IP && renewedSince(s, ctx) && hasOurs(ctx),
        what: `mapped on ${NEW_EXTERNAL_IP}, re-added`,
        withinMs: 4000,
      },
    ],
    faultedForbids: ['degraded', 'unmapped', 'mapping'],
  },
  {
    name: 'mapping deleted behind our back (idle cleaning): re-added by the next renewal',
    backends: ALL,
    inject: (ctx) => {
      for (const m of ctx.ours()) ctx.sim.table.delete(m.protocol, m.externalPort);
    },
    // No detection in the core: the stream stays `mapped` through the gap; the renewal (every
    // lease/3 = 1 s here) re-creates it.
    faulted: [{ status: 'mapped', where: (s, ctx) => renewedSince(s, ctx) && hasOurs(ctx), what: 're-added by a renewal', withinMs: 3000 }],
    faultedForbids: ['degraded', 'unmapped', 'mapping'],
  },
  {
    name: '718 conflict: the port is held by another client; mapped on another port (PMP/PCP: gateway picks, IGDv2: AddAnyPortMapping, IGDv1: random port)',
    backends: ['pmp', 'pcp', 'upnp', 'upnp-v1'],
    setup: (ctx) => {
      const { protocol, externalPort } = ctx.request;
      const via = isUpnp(ctx.backend) ? 'upnp' : (ctx.backend as 'pmp' | 'pcp');
      ctx.sim.table.add({ protocol, internalClient: OTHER_CLIENT, internalPort: externalPort, externalPort, lifetimeSeconds: 0, via, description: 'other' });
    },
    established: [{ status: 'mapped', where: (s, ctx) => s.externalPort !== ctx.request.externalPort && s.externalPort > 0 && hasOurs(ctx), what: 'mapped on another port' }],
    check: (ctx) => {
      const other = ctx.sim.table.get(ctx.request.protocol, ctx.request.externalPort);
      if (other?.internalClient !== OTHER_CLIENT) throw new Error(`the other client's mapping was disturbed: ${JSON.stringify(other)}`);
    },
  },
  {
    name: '725 OnlyPermanentLeasesSupported (router switched mid-life): re-added with lease 0, deleted at teardown',
    backends: ['upnp', 'upnp-v1'],
    inject: (ctx) => {
      ctx.sim.upnp.faults.permanentLeasesOnly = true;
    },
    faulted: [{ status: 'mapped', where: (s, ctx) => s.lifetimeSeconds === 0 && hasOurs(ctx), what: 'mapped with a permanent lease' }],
    faultedForbids: ['unmapped', 'mapping'],
  },
  {
    name: '402 InvalidArgs on any non-zero lease (routers that mean "permanent only"): re-added with lease 0',
    backends: ['upnp', 'upnp-v1'],
    inject: (ctx) => {
      const sim = ctx.sim;
      onUpnpRequest(ctx, (action) => {
        if (action === 'AddPortMapping' && sim.upnp.requests.at(-1)?.args.NewLeaseDuration !== '0') {
          sim.upnp.faults.inject({ kind: 'error', code: 402 }, { action: 'AddPortMapping', times: 1 });
        }
      });
    },
    faulted: [{ status: 'mapped', where: (s, ctx) => s.lifetimeSeconds === 0 && hasOurs(ctx), what: 'mapped with a permanent lease' }],
    faultedForbids: ['unmapped', 'mapping'],
  },
  {
    name: '606 / NOT_AUTHORIZED: refused renewals, degraded then unmapped, mapped once allowed again',
    backends: ALL,
    inject: (ctx) => refuseAdds(ctx, { pmp: 2, pcp: 2, upnp: 606 }),
    faulted: [degradedBy('refused', refusedWith({ pmp: 2, pcp: 2, upnp: 606 })), unmappedBy('refused', refusedWith({ pmp: 2, pcp: 2, upnp: 606 }))],
    recover: clearFaults,
  },
  {
    name: '501 ActionFailed / NETWORK_FAILURE (broken uplink): degraded then unmapped, mapped once the uplink is back',
    backends: ALL,
    inject: (ctx) => refuseAdds(ctx, { pmp: 3, pcp: 7, upnp: 501 }),
    faulted: [degradedBy('refused', refusedWith({ pmp: 3, pcp: 7, upnp: 501 })), unmappedBy('refused', refusedWith({ pmp: 3, pcp: 7, upnp: 501 }))],
    recover: clearFaults,
  },
  {
    name: 'table full (728 / OUT_OF_RESOURCES / NO_RESOURCES): unmapped from the start, mapped once an entry frees',
    backends: ALL,
    capacity: 3,
    setup: (ctx) => {
      for (let i = 0; i < 3; i++) {
        const via = isUpnp(ctx.backend) ? 'upnp' : (ctx.backend as 'pmp' | 'pcp');
        ctx.sim.table.add({ protocol: ctx.request.protocol, internalClient: OTHER_CLIENT, internalPort: 50000 + i, externalPort: 50000 + i, lifetimeSeconds: 0, via });
      }
    },
    established: [unmappedBy('table full', refusedWith({ pmp: 4, pcp: 8, upnp: 728 }))],
    recover: (ctx) => {
      ctx.sim.table.delete(ctx.request.protocol, 50000);
    },
    recovered: [mappedAndHeld],
  },
  {
    name: 'gateway disappears (ports refuse) and another appears: lost after 3 refusals, rediscovered, mapped on the new one',
    backends: ALL,
    inject: (ctx) => ctx.closeGateway(),
    faulted: [degradedBy('connection refused', unreachable), unmappedBy('gateway lost', lost)],
    recover: async (ctx) => {
      await ctx.replaceGateway();
    },
    recovered: [{ status: 'mapped', where: (s, ctx) => s.externalIp === '198.51.100.9' && hasOurs(ctx), what: 'mapped on the new gateway (198.51.100.9)' }],
  },
  {
    name: 'garbage answers (random bytes, truncated, malformed/empty/reset/oversized SOAP): degraded then unmapped, never a crash',
    backends: ALL,
    inject: (ctx) => {
      if (isUpnp(ctx.backend)) {
        const kinds: readonly UpnpFault[] = [{ kind: 'malformed' }, { kind: 'empty' }, { kind: 'reset' }, { kind: 'oversize', bytes: 300_000 }];
        let n = 0;
        onUpnpRequest(ctx, (action) => ctx.sim.upnp.faults.inject(kinds[n++ % kinds.length] as UpnpFault, { action: action as never, times: 1 }));
      } else {
        ctx.sim.pmpPcp.faults.tamper = (reply) => [
          reply.map(() => Math.floor(ctx.random() * 256)),
          reply.subarray(0, Math.floor(reply.length / 2)),
          Uint8Array.of(...reply, 0, 0, 0, 0),
        ];
      }
    },
    faulted: [degradedBy('garbage', garbage), unmappedBy('garbage', garbage)],
    recover: clearFaults,
  },
];
