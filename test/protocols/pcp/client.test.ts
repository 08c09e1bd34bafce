import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { filter, firstValueFrom, lastValueFrom, Subject, toArray } from 'rxjs';
import { mapPort } from '../../../src/core/map-port.js';
import type { MappingGrant, Nat, NatMappingRequest } from '../../../src/core/nat.js';
import { GatewayError, GatewayTimeoutError, GatewayUnreachableError, ProtocolError } from '../../../src/errors.js';
import { pcp, type PcpMappingToken, type PcpOptions } from '../../../src/protocols/pcp/client.js';
import {
  decodePcpRequest,
  encodePcpResponse,
  hexToNonce,
  ipToPcpBytes,
  nonceToHex,
  PcpResultCode,
  type PcpMapRequest,
  type PcpMapResponse,
} from '../../../src/protocols/pcp/codec.js';
import { startPmpPcpServer, type PmpPcpServer } from '../../../src/testing/pmp-pcp-server.js';
import { MappingTable } from '../../../src/testing/table.js';
import { createUdpStats } from '../../../src/transport/udp.js';
import { closedUdpPort, waitFor } from '../../support/net.js';

const HOST = '127.0.0.1';
const request = (over: Partial<NatMappingRequest> = {}): NatMappingRequest => ({
  protocol: 'tcp',
  internalPort: 8080,
  externalPort: 8080,
  description: 'test',
  lifetimeSeconds: 600,
  ...over,
});
const sentMaps = (server: PmpPcpServer): PcpMapRequest[] =>
  server.log.flatMap((entry) => {
    const decoded = decodePcpRequest(entry.bytes);
    return !(decoded instanceof ProtocolError) && decoded.op === 'map' ? [decoded] : [];
  });
const lastMap = (server: PmpPcpServer): PcpMapRequest => sentMaps(server).at(-1) ?? assert.fail('no MAP request seen');
const tokenOf = (grant: MappingGrant): string => (grant.token as PcpMappingToken).nonce;

