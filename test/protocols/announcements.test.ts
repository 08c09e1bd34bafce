/**
 * NAT-PMP/PCP gateway announcements (RFC 6886 §3.2.1, RFC 6887 §14.1.3): the backends listen
 * while a mapping stream watches `resets$`, and a reboot or a new external address announced by
 * the gateway re-maps at once. In virtual time over the fake network (the defaults: what is bound
 * and joined, never a real socket), and end to end over loopback against the simulator, whose
 * announcements go unicast to a loopback port the test picked (never multicast).
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { EMPTY, firstValueFrom, Subject, type Observable, type Subscription } from 'rxjs';
import { createTransport } from '../../src/transport/transport.js';
import { createGatewayRegistry } from '../../src/core/gateway-context.js';
import type { Logger } from '../../src/core/logger.js';
import { mapPort } from '../../src/core/map-port.js';
import type { MappingState } from '../../src/core/mapping-state.js';
import type { Nat } from '../../src/core/nat.js';
import { GatewayResetError, ProtocolError } from '../../src/errors.js';
import { pcp } from '../../src/protocols/pcp/client.js';
import { createPmpNat, pmp } from '../../src/protocols/pmp/client.js';
import { decodePmpRequest, encodePmpResponse } from '../../src/protocols/pmp/codec.js';
import { announcementListener, resolvePortControlOptions, type AnnouncementOptions } from '../../src/protocols/pmp-pcp-shared.js';
import { startPmpPcpServer, type PmpPcpServer } from '../../src/testing/pmp-pcp-server.js';
import { MappingTable } from '../../src/testing/table.js';
import { FakeNetwork } from '../support/fake-network.js';
import { closedUdpPort, waitFor } from '../support/net.js';
import { VirtualClock } from '../support/virtual-clock.js';

const announcement = (epochSeconds: number, externalIp = '203.0.113.7'): Uint8Array => encodePmpResponse({ op: 'external-address', resultCode: 0, epochSeconds, externalIp });

describe('announcement listener in virtual time (fake network)', () => {
  const GATEWAY = '192.168.77.1';
  const SERVER = { address: GATEWAY, port: 5351 };
  const setup = (gateway = GATEWAY): { clock: VirtualClock; net: FakeNetwork; epoch: { seconds: number } } => {
    const clock = new VirtualClock();
    const net = new FakeNetwork(clock);
    const epoch = { seconds: 3600 };
    net.udp({ address: gateway, port: 5351 }, ({ data, reply }) => {
      const decoded = decodePmpRequest(data);
      if (decoded instanceof ProtocolError) return;
      if (decoded.op === 'external-address') reply(announcement(epoch.seconds));
      else {
        const { protocol, internalPort, suggestedExternalPort: externalPort, lifetimeSeconds } = decoded;
        reply(encodePmpResponse({ op: 'map', protocol, resultCode: 0, epochSeconds: epoch.seconds, internalPort, externalPort, lifetimeSeconds }), 1);
      }
    });
    return { clock, net, epoch };
  };

  it('by default: nothing bound for a bare probe; 0.0.0.0:5350 and group 224.0.0.1 while resets$ is watched, closed after', () => {
    const { clock, net } = setup();
    let nat: Nat | undefined;
    pmp(GATEWAY, { transport: net.transport(), localAddress: '192.168.77.10' }).subscribe((found) => (nat = found));
    clock.advance(10);
    assert.ok(nat, 'probe answered');
    assert.deepEqual([net.openSockets, net.joined.length], [0, 0], 'a probe binds no listener');
    const resets: unknown[] = [];
    const first = nat.resets$?.subscribe((r) => resets.push(r));
    const second = nat.resets$?.subscribe(() => undefined);
    assert.equal(net.openSockets, 1, 'one listener, shared');
    assert.deepEqual(net.joined, [{ group: '224.0.0.1', interfaceAddress: '192.168.77.10', local: { address: '0.0.0.0', port: 5350 } }]);
    first?.unsubscribe();
    assert.equal(net.openSockets, 1, 'still watched');
    second?.unsubscribe();
    assert.equal(net.openSockets, 0, 'closed with the last watcher');
  });

  it('no listener for a loopback gateway by default, nor with announcements: false', () => {
    for (const [gateway, announcements] of [
      ['127.0.0.1', undefined],
      [GATEWAY, false],
    ] as const) {
      const { net } = setup(gateway);
      const nat = createPmpNat(gateway, { transport: net.transport(gateway), announcements });
      const subscription = nat.resets$?.subscribe();
      assert.deepEqual([net.openSockets, net.joined.length], [0, 0], `${gateway} ${String(announcements)}`);
      subscription?.unsubscribe();
    }
  });

  it('an announced reboot resets at once; the same epoch again, or one from another address, does not', () => {
    const { clock, net } = setup();
    const nat = createPmpNat(GATEWAY, { transport: net.transport() });
    const resets: number[] = [];
    const subscription = nat.resets$?.subscribe(() => resets.push(clock.now()));
    nat.externalIp().subscribe();
    clock.advance(10);
    const to = { address: '192.168.77.10', port: 5350 };
    assert.ok(net.deliver(to, announcement(0), { address: '192.168.77.2', port: 5351 }), 'delivered');
    assert.deepEqual(resets, [], 'another host on the LAN is not the gateway');
    clock.advance(1000);
    net.deliver(to, announcement(0), SERVER);
    assert.deepEqual(resets, [1010], 'the gateway rebooted: reset at once');
    clock.advance(250);
    net.deliver(to, announcement(0), SERVER); // the RFC's repeat, 250 ms later
    net.deliver(to, Uint8Array.of(0, 129, 0, 0), SERVER); // not an announcement
    assert.deepEqual(resets, [1010], 'a repeat is no second reset');
    subscription?.unsubscribe();
  });

  it('a PCP ANNOUNCE from a gateway speaking both protocols resets a NAT-PMP Nat too (what miniupnpd multicasts on start)', () => {
    const { clock, net } = setup();
    const nat = createPmpNat(GATEWAY, { transport: net.transport() });
    const resets: number[] = [];
    const subscription = nat.resets$?.subscribe(() => resets.push(clock.now()));
    nat.externalIp().subscribe();
    clock.advance(500);
    // miniupnpd 2.3's start-up ANNOUNCE, byte for byte: version 2, R + ANNOUNCE, success, epoch 0.
    const pcpAnnounce = Uint8Array.from(Buffer.from('028000000000000000000000000000000000000000000000', 'hex'));
    net.deliver({ address: '0.0.0.0', port: 5350 }, pcpAnnounce, SERVER);
    assert.deepEqual(resets, [500]);
    subscription?.unsubscribe();
  });

  it('a new external address announced with a steady epoch is a reset (the mappings were on the old one)', () => {
    const { clock, net } = setup();
    const nat = createPmpNat(GATEWAY, { transport: net.transport() });
    const resets: number[] = [];
    const subscription = nat.resets$?.subscribe(() => resets.push(clock.now()));
    nat.externalIp().subscribe();
    clock.advance(2000);
    const to = { address: '0.0.0.0', port: 5350 };
    net.deliver(to, announcement(3602, '203.0.113.7'), SERVER);
    assert.deepEqual(resets, [], 'same address, epoch in step');
    net.deliver(to, announcement(3602, '198.51.100.4'), SERVER);
    assert.deepEqual(resets, [2000]);
    subscription?.unsubscribe();
  });

  it('a mapping stream re-adds in the same tick as the announcement (virtual time)', () => {
    const { clock, net } = setup();
    const states: Array<{ at: number; state: MappingState }> = [];
    const stop = new Subject<void>();
    mapPort(createPmpNat(GATEWAY, { transport: net.transport() }), { protocol: 'udp', internalPort: 30303, lifetimeSeconds: 3600 }, {
      scheduler: clock,
      stop,
      gatewayRegistry: createGatewayRegistry(),
      logger: { debug: () => undefined },
    }).subscribe((state) => states.push({ at: clock.now(), state }));
    clock.advance(5000);
    assert.equal(states.at(-1)?.state.status, 'mapped');
    const mapsBefore = net.sentTo(SERVER).length;
    net.deliver({ address: '0.0.0.0', port: 5350 }, announcement(0), SERVER);
    const sentAfter = net.sentTo(SERVER).slice(mapsBefore);
    const first = sentAfter[0];
    assert.ok(first !== undefined, 'a request went out');
    assert.equal(first.at, 5000, 'in the same tick as the announcement');
    assert.equal(first.data[1], 1, 'a MAP (UDP) request: the re-add');
    clock.advance(10);
    const afterAnnouncement = states.filter((s) => s.at >= 5000).map((s) => s.state.status);
    assert.deepEqual(afterAnnouncement, ['unmapped', 'mapped']);
    stop.next();
    clock.advance(1000);
  });
});

/** A loopback simulator whose reboots are announced to a loopback port the test listens on. */
interface Rig {
  readonly table: MappingTable;
  readonly server: PmpPcpServer;
  readonly listenPort: number;
  readonly logs: string[];
  readonly logger: Logger;
  /** Sets the table's clock forward (the epoch is seconds since the table's last boot). */
  age(ms: number): void;
}

