/**
 * PCP over IPv6 (RFC 6887; issue #12): the client against the simulator on `::1` over real
 * loopback sockets (MAP, renew, delete, nonces, the "no preference" address `::`, the external
 * address), and, with an in-memory transport, how the source address is chosen for a link-local
 * router and how the IPv6 default router is found.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { firstValueFrom, lastValueFrom, of, Subject, take, toArray, type Observable } from 'rxjs';
import { mapPort } from '../../../src/core/map-port.js';
import type { MappingState } from '../../../src/core/mapping-state.js';
import type { MappingGrant, Nat, NatMappingRequest } from '../../../src/core/nat.js';
import { GatewayError, ProtocolError } from '../../../src/errors.js';
import { pcp, type PcpMappingToken, type PcpOptions } from '../../../src/protocols/pcp/client.js';
import { pmp } from '../../../src/protocols/pmp/client.js';
import { decodePcpRequest, encodePcpResponse, ipToPcpBytes, PcpResultCode, type PcpMapRequest } from '../../../src/protocols/pcp/codec.js';
import { startPmpPcpServer, type PmpPcpServer } from '../../../src/testing/pmp-pcp-server.js';
import { MappingTable } from '../../../src/testing/table.js';
import { createTransport } from '../../../src/transport/transport.js';
import type { UdpExchangeOptions, UdpReply } from '../../../src/transport/udp.js';
import { waitFor } from '../../support/net.js';

const HOST = '::1';
const request = (over: Partial<NatMappingRequest> = {}): NatMappingRequest => ({
  protocol: 'tcp',
  internalPort: 18080,
  externalPort: 28080,
  description: 'test',
  lifetimeSeconds: 600,
  family: 'ipv6',
  ...over,
});
const sentMaps = (server: PmpPcpServer): PcpMapRequest[] =>
  server.log.flatMap((entry) => {
    const decoded = decodePcpRequest(entry.bytes);
    return !(decoded instanceof ProtocolError) && decoded.op === 'map' ? [decoded] : [];
  });
const lastMap = (server: PmpPcpServer): PcpMapRequest => sentMaps(server).at(-1) ?? assert.fail('no MAP request seen');
const tokenOf = (grant: MappingGrant): PcpMappingToken => grant.token as PcpMappingToken;

describe('pcp() over IPv6 against the simulator on ::1', () => {
  let clock = 5_000_000;
  const table = new MappingTable({ externalIp: '203.0.113.7', now: () => clock });
  let server: PmpPcpServer;
  let options: PcpOptions;
  let nat: Nat;

  before(async () => {
    server = await startPmpPcpServer(table, { address: HOST, port: 0, pcpMinLifetimeSeconds: 1, pcpMaxLifetimeSeconds: 3600 });
    // Generous deadlines, no retransmission within them: these tests are about what is sent.
    options = { port: server.port, probeTimeoutMs: 20_000, timeoutMs: 20_000, initialRetransmitMs: 10_000 };
    nat = await firstValueFrom(pcp(HOST, options));
  });
  after(() => server.close());
  beforeEach(() => {
    server.ipv6Table.clear();
    server.resetCounters();
    server.faults.refuse = undefined;
  });

  it("is a PCP Nat of family 'ipv6' (the ANNOUNCE went over IPv6)", () => {
    assert.equal(nat.kind, 'pcp');
    assert.equal(nat.family, 'ipv6');
    assert.equal(nat.name, 'pcp(::1)');
  });

  it('MAP: the client address is our IPv6 source, the suggested external address is :: (no preference); the grant is the host address and the internal port', async () => {
    const grant = await firstValueFrom(nat.addMapping(request()));
    const sent = lastMap(server);
    assert.equal(sent.clientIp, '::1');
    assert.equal(sent.suggestedExternalIp, '::', 'RFC 6887 §11.1: all zeros, not ::ffff:0.0.0.0');
    assert.deepEqual(ipToPcpBytes(sent.suggestedExternalIp), new Uint8Array(16));
    assert.equal(sent.suggestedExternalPort, 28080);
    assert.deepEqual(
      { externalIp: grant.externalIp, externalPort: grant.externalPort, lifetimeSeconds: grant.lifetimeSeconds },
      { externalIp: '2001:db8::10', externalPort: 18080, lifetimeSeconds: 600 },
    );
    assert.equal(tokenOf(grant).source, '::1', 'renewals and the delete are sent from the same address');
    assert.deepEqual(
      server.ipv6Table.list().map((m) => [m.protocol, m.internalClient, m.internalPort, m.externalIp]),
      [['tcp', '::1', 18080, '2001:db8::10']],
    );
    assert.equal(table.list().length, 0, 'no IPv4 port forwarded');
  });

  it('renewal reuses the nonce and asks for the address and port it holds; the lease is extended', async () => {
    const first = await firstValueFrom(nat.addMapping(request({ lifetimeSeconds: 100 })));
    const renewed = await firstValueFrom(nat.addMapping(request({ lifetimeSeconds: 900, previous: first })));
    const [add, renew] = sentMaps(server);
    assert.ok(add && renew);
    assert.deepEqual(renew.nonce, add.nonce);
    assert.equal(renew.suggestedExternalIp, '2001:db8::10');
    assert.equal(renew.suggestedExternalPort, 18080);
    assert.equal(tokenOf(renewed).nonce, tokenOf(first).nonce);
    const [held] = server.ipv6Table.list();
    assert.ok(held !== undefined && server.ipv6Table.remainingSeconds(held) > 100);
  });

  it('delete (lifetime 0, same nonce) closes the opening; a mapping made with another nonce is NOT_AUTHORIZED', async () => {
    const grant = await firstValueFrom(nat.addMapping(request()));
    const other = await firstValueFrom(pcp(HOST, options));
    await assert.rejects(
      lastValueFrom(other.deleteMapping({ ...grant, token: undefined }), { defaultValue: undefined }),
      (e: unknown) => e instanceof GatewayError && e.resultCode === PcpResultCode.NOT_AUTHORIZED,
    );
    assert.equal(server.ipv6Table.list().length, 1);
    assert.deepEqual(await lastValueFrom(nat.deleteMapping(grant).pipe(toArray())), []);
    assert.equal(lastMap(server).lifetimeSeconds, 0);
    assert.deepEqual(server.ipv6Table.list(), []);
  });

  it('externalIp(): the address the live mapping was assigned, asked of nobody; none held is a typed error', async () => {
    const fresh = await firstValueFrom(pcp(HOST, options));
    server.resetCounters();
    await assert.rejects(firstValueFrom(fresh.externalIp()), (e: unknown) => e instanceof ProtocolError && e.reason === 'external-address');
    assert.equal(server.counters.total, 0, 'no NAT-PMP over IPv6, no MAP');
    const grant = await firstValueFrom(fresh.addMapping(request({ internalPort: 18081 })));
    assert.equal(await firstValueFrom(fresh.externalIp()), '2001:db8::10');
    assert.equal(server.counters.total, 1, 'only the add');
    await lastValueFrom(fresh.deleteMapping(grant), { defaultValue: undefined });
  });

  it('an IPv4 request to the IPv6 Nat fails with reason family, sending nothing', async () => {
    await assert.rejects(firstValueFrom(nat.addMapping(request({ family: undefined }))), (e: unknown) => e instanceof ProtocolError && e.reason === 'family');
    assert.equal(server.counters.total, 0);
  });

  it('errors carry the result code and retry-after, as over IPv4', async () => {
    server.faults.refuse = { resultCode: PcpResultCode.NO_RESOURCES, count: 1, lifetimeSeconds: 42 };
    await assert.rejects(firstValueFrom(nat.addMapping(request())), (e: unknown) => e instanceof GatewayError && e.resultCode === 8 && e.retryAfterSeconds === 42);
  });

  it('a reboot of the simulator (epoch back to 0) shows on resets$ and loses the IPv6 openings', async () => {
    // The epoch jumps 600 s ahead of the client's clock first (itself a loss by RFC 6887 §8.5).
    clock += 600_000;
    await firstValueFrom(nat.addMapping(request({ internalPort: 18083 })));
    const resets: unknown[] = [];
    const subscription = nat.resets$?.subscribe((r) => resets.push(r));
    await firstValueFrom(nat.addMapping(request()));
    table.reboot();
    await firstValueFrom(nat.addMapping(request({ internalPort: 18082 })));
    subscription?.unsubscribe();
    assert.equal(resets.length, 1);
    assert.deepEqual(
      server.ipv6Table.list().map((m) => m.internalPort),
      [18082],
      'the opening made before the reboot is gone',
    );
  });
});

describe('the simulator on ::1 speaks no NAT-PMP (IPv4 only) and PCP for IPv6 clients', () => {
  it('a NAT-PMP request from an IPv6 client gets no answer', async () => {
    const server = await startPmpPcpServer(new MappingTable(), { address: HOST, port: 0 });
    try {
      await assert.rejects(firstValueFrom(pmp(HOST, { port: server.port, probeTimeoutMs: 300, initialRetransmitMs: 1000 })), (e: unknown) => (e as Error).name === 'GatewayTimeoutError');
      assert.equal(server.counters.ignored, server.counters.total);
      assert.equal(server.counters.replies, 0);
    } finally {
      await server.close();
    }
  });

  it('an IPv6 NAT-PMP request is refused by the client itself (family), not mapped as IPv4', async () => {
    const server = await startPmpPcpServer(new MappingTable(), { address: '127.0.0.1', port: 0 });
    try {
      const v4 = await firstValueFrom(pmp('127.0.0.1', { port: server.port, localAddress: '127.0.0.1', probeTimeoutMs: 20_000, timeoutMs: 20_000 }));
      await assert.rejects(firstValueFrom(v4.addMapping(request())), (e: unknown) => e instanceof ProtocolError && e.protocol === 'pmp' && e.reason === 'family');
      assert.equal(server.table.list().length, 0);
    } finally {
      await server.close();
    }
  });

  it('a PCP server that answers like a NAT-PMP-only one over IPv6 is an error, never a NAT-PMP fallback', async () => {
    const server = await startPmpPcpServer(new MappingTable(), { address: HOST, port: 0, protocols: { pmp: true, pcp: false } });
    try {
      await assert.rejects(
        firstValueFrom(pcp(HOST, { port: server.port, probeTimeoutMs: 20_000, initialRetransmitMs: 10_000 })),
        (e: unknown) => e instanceof GatewayError && e.resultCode === PcpResultCode.UNSUPP_VERSION && /IPv6/.test(e.message),
      );
    } finally {
      await server.close();
    }
  });
});

describe('mapPort with an IPv6 request through the simulator on ::1', () => {
  it('mapped (the host address, doubleNat false) → renewed → unsubscribe → the firewall table is empty', async () => {
    const server = await startPmpPcpServer(new MappingTable(), { address: HOST, port: 0, pcpMinLifetimeSeconds: 1 });
    try {
      const nat$ = pcp(HOST, { port: server.port, probeTimeoutMs: 20_000, timeoutMs: 20_000, initialRetransmitMs: 10_000 });
      const states: MappingState[] = [];
      const renewed = new Subject<void>();
      const subscription = mapPort(nat$, { protocol: 'udp', internalPort: 18090, family: 'ipv6', lifetimeSeconds: 3 }).subscribe((state) => {
        states.push(state);
        if (state.status === 'mapped' && state.renewals >= 1) renewed.next();
      });
      await firstValueFrom(renewed.pipe(take(1)));
      const mapped = states.find((s) => s.status === 'mapped');
      assert.ok(mapped !== undefined && mapped.status === 'mapped');
      assert.equal(mapped.externalIp, '2001:db8::10');
      assert.equal(mapped.externalPort, 18090);
      assert.equal(mapped.doubleNat, false);
      assert.equal(server.ipv6Table.list().length, 1);
      const maps = sentMaps(server);
      assert.ok(maps.length >= 2 && maps.every((m) => m.clientIp === '::1'));
      subscription.unsubscribe();
      await waitFor(() => server.ipv6Table.list().length === 0, 20_000, 'the delete reached the simulator');
      assert.equal(lastMap(server).lifetimeSeconds, 0);
    } finally {
      await server.close();
    }
  });
});

/** An in-memory PCP server behind `udpExchange`: records each exchange, answers MAP and ANNOUNCE. */
function fakePcp(): { exchanges: UdpExchangeOptions[]; udpExchange: (o: UdpExchangeOptions) => Observable<UdpReply> } {
  const exchanges: UdpExchangeOptions[] = [];
  const udpExchange = (o: UdpExchangeOptions): Observable<UdpReply> => {
    exchanges.push(o);
    const local = { address: o.localAddress ?? 'fe80::99', port: 40000 };
    const bytes = typeof o.message === 'function' ? o.message(local) : o.message;
    const decoded = decodePcpRequest(bytes);
    if (decoded instanceof ProtocolError) throw decoded;
    const reply =
      decoded.op === 'announce'
        ? encodePcpResponse({ op: 'announce', opcode: 0, resultCode: 0, lifetimeSeconds: 0, epochSeconds: 10, options: [] })
        : encodePcpResponse({
            op: 'map',
            opcode: 1,
            resultCode: 0,
            lifetimeSeconds: decoded.lifetimeSeconds,
            epochSeconds: 10,
            nonce: decoded.nonce,
            protocol: decoded.protocol,
            internalPort: decoded.internalPort,
            externalPort: decoded.internalPort,
            externalIp: decoded.clientIp,
            options: [],
          });
    return of({ message: reply, remote: { address: o.host, port: o.port }, local });
  };
  return { exchanges, udpExchange };
}