describe('pcp() against the simulator over loopback', () => {
  let clock = 9_000_000;
  const table = new MappingTable({ externalIp: '203.0.113.7', now: () => clock });
  let server: PmpPcpServer;
  let options: PcpOptions;
  let nat: Nat;

  before(async () => {
    clock += 3_600_000;
    server = await startPmpPcpServer(table, { address: HOST, port: 0, pcpMinLifetimeSeconds: 1, pcpMaxLifetimeSeconds: 3600, errorLifetimeSeconds: 30 });
    // Generous deadlines and a first retransmission far beyond any loopback round trip: these tests
    // are about what is sent and answered, so a loaded machine must neither time out nor retransmit
    // (the counts below would change). When it retransmits and times out is client-timing.test.ts.
    options = { port: server.port, localAddress: HOST, probeTimeoutMs: 20_000, timeoutMs: 20_000, initialRetransmitMs: 10_000 };
    nat = await firstValueFrom(pcp(HOST, options));
  });
  after(() => server.close());
  beforeEach(() => {
    table.clear();
    table.setExternalIp('203.0.113.7');
    server.resetCounters();
    Object.assign(server.faults, { refuse: undefined, drop: undefined, delayMs: 0, silent: false, tamper: undefined });
  });

  it('probes with ANNOUNCE and emits one pcp Nat', async () => {
    const nats = await lastValueFrom(pcp(HOST, options).pipe(toArray()));
    assert.equal(nats.length, 1);
    const found = nats[0] as Nat;
    assert.deepEqual([found.kind, found.name, found.gateway, found.maxConcurrentRequests], ['pcp', `pcp(${HOST})`, HOST, 1]);
    assert.equal(server.counters.byKind['pcp.announce'], 1);
    const announce = decodePcpRequest(server.log[0]?.bytes ?? new Uint8Array());
    assert.ok(!(announce instanceof ProtocolError) && announce.op === 'announce', 'an ANNOUNCE');
    assert.equal(announce.clientIp, HOST, 'the client address field is the socket\'s local address');
  });

  it('mapPort: ANNOUNCE, then MAP, and `mapped` with the MAP\'s external address; no NAT-PMP lookup ahead of it', async () => {
    const stop = new Subject<void>();
    const states = mapPort(pcp(HOST, options), { protocol: 'udp', internalPort: 18091, lifetimeSeconds: 600 }, { stop });
    const mapped = await firstValueFrom(states.pipe(filter((state) => state.status === 'mapped')));
    assert.equal(mapped.externalIp, '203.0.113.7');
    assert.deepEqual(
      server.log.map((entry) => entry.kind),
      ['pcp.announce', 'pcp.map'],
      'one exchange for discovery and one for the add: the MAP response carries the address',
    );
    stop.next();
    await waitFor(() => table.get('udp', 18091) === undefined);
  });

  it('maps TCP and UDP: grant carries the external address and the nonce', async () => {
    const tcp = await firstValueFrom(nat.addMapping(request()));
    const udp = await firstValueFrom(nat.addMapping(request({ protocol: 'udp', internalPort: 30303, externalPort: 30303 })));
    assert.deepEqual([tcp.protocol, tcp.internalPort, tcp.externalPort, tcp.lifetimeSeconds, tcp.externalIp], ['tcp', 8080, 8080, 600, '203.0.113.7']);
    assert.deepEqual([udp.protocol, udp.externalPort, udp.externalIp], ['udp', 30303, '203.0.113.7']);
    assert.equal(table.get('tcp', 8080)?.nonce, tokenOf(tcp));
    assert.equal(table.get('udp', 30303)?.nonce, tokenOf(udp));
    assert.notEqual(tokenOf(tcp), tokenOf(udp));
    const sent = lastMap(server);
    assert.equal(sent.clientIp, HOST);
    assert.equal(server.counters.byKind['pcp.map'], 2);
    const listed = await firstValueFrom(nat.listMappings?.() ?? assert.fail('listMappings'));
    assert.deepEqual(listed.map((e) => [e.protocol, e.externalPort, e.internalClient]).sort(), [
      ['tcp', 8080, HOST],
      ['udp', 30303, HOST],
    ]);
  });

  it('renewals reuse the nonce and the port granted last time', async () => {
    table.add({ protocol: 'tcp', internalClient: '10.0.0.9', internalPort: 1, externalPort: 8080, lifetimeSeconds: 0, via: 'upnp' });
    const first = await firstValueFrom(nat.addMapping(request()));
    assert.notEqual(first.externalPort, 8080);
    table.delete('tcp', 8080);
    const renewed = await firstValueFrom(nat.addMapping(request({ previous: first })));
    const sent = lastMap(server);
    assert.equal(nonceToHex(sent.nonce), tokenOf(first));
    assert.equal(sent.suggestedExternalPort, first.externalPort);
    assert.equal(sent.suggestedExternalIp, '203.0.113.7');
    assert.equal(renewed.externalPort, first.externalPort);
    assert.equal(tokenOf(renewed), tokenOf(first));
  });

  it('honours the grant: a shorter lifetime than requested', async () => {
    const grant = await firstValueFrom(nat.addMapping(request({ lifetimeSeconds: 86400 })));
    assert.equal(lastMap(server).lifetimeSeconds, 86400);
    assert.equal(grant.lifetimeSeconds, 3600);
  });

  it('deletes with lifetime 0 and the original nonce', async () => {
    const grant = await firstValueFrom(nat.addMapping(request()));
    assert.deepEqual(await lastValueFrom(nat.deleteMapping(grant).pipe(toArray())), []);
    const sent = lastMap(server);
    assert.equal(sent.lifetimeSeconds, 0);
    assert.equal(nonceToHex(sent.nonce), tokenOf(grant));
    assert.equal(table.get('tcp', grant.externalPort), undefined);
    const listed = await firstValueFrom(nat.listMappings?.() ?? assert.fail('listMappings'));
    assert.equal(listed.find((e) => e.protocol === 'tcp' && e.internalPort === 8080), undefined);
  });

  it('a delete with another nonce is refused by the simulator: NOT_AUTHORIZED, retryAfterSeconds', async () => {
    const grant = await firstValueFrom(nat.addMapping(request()));
    const forged: MappingGrant = { ...grant, token: { nonce: 'ffffffffffffffffffffffff' } };
    await assert.rejects(firstValueFrom(nat.deleteMapping(forged)), (error: unknown) => {
      assert.ok(error instanceof GatewayError, 'GatewayError');
      assert.deepEqual([error.protocol, error.resultCode, error.resultName, error.retryAfterSeconds], ['pcp', 2, 'NOT_AUTHORIZED', 30]);
      return true;
    });
    assert.ok(table.get('tcp', grant.externalPort) !== undefined, 'still mapped');
  });

  it('a refusal honours the error lifetime as retryAfterSeconds', async () => {
    server.faults.refuse = { resultCode: PcpResultCode.NO_RESOURCES, lifetimeSeconds: 77, count: 1 };
    await assert.rejects(firstValueFrom(nat.addMapping(request())), (error: unknown) => {
      assert.ok(error instanceof GatewayError, 'GatewayError');
      assert.deepEqual([error.resultCode, error.resultName, error.retryAfterSeconds, error.gateway], [8, 'NO_RESOURCES', 77, HOST]);
      return true;
    });
  });

  it('retransmits through packet loss: drop the first 3 replies, the server sees 4 requests', async () => {
    // Sends at 0, 250, 750 and 1750 ms; the answer to the fourth has two seconds before a fifth would go.
    const quick = await firstValueFrom(pcp(HOST, { ...options, initialRetransmitMs: 250 }));
    server.resetCounters();
    server.faults.drop = { count: 3 };
    const grant = await firstValueFrom(quick.addMapping(request()));
    assert.equal(grant.externalPort, 8080);
    assert.equal(server.counters.byKind['pcp.map'], 4);
    const nonces = new Set(sentMaps(server).map((m) => nonceToHex(m.nonce)));
    assert.equal(nonces.size, 1, 'retransmissions carry the same nonce');
  });

  it('a probe refused with NOT_AUTHORIZED, UNSUPP_OPCODE, NETWORK_FAILURE or ADDRESS_MISMATCH finds no PCP gateway', async () => {
    for (const resultCode of [PcpResultCode.NOT_AUTHORIZED, PcpResultCode.UNSUPP_OPCODE, PcpResultCode.NETWORK_FAILURE, PcpResultCode.ADDRESS_MISMATCH]) {
      // PCP "implemented but not enabled": every PCP request refused, NAT-PMP on the same port would still work.
      server.faults.refuse = { resultCode, protocol: 'pcp', lifetimeSeconds: 45 };
      await assert.rejects(firstValueFrom(pcp(HOST, options)), (error: unknown) => {
        assert.ok(error instanceof GatewayError, `GatewayError for ${resultCode}`);
        assert.deepEqual([error.protocol, error.resultCode, error.gateway, error.retryAfterSeconds], ['pcp', resultCode, HOST, 45]);
        assert.match(error.message, /probe \(ANNOUNCE\) was refused: PCP will not map here/);
        return true;
      });
    }
    assert.equal(server.counters.byKind['pcp.announce'], 4, 'one ANNOUNCE each, no fallback to NAT-PMP');
    assert.equal(server.counters.byKind['pmp.externalAddress'], 0);
  });

  it('a probe answered with another error (NO_RESOURCES, MALFORMED_REQUEST) still finds the gateway', async () => {
    for (const resultCode of [PcpResultCode.NO_RESOURCES, PcpResultCode.MALFORMED_REQUEST]) {
      server.faults.refuse = { resultCode, protocol: 'pcp', count: 1 };
      const found = await firstValueFrom(pcp(HOST, options));
      assert.equal(found.kind, 'pcp', `found despite ${resultCode}`);
    }
  });

  it('ECONNREFUSED ends the probe at once as GatewayUnreachableError', async () => {
    const port = await closedUdpPort(HOST);
    const started = Date.now();
    // A long deadline: ending well before it shows the refusal ended the probe, not the deadline.
    await assert.rejects(firstValueFrom(pcp(HOST, { ...options, port, probeTimeoutMs: 20_000 })), (error: unknown) => error instanceof GatewayUnreachableError && error.protocol === 'pcp');
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms (deadline 20 s)`);
  });

  it('drops replies with a wrong nonce, opcode, length or source port', async () => {
    server.faults.silent = true;
    const stats = createUdpStats();
    const watched = await (async () => {
      server.faults.silent = false;
      const found = await firstValueFrom(pcp(HOST, { ...options, stats }));
      server.faults.silent = true;
      return found;
    })();
    const before = { ...stats };
    const grant$ = firstValueFrom(watched.addMapping(request({ protocol: 'udp', internalPort: 5000, externalPort: 5000 })));
    await waitFor(() => sentMaps(server).length > 0);
    const client = server.log.at(-1)?.from ?? assert.fail('no request');
    const sent = lastMap(server);
    const good: PcpMapResponse = {
      op: 'map',
      opcode: 1,
      resultCode: 0,
      lifetimeSeconds: 120,
      epochSeconds: 3600,
      nonce: sent.nonce,
      protocol: 17,
      internalPort: 5000,
      externalPort: 4242,
      externalIp: '203.0.113.7',
      options: [],
    };
    const intruder = createSocket('udp4');
    await new Promise<void>((resolve) => intruder.bind(0, HOST, resolve));
    await new Promise<void>((resolve) => intruder.send(encodePcpResponse(good), client.port, client.address, () => resolve()));
    await server.send(encodePcpResponse({ ...good, nonce: hexToNonce('0102030405060708090a0b0c') ?? assert.fail() }), client);
    await server.send(encodePcpResponse({ op: 'announce', opcode: 0, resultCode: 0, lifetimeSeconds: 0, epochSeconds: 3600, options: [] }), client);
    await server.send(encodePcpResponse({ ...good, options: [{ code: 130, data: new Uint8Array(4) }] }), client); // 68 bytes
    await server.send(encodePcpResponse({ ...good, protocol: 6 }), client);
    await server.send(encodePcpResponse({ ...good, internalPort: 5001 }), client);
    await server.send(encodePcpResponse({ op: 'header', opcode: 1, resultCode: PcpResultCode.NOT_AUTHORIZED, lifetimeSeconds: 1, epochSeconds: 3600 }), client); // no nonce to match
    await server.send(encodePcpResponse(good), client);
    const granted = await grant$;
    intruder.close();
    assert.equal(granted.externalPort, 4242);
    assert.equal(stats.dropped - before.dropped, 6);
    assert.equal(stats.accepted - before.accepted, 1);
  });

  it('a gateway reboot (epoch back to 0) emits on resets$', async () => {
    const fresh = await firstValueFrom(pcp(HOST, options));
    let resets = 0;
    fresh.resets$?.subscribe(() => resets++);
    await firstValueFrom(fresh.addMapping(request()));
    assert.equal(resets, 0);
    table.reboot();
    await firstValueFrom(fresh.addMapping(request()));
    assert.equal(resets, 1);
    clock += 3_600_000;
  });

  /** Rewrites each 60-byte MAP success reply with `patch` (RFC 6887 §7.2/§11.1 offsets). */
  const tamperMapReplies = (patch: (bytes: Uint8Array, view: DataView) => void): void => {
    server.faults.tamper = (reply) => {
      if (reply.length !== 60 || reply[1] !== 0x81 || reply[3] !== 0) return [reply];
      const copy = reply.slice();
      patch(copy, new DataView(copy.buffer));
      return [copy];
    };
  };
  const isInvalidAnswer = (reason: string, protocol = 'pcp') => (error: unknown): boolean => {
    assert.ok(error instanceof ProtocolError, `ProtocolError, got ${String(error)}`);
    assert.deepEqual([error.protocol, error.reason, error.gateway], [protocol, reason, HOST]);
    return true;
  };
  const tokenless = (internalPort: number, externalPort = internalPort): MappingGrant => ({ protocol: 'tcp', internalPort, externalPort, lifetimeSeconds: 0 });

  it('a MAP success with lifetime 0 (a delete answer) is a ProtocolError lifetime, not a grant', async () => {
    const fresh = await firstValueFrom(pcp(HOST, options));
    tamperMapReplies((_bytes, view) => view.setUint32(4, 0));
    await assert.rejects(firstValueFrom(fresh.addMapping(request())), isInvalidAnswer('lifetime'));
    assert.deepEqual(await firstValueFrom(fresh.listMappings?.() ?? assert.fail('listMappings')), [], 'not held as a (permanent) mapping');
  });

  it('a MAP success assigning external port 0 is a ProtocolError external-port, not a grant', async () => {
    const fresh = await firstValueFrom(pcp(HOST, options));
    tamperMapReplies((_bytes, view) => view.setUint16(42, 0));
    await assert.rejects(firstValueFrom(fresh.addMapping(request())), isInvalidAnswer('external-port'));
    assert.deepEqual(await firstValueFrom(fresh.listMappings?.() ?? assert.fail('listMappings')), []);
  });

  it('a MAP success assigning an unspecified, loopback, link-local, multicast or reserved address is a ProtocolError external-address', async () => {
    const fresh = await firstValueFrom(pcp(HOST, options));
    const bad = ['::', '::ffff:0.0.0.0', '::1', '::ffff:127.0.0.1', 'fe80::1', '::ffff:169.254.3.4', 'ff02::1', '::ffff:224.0.0.251', '::ffff:255.255.255.255'];
    for (const [i, ip] of bad.entries()) {
      tamperMapReplies((bytes) => bytes.set(ipToPcpBytes(ip), 44));
      await assert.rejects(firstValueFrom(fresh.addMapping(request({ internalPort: 8100 + i, externalPort: 8100 + i }))), isInvalidAnswer('external-address'), ip);
    }
    assert.deepEqual(await firstValueFrom(fresh.listMappings?.() ?? assert.fail('listMappings')), []);
    // A real IPv6 address is a grant, as IPv6 text; IPv4-mapped is a plain dotted quad.
    tamperMapReplies((bytes) => bytes.set(ipToPcpBytes('2001:db8::7'), 44));
    assert.equal((await firstValueFrom(fresh.addMapping(request({ internalPort: 8200, externalPort: 8200 })))).externalIp, '2001:db8::7');
    server.faults.tamper = undefined;
    assert.equal((await firstValueFrom(fresh.addMapping(request({ internalPort: 8201, externalPort: 8201 })))).externalIp, '203.0.113.7');
  });

  it('externalIp(): NAT-PMP answering 0.0.0.0 (not connected), loopback or multicast is a ProtocolError external-address', async () => {
    for (const ip of ['0.0.0.0', '127.0.0.1', '224.0.0.1']) {
      table.setExternalIp(ip);
      await assert.rejects(firstValueFrom(nat.externalIp()), isInvalidAnswer('external-address', 'pmp'), ip);
    }
  });

  for (const [fault, arm] of [
    ['lost', (): void => void (server.faults.drop = { count: 1000 })],
    ['answered with a wrong nonce', (): void => tamperMapReplies((bytes) => void (bytes[24] = (bytes[24] ?? 0) ^ 0xff))],
    ['answered undecodably (truncated)', (): void => void (server.faults.tamper = (reply) => [reply.subarray(0, 59)])],
  ] as const) {
    it(`an add whose answer was ${fault} is deleted without token, with the nonce it was sent with`, async () => {
      // The add must time out (no usable answer), the delete must be answered: 2 s is short enough
      // for the first and, with retransmissions from 50 ms, ample for the second on a loaded machine.
      const quick = await firstValueFrom(pcp(HOST, { ...options, timeoutMs: 2000, initialRetransmitMs: 50 }));
      server.resetCounters();
      arm();
      await assert.rejects(firstValueFrom(quick.addMapping(request())), GatewayTimeoutError);
      assert.equal(server.table.list().length, 1, 'applied although unanswered');
      const added = lastMap(server);
      Object.assign(server.faults, { drop: undefined, tamper: undefined });
      await lastValueFrom(quick.deleteMapping(tokenless(8080)), { defaultValue: undefined });
      const deleted = lastMap(server);
      assert.deepEqual([deleted.lifetimeSeconds, nonceToHex(deleted.nonce)], [0, nonceToHex(added.nonce)]);
      assert.deepEqual(server.table.list(), []);
    });
  }

  it('an add retried after one that got no answer reuses its nonce: the server holds the entry under it and grants the retry', async () => {
    const quick = await firstValueFrom(pcp(HOST, { ...options, timeoutMs: 2000, initialRetransmitMs: 50 }));
    server.faults.drop = { count: 1000 };
    await assert.rejects(firstValueFrom(quick.addMapping(request())), GatewayTimeoutError);
    const first = lastMap(server);
    server.faults.drop = undefined;
    const grant = await firstValueFrom(quick.addMapping(request()));
    assert.equal(nonceToHex(lastMap(server).nonce), nonceToHex(first.nonce), 'the same nonce');
    assert.equal(tokenOf(grant), nonceToHex(first.nonce));
    await lastValueFrom(quick.deleteMapping(grant), { defaultValue: undefined });
    assert.deepEqual(server.table.list(), []);
  });

  it('an add answered invalidly (lifetime 0) is deleted without token too', async () => {
    const fresh = await firstValueFrom(pcp(HOST, options));
    tamperMapReplies((_bytes, view) => view.setUint32(4, 0));
    await assert.rejects(firstValueFrom(fresh.addMapping(request())), isInvalidAnswer('lifetime'));
    assert.equal(server.table.list().length, 1, 'the gateway applied it');
    server.faults.tamper = undefined;
    await lastValueFrom(fresh.deleteMapping(tokenless(8080)), { defaultValue: undefined });
    assert.deepEqual(server.table.list(), []);
  });

  it('a completed delete forgets the nonce; a token still wins over the remembered one', async () => {
    const fresh = await firstValueFrom(pcp(HOST, options));
    const grant = await firstValueFrom(fresh.addMapping(request()));
    // A token given wins: a forged one is refused although the remembered nonce would work.
    await assert.rejects(firstValueFrom(fresh.deleteMapping({ ...grant, token: { nonce: 'ffffffffffffffffffffffff' } })), (e: unknown) => e instanceof GatewayError && e.resultCode === 2);
    await lastValueFrom(fresh.deleteMapping(tokenless(8080)), { defaultValue: undefined });
    assert.equal(nonceToHex(lastMap(server).nonce), tokenOf(grant), 'the tokenless delete used the add\'s nonce');
    assert.deepEqual(server.table.list(), []);
    await lastValueFrom(fresh.deleteMapping(tokenless(8080)), { defaultValue: undefined }); // nothing left: the server says success
    assert.notEqual(nonceToHex(lastMap(server).nonce), tokenOf(grant), 'forgotten after the delete completed: a fresh nonce');
  });

  describe('NAT-PMP fallback and the external address', () => {
    let pmpOnly: PmpPcpServer;
    let pcpOnly: PmpPcpServer;
    before(async () => {
      pmpOnly = await startPmpPcpServer(table, { protocols: { pcp: false } });
      pcpOnly = await startPmpPcpServer(table, { protocols: { pmp: false } });
    });
    after(async () => {
      await pmpOnly.close();
      await pcpOnly.close();
    });

    it('falls back to NAT-PMP on a NAT-PMP-only gateway', async () => {
      const found = await firstValueFrom(pcp(HOST, { ...options, port: pmpOnly.port }));
      assert.equal(found.kind, 'pmp');
      assert.equal(found.name, `pmp(${HOST})`);
      assert.equal(pmpOnly.counters.byKind['pcp.announce'], 1);
      assert.equal(pmpOnly.counters.byKind['pmp.externalAddress'], 1);
      const grant = await firstValueFrom(found.addMapping(request({ internalPort: 7000, externalPort: 7000 })));
      assert.equal(table.get('tcp', grant.externalPort)?.via, 'pmp');
    });

    it('fallbackToPmp: false makes it a typed error', async () => {
      pmpOnly.resetCounters();
      await assert.rejects(firstValueFrom(pcp(HOST, { ...options, port: pmpOnly.port, fallbackToPmp: false })), (error: unknown) => {
        assert.ok(error instanceof GatewayError, 'GatewayError');
        assert.deepEqual([error.protocol, error.resultCode, error.resultName], ['pcp', 1, 'UNSUPP_VERSION']);
        assert.match(error.message, /NAT-PMP/);
        return true;
      });
      assert.equal(pmpOnly.counters.byKind['pmp.externalAddress'], 0);
    });

    it('externalIp() asks NAT-PMP on the same server', async () => {
      server.resetCounters();
      assert.equal(await firstValueFrom(nat.externalIp()), '203.0.113.7');
      assert.equal(server.counters.byKind['pmp.externalAddress'], 1);
    });

    it('externalIp() on a PCP-only gateway renews a held mapping to learn the address', async () => {
      const only = await firstValueFrom(pcp(HOST, { ...options, port: pcpOnly.port }));
      await assert.rejects(firstValueFrom(only.externalIp()), (error: unknown) => error instanceof GatewayError && error.protocol === 'pmp' && error.resultCode === 1);
      const grant = await firstValueFrom(only.addMapping(request({ internalPort: 7100, externalPort: 7100 })));
      table.setExternalIp('198.51.100.9');
      pcpOnly.resetCounters();
      assert.equal(await firstValueFrom(only.externalIp()), '198.51.100.9');
      assert.equal(pcpOnly.counters.byKind['pmp.externalAddress'], 0, 'NAT-PMP is not asked again');
      assert.equal(nonceToHex(lastMap(pcpOnly).nonce), tokenOf(grant), 'the renewal reuses the nonce');
    });

    it('externalIp() on a PCP-only gateway: a MAP response assigning 0.0.0.0 is a ProtocolError external-address', async () => {
      const only = await firstValueFrom(pcp(HOST, { ...options, port: pcpOnly.port }));
      await assert.rejects(firstValueFrom(only.externalIp()), GatewayError); // NAT-PMP not spoken: later calls renew a mapping
      await firstValueFrom(only.addMapping(request({ internalPort: 7200, externalPort: 7200 })));
      table.setExternalIp('0.0.0.0'); // the WAN link went down
      await assert.rejects(firstValueFrom(only.externalIp()), (error: unknown) => {
        assert.ok(error instanceof ProtocolError, `ProtocolError, got ${String(error)}`);
        assert.deepEqual([error.protocol, error.reason, error.gateway], ['pcp', 'external-address', HOST]);
        return true;
      });
    });
  });
});