async function rig(protocols?: { pmp?: boolean; pcp?: boolean }): Promise<Rig> {
  let shift = 0;
  const table = new MappingTable({ externalIp: '203.0.113.7', now: () => Date.now() + shift });
  shift = 3_600_000; // an hour up: a reboot's epoch 0 is plainly backwards
  const listenPort = await closedUdpPort(HOST);
  const server = await startPmpPcpServer(table, { address: HOST, port: 0, pcpMinLifetimeSeconds: 1, protocols, announceTo: [{ address: HOST, port: listenPort }] });
  const logs: string[] = [];
  return {
    table,
    server,
    listenPort,
    logs,
    logger: { debug: (namespace, message) => logs.push(`${namespace} ${message}`) },
    age: (ms) => (shift += ms),
  };
}

const HOST = '127.0.0.1';
/** Deadlines no loaded machine misses on loopback; no retransmission to muddle the counts. */
const PORT_CONTROL = { probeTimeoutMs: 10_000, timeoutMs: 10_000, initialRetransmitMs: 5000 } as const;

function natOf(kind: 'pmp' | 'pcp', r: Rig, announcements: AnnouncementOptions | false): Observable<Nat> {
  const options = { ...PORT_CONTROL, port: r.server.port, localAddress: HOST, logger: r.logger, announcements };
  return kind === 'pmp' ? pmp(HOST, options) : pcp(HOST, { ...options, fallbackToPmp: false });
}