describe('the source address and the router, chosen without a network', () => {
  it('a link-local router is reached from a global address of its interface: probe, add, renew and delete', async () => {
    const fake = fakePcp();
    const asked: string[] = [];
    const transport = createTransport({
      udpExchange: fake.udpExchange,
      globalIpv6Addresses: (iface) => {
        asked.push(iface);
        return of(['2001:db8:1::10', 'fd00::10']);
      },
    });
    const nat = await firstValueFrom(pcp('fe80::1%lan0', { transport }));
    assert.deepEqual(asked, ['lan0']);
    const grant = await firstValueFrom(nat.addMapping(request()));
    await firstValueFrom(nat.addMapping(request({ previous: grant })));
    await lastValueFrom(nat.deleteMapping(grant), { defaultValue: undefined });
    await lastValueFrom(nat.deleteMapping({ protocol: 'tcp', internalPort: 18080, externalPort: 18080, lifetimeSeconds: 0 }), { defaultValue: undefined });
    assert.deepEqual(
      fake.exchanges.map((e) => [e.host, e.localAddress]),
      Array.from({ length: 5 }, () => ['fe80::1%lan0', '2001:db8:1::10']),
    );
    assert.equal(grant.externalIp, '2001:db8:1::10');
  });

  it("the request's internal address wins, for the add and for what follows", async () => {
    const fake = fakePcp();
    const transport = createTransport({ udpExchange: fake.udpExchange, globalIpv6Addresses: () => of(['2001:db8:1::10']) });
    const nat = await firstValueFrom(pcp('fe80::1%lan0', { transport }));
    const grant = await firstValueFrom(nat.addMapping(request({ internalAddress: '2001:db8:1::77' })));
    await firstValueFrom(nat.addMapping(request({ previous: grant })));
    await lastValueFrom(nat.deleteMapping(grant), { defaultValue: undefined });
    assert.deepEqual(
      fake.exchanges.slice(1).map((e) => e.localAddress),
      ['2001:db8:1::77', '2001:db8:1::77', '2001:db8:1::77'],
    );
    assert.equal(grant.externalIp, '2001:db8:1::77');
  });

  it('a link-local router on an interface without a global address is a typed error before anything is sent', async () => {
    const fake = fakePcp();
    const transport = createTransport({ udpExchange: fake.udpExchange, globalIpv6Addresses: () => of([]) });
    await assert.rejects(firstValueFrom(pcp('fe80::1%lan0', { transport })), (e: unknown) => e instanceof ProtocolError && e.reason === 'no-global-address' && /lan0/.test(e.message));
    assert.equal(fake.exchanges.length, 0);
  });

  it("family 'ipv6' without a gateway asks the IPv6 default router; the IPv4 one is not asked", async () => {
    const fake = fakePcp();
    const transport = createTransport({
      udpExchange: fake.udpExchange,
      defaultGateway: () => assert.fail('the IPv4 default route must not be asked'),
      defaultIpv6Gateway: () => of({ gateway: 'fd77::1', interface: 'lan0' }),
    });
    const nat = await firstValueFrom(pcp(undefined, { transport, family: 'ipv6' }));
    assert.equal(nat.gateway, 'fd77::1');
    assert.equal(nat.family, 'ipv6');
    assert.equal(fake.exchanges[0]?.localAddress, undefined, 'a global router: the kernel picks the source');
  });

  it('over IPv4 nothing changes: 0.0.0.0 as no preference, no source pinned, family ipv4', async () => {
    const fake = fakePcp();
    const transport = createTransport({ udpExchange: fake.udpExchange });
    const nat = await firstValueFrom(pcp('192.0.2.1', { transport, localAddress: '192.0.2.10' }));
    assert.equal(nat.family, 'ipv4');
    const grant = await firstValueFrom(nat.addMapping(request({ family: undefined })));
    const map = decodePcpRequest((fake.exchanges[1]?.message as (l: { address: string; port: number }) => Uint8Array)({ address: '192.0.2.10', port: 1 }));
    assert.ok(!(map instanceof ProtocolError) && map.op === 'map');
    assert.equal(map.suggestedExternalIp, '0.0.0.0');
    assert.deepEqual(Object.keys(grant.token as object), ['nonce']);
    assert.deepEqual(
      fake.exchanges.map((e) => e.localAddress),
      ['192.0.2.10', '192.0.2.10'],
    );
  });
});