/**
 * A mapping stream that never polls the address nor renews during a test (only a reset can make
 * it add again), its states collected with their wall-clock time.
 */
function startMapping(nat: Nat | Observable<Nat>, r: Rig): { states: Array<{ at: number; state: MappingState }>; stop: () => Promise<void> } {
  const states: Array<{ at: number; state: MappingState }> = [];
  const stop$ = new Subject<void>();
  let subscription: Subscription | undefined;
  const done = new Promise<void>((resolve, reject) => {
    subscription = mapPort(nat, { protocol: 'tcp', internalPort: 8080, lifetimeSeconds: 3600 }, { stop: stop$, externalIpCacheMs: 600_000, gatewayRegistry: createGatewayRegistry(), logger: r.logger }).subscribe({
      next: (state) => states.push({ at: Date.now(), state }),
      error: reject,
      complete: resolve,
    });
  });
  if (subscription !== undefined) live.add(subscription);
  return {
    states,
    stop: async () => {
      stop$.next();
      await done;
      if (subscription !== undefined) live.delete(subscription);
    },
  };
}

/** Mapping streams a failed test left running: ended after the file, so the process can exit. */
const live = new Set<Subscription>();
after(() => {
  for (const subscription of live) subscription.unsubscribe();
});

for (const kind of ['pmp', 'pcp'] as const) {
  describe(`${kind}: announcements end to end over loopback`, { timeout: 60_000 }, () => {
    const rigs: Rig[] = [];
    after(() => Promise.all(rigs.map((r) => r.server.close())));
    const start = async (): Promise<Rig> => {
      // PCP alone for pcp(): the simulator then announces in PCP form only (NAT-PMP's form is
      // what the pmp() rig hears, next to a PCP ANNOUNCE it must ignore).
      const r = await rig(kind === 'pcp' ? { pmp: false } : undefined);
      rigs.push(r);
      return r;
    };
    const listening = (r: Rig): boolean => r.logs.some((l) => l.includes(`listening on ${HOST}:${r.listenPort}`));
    /**
     * Whether the first external-address lookup has reached the server: a NAT-PMP request for
     * pmp(); for pcp() against a PCP-only server, that request refused and the MAP it falls back
     * to (the address from a MAP response).
     */
    const lookupDone = (r: Rig): boolean => {
      const kinds = r.server.log.map((e) => e.kind);
      const lookup = kinds.indexOf('pmp.externalAddress');
      if (lookup < 0) return false;
      return kind === 'pmp' ? kinds.includes('pmp.mapTcp') : kinds.indexOf('pcp.map', lookup) > lookup;
    };
    const mappedAgain = (states: Array<{ at: number; state: MappingState }>, since: number): boolean => {
      const after = states.filter((s) => s.at >= since).map((s) => s.state.status);
      const unmapped = after.indexOf('unmapped');
      return unmapped >= 0 && after.indexOf('mapped', unmapped) > unmapped;
    };

    it('a reboot announced by the gateway is re-mapped at once: the first request after it is the re-add', async (t) => {
      const r = await start();
      const { states, stop } = startMapping(natOf(kind, r, { address: HOST, port: r.listenPort, group: false }), r);
      await waitFor(() => states.at(-1)?.state.status === 'mapped' && listening(r), 10_000, 'mapped and listening');
      // The address watcher's first lookup queues right behind the add and may reach the server
      // after `mapped` is seen; on a busy machine, after the reboot. Let it land first.
      await waitFor(() => lookupDone(r), 10_000, 'the first external-address lookup answered');
      r.server.resetCounters();
      const rebootedAt = Date.now();
      r.table.reboot(); // the simulator announces it to the listener
      await waitFor(() => r.table.list().some((m) => m.internalPort === 8080), 5000, 'the mapping back in the table');
      const backAfterMs = Date.now() - rebootedAt;
      await waitFor(() => mappedAgain(states, rebootedAt), 5000, 'unmapped, then mapped again');
      t.diagnostic(`${kind}: re-added ${backAfterMs} ms after the announced reboot`);
      assert.equal(r.server.log[0]?.kind, kind === 'pmp' ? 'pmp.mapTcp' : 'pcp.map', 'the first request after the reboot is the re-add, not a poll');
      const reset = states.find((s) => s.at >= rebootedAt && s.state.status === 'unmapped')?.state.error;
      assert.ok(reset instanceof GatewayResetError, `unmapped by a reset, got ${String(reset)}`);
      assert.ok(r.logs.some((l) => l.includes(`announcement from ${HOST}: epoch 0`)), 'the announcement was heard');
      await stop();
      assert.deepEqual(r.table.list(), []);
    });

    it('an announcement from another address is ignored; the same from the gateway is not', async () => {
      const r = await start();
      const { states, stop } = startMapping(natOf(kind, r, { address: HOST, port: r.listenPort, group: false }), r);
      await waitFor(() => states.at(-1)?.state.status === 'mapped' && listening(r), 10_000, 'mapped and listening');
      const forged = kind === 'pmp' ? announcement(0) : Uint8Array.of(2, 128, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, ...new Array<number>(12).fill(0));
      // Another host on the LAN (127.0.0.2 is loopback too), claiming a reboot.
      const intruder: Socket = createSocket('udp4');
      await new Promise<void>((resolve) => intruder.bind(r.server.port, '127.0.0.2', resolve));
      await new Promise<void>((resolve, reject) => intruder.send(forged, r.listenPort, HOST, (e) => (e ? reject(e) : resolve())));
      intruder.close();
      await waitFor(() => r.logs.some((l) => l.includes('ignored an announcement from 127.0.0.2')), 5000, 'the intruder logged as ignored');
      // The filter runs in the same tick as a reset would: none happened.
      assert.deepEqual(states.map((s) => s.state.status).slice(-1), ['mapped']);
      assert.ok(!states.some((s) => s.state.status === 'unmapped'), 'never unmapped by the intruder');
      const sentAt = Date.now();
      await r.server.send(forged, { address: HOST, port: r.listenPort });
      await waitFor(() => mappedAgain(states, sentAt), 5000, 'the gateway\'s own announcement re-maps');
      await stop();
    });

    it('a port already bound: no listener, no error; reboots still show in reply epochs', async () => {
      const r = await start();
      const holder = createSocket('udp4');
      await new Promise<void>((resolve) => holder.bind(r.listenPort, HOST, resolve));
      try {
        const nat = await firstValueFrom(natOf(kind, r, { address: HOST, port: r.listenPort, group: false }));
        const { states, stop } = startMapping(nat, r);
        await waitFor(() => states.at(-1)?.state.status === 'mapped', 10_000, 'mapped');
        await waitFor(() => r.logs.some((l) => /not listening for announcements \(.*EADDRINUSE/.test(l)), 5000, 'the fallback logged at debug');
        const rebootedAt = Date.now();
        r.table.reboot();
        // The next reply shows the epoch went back: the fallback, as before announcements.
        await firstValueFrom(nat.externalIp()).catch(() => undefined);
        await waitFor(() => mappedAgain(states, rebootedAt) && r.table.list().some((m) => m.internalPort === 8080), 5000, 're-mapped from the reply epoch');
        await stop();
      } finally {
        holder.close();
      }
    });
  });
}

describe('pmp: announcements of a new external address over loopback', { timeout: 60_000 }, () => {
  it('the simulator announces an address change; the mapping is re-added before any poll', async () => {
    const r = await rig();
    try {
      const { states, stop } = startMapping(natOf('pmp', r, { address: HOST, port: r.listenPort, group: false }), r);
      await waitFor(() => states.at(-1)?.state.status === 'mapped' && r.logs.some((l) => l.includes(`listening on ${HOST}:${r.listenPort}`)), 10_000, 'mapped and listening');
      r.server.resetCounters();
      r.table.setExternalIp('198.51.100.4');
      await waitFor(() => r.server.log.some((e) => e.kind === 'pmp.mapTcp'), 5000, 'a re-add');
      assert.equal(r.server.log[0]?.kind, 'pmp.mapTcp', 'the re-add came first, not a poll');
      assert.ok(r.logs.some((l) => l.includes('announced a new external address 198.51.100.4')));
      await stop();
    } finally {
      await r.server.close();
    }
  });
});

describe('announcements: no real port unasked behind a faked exchange', () => {
  it('a transport that fakes udpExchange but keeps the real udpListen does not listen by default; asked, it does', () => {
    const transport = createTransport({ udpExchange: () => EMPTY });
    assert.equal(announcementListener('192.0.2.1', resolvePortControlOptions({ transport }), 'pmp'), EMPTY);
    assert.notEqual(announcementListener('192.0.2.1', resolvePortControlOptions({ transport, announcements: { port: 0, group: false } }), 'pmp'), EMPTY);
    assert.notEqual(announcementListener('192.0.2.1', resolvePortControlOptions({}), 'pmp'), EMPTY, 'the real transport listens (not subscribed here)');
  });
});
