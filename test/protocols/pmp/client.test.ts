import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { asyncScheduler, filter, firstValueFrom, lastValueFrom, Subject, toArray, type SchedulerLike } from 'rxjs';
import { mapPort } from '../../../src/core/map-port.js';
import type { MappingGrant, Nat, NatMappingRequest } from '../../../src/core/nat.js';
import { GatewayError, GatewayTimeoutError, GatewayUnreachableError, ProtocolError } from '../../../src/errors.js';
import { createPmpNat, pmp, type PmpOptions } from '../../../src/protocols/pmp/client.js';
import { decodePmpRequest, encodePmpResponse, type PmpMapRequest } from '../../../src/protocols/pmp/codec.js';
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
  lifetimeSeconds: 60,
  ...over,
});
const lastMapRequest = (server: PmpPcpServer): PmpMapRequest => {
  const bytes = server.log.at(-1)?.bytes;
  assert.ok(bytes !== undefined, 'server saw a request');
  const decoded = decodePmpRequest(bytes);
  assert.ok(!(decoded instanceof ProtocolError) && decoded.op === 'map', 'a map request');
  return decoded;
};

describe('pmp() against the simulator over loopback', () => {
  let clock = 5_000_000;
  const table = new MappingTable({ externalIp: '203.0.113.7', now: () => clock });
  let server: PmpPcpServer;
  let options: PmpOptions;
  let nat: Nat;

  before(async () => {
    clock += 3_600_000; // up for an hour: epoch 3600
    server = await startPmpPcpServer(table, { address: HOST, port: 0 });
    // Generous deadlines and a first retransmission far beyond any loopback round trip: these tests
    // are about what is sent and answered, so a loaded machine must neither time out nor retransmit
    // (the counts below would change). When it retransmits and times out is client-timing.test.ts.
    options = { port: server.port, localAddress: HOST, probeTimeoutMs: 20_000, timeoutMs: 20_000, initialRetransmitMs: 10_000 };
    nat = await firstValueFrom(pmp(HOST, options));
  });
  after(() => server.close());
  beforeEach(() => {
    table.clear();
    table.setExternalIp('203.0.113.7');
    server.resetCounters();
    Object.assign(server.faults, { refuse: undefined, drop: undefined, delayMs: 0, silent: false, tamper: undefined });
  });

  it('probes with an external address request and emits one pmp Nat', async () => {
    const nats = await lastValueFrom(pmp(HOST, options).pipe(toArray()));
    assert.equal(nats.length, 1);
    const found = nats[0] as Nat;
    assert.equal(found.kind, 'pmp');
    assert.equal(found.name, `pmp(${HOST})`);
    assert.equal(found.gateway, HOST);
    assert.equal(found.maxConcurrentRequests, 1);
    assert.equal(server.counters.byKind['pmp.externalAddress'], 1);
    assert.equal(server.log[0]?.from.address, HOST);
    assert.notEqual(server.log[0]?.from.port, 5350);
  });

  it('mapPort: the probe\'s answer is the first address, so the add follows it at once (no second lookup)', async () => {
    const stop = new Subject<void>();
    const states = mapPort(pmp(HOST, options), { protocol: 'udp', internalPort: 18092, lifetimeSeconds: 600 }, { stop });
    const mapped = await firstValueFrom(states.pipe(filter((state) => state.status === 'mapped')));
    assert.equal(mapped.externalIp, '203.0.113.7');
    assert.deepEqual(
      server.log.map((entry) => entry.kind),
      ['pmp.externalAddress', 'pmp.mapUdp'],
      'one exchange for discovery (it read the address) and one for the add',
    );
    stop.next();
    await waitFor(() => table.get('udp', 18092) === undefined);
  });

  it('the probe\'s answer serves one externalIp() call, within a second of the probe; later calls ask the gateway', async () => {
    let now = 0;
    const scheduler: SchedulerLike = { now: () => now, schedule: asyncScheduler.schedule.bind(asyncScheduler) };
    const probed = await firstValueFrom(pmp(HOST, { ...options, scheduler }));
    const asked = (): number => server.counters.byKind['pmp.externalAddress'] ?? 0;
    assert.equal(asked(), 1);
    now += 1000;
    table.setExternalIp('198.51.100.4');
    assert.equal(await firstValueFrom(probed.externalIp()), '203.0.113.7', 'served from the probe');
    assert.equal(asked(), 1);
    assert.equal(await firstValueFrom(probed.externalIp()), '198.51.100.4', 'once only');
    assert.equal(asked(), 2);
    const late = await firstValueFrom(pmp(HOST, { ...options, scheduler }));
    now += 1001;
    assert.equal(await firstValueFrom(late.externalIp()), '198.51.100.4');
    assert.equal(asked(), 4, 'more than a second after the probe, the gateway is asked');
    table.setExternalIp('0.0.0.0');
    const unusable = await firstValueFrom(pmp(HOST, { ...options, scheduler }));
    await assert.rejects(firstValueFrom(unusable.externalIp()), (error: unknown) => error instanceof ProtocolError && error.reason === 'external-address');
    assert.equal(asked(), 5, 'an unusable answer from the probe is checked like a reply');
  });

  it('maps TCP and UDP, and lists what it holds', async () => {
    const tcp = await firstValueFrom(nat.addMapping(request({ protocol: 'tcp', internalPort: 8080, externalPort: 8080 })));
    const udp = await firstValueFrom(nat.addMapping(request({ protocol: 'udp', internalPort: 30303, externalPort: 30303 })));
    assert.deepEqual(tcp, { protocol: 'tcp', internalPort: 8080, externalPort: 8080, lifetimeSeconds: 60 });
    assert.deepEqual(udp, { protocol: 'udp', internalPort: 30303, externalPort: 30303, lifetimeSeconds: 60 });
    assert.equal(table.get('tcp', 8080)?.internalClient, HOST);
    assert.equal(table.get('udp', 30303)?.via, 'pmp');
    assert.equal(server.counters.byKind['pmp.mapTcp'], 1);
    assert.equal(server.counters.byKind['pmp.mapUdp'], 1);
    const listed = await firstValueFrom(nat.listMappings?.() ?? assert.fail('listMappings'));
    assert.deepEqual(
      listed.map((e) => [e.protocol, e.externalPort, e.internalPort, e.internalClient, e.description, e.enabled]),
      [
        ['tcp', 8080, 8080, HOST, 'test', true],
        ['udp', 30303, 30303, HOST, 'test', true],
      ],
    );
    assert.ok(listed.every((e) => e.lifetimeSeconds > 55 && e.lifetimeSeconds <= 60), 'lifetimes count down from 60');
  });

  it('reads the external address, and sees it change', async () => {
    assert.equal(await firstValueFrom(nat.externalIp()), '203.0.113.7');
    table.setExternalIp('198.51.100.4');
    assert.equal(await firstValueFrom(nat.externalIp()), '198.51.100.4');
  });

  it('honours the grant: another port and a shorter lease', async () => {
    table.add({ protocol: 'tcp', internalClient: '10.0.0.9', internalPort: 1, externalPort: 8080, lifetimeSeconds: 0, via: 'upnp' });
    server.faults.tamper = (reply) => {
      const copy = reply.slice();
      new DataView(copy.buffer).setUint32(12, 30); // the gateway shortens the lease to 30 s
      return [copy];
    };
    const grant = await firstValueFrom(nat.addMapping(request({ lifetimeSeconds: 3600 })));
    assert.notEqual(grant.externalPort, 8080);
    assert.equal(grant.lifetimeSeconds, 30);
    assert.equal(table.findByInternal('tcp', HOST, 8080)?.externalPort, grant.externalPort);
  });

  it('a renewal asks for the port granted last time, and keeps it', async () => {
    table.add({ protocol: 'tcp', internalClient: '10.0.0.9', internalPort: 1, externalPort: 8080, lifetimeSeconds: 0, via: 'upnp' });
    const first = await firstValueFrom(nat.addMapping(request()));
    assert.notEqual(first.externalPort, 8080);
    table.delete('tcp', 8080); // the wanted port is free again: a renewal must not move
    const renewed = await firstValueFrom(nat.addMapping(request({ previous: first })));
    assert.equal(lastMapRequest(server).suggestedExternalPort, first.externalPort);
    assert.equal(renewed.externalPort, first.externalPort);
  });

  it('never suggests external port 0', async () => {
    await firstValueFrom(nat.addMapping(request({ internalPort: 9000, externalPort: 0 })));
    assert.equal(lastMapRequest(server).suggestedExternalPort, 9000);
  });

  it('asks for permanentLifetimeSeconds instead of lifetime 0 (which would delete)', async () => {
    const grant = await firstValueFrom(nat.addMapping(request({ lifetimeSeconds: 0 })));
    assert.equal(lastMapRequest(server).lifetimeSeconds, 7200);
    assert.equal(grant.lifetimeSeconds, 7200);
  });

  it('deletes with lifetime 0 and external port 0 (RFC 6886 §3.4)', async () => {
    const grant = await firstValueFrom(nat.addMapping(request()));
    const emitted = await lastValueFrom(nat.deleteMapping(grant).pipe(toArray()));
    assert.deepEqual(emitted, []);
    const sent = lastMapRequest(server);
    assert.deepEqual([sent.lifetimeSeconds, sent.suggestedExternalPort, sent.internalPort], [0, 0, 8080]);
    assert.equal(table.get('tcp', grant.externalPort), undefined);
    const listed = await firstValueFrom(nat.listMappings?.() ?? assert.fail('listMappings'));
    assert.equal(listed.find((e) => e.protocol === 'tcp' && e.internalPort === 8080), undefined, 'no longer listed');
  });

  it('a refusal is a GatewayError with the result code', async () => {
    server.faults.refuse = { resultCode: 2, count: 1 };
    await assert.rejects(firstValueFrom(nat.addMapping(request())), (error: unknown) => {
      assert.ok(error instanceof GatewayError, 'GatewayError');
      assert.equal(error.protocol, 'pmp');
      assert.equal(error.resultCode, 2);
      assert.equal(error.resultName, 'NOT_AUTHORIZED');
      assert.equal(error.gateway, HOST);
      return true;
    });
    server.faults.refuse = { resultCode: 3 };
    await assert.rejects(firstValueFrom(nat.externalIp()), (error: unknown) => error instanceof GatewayError && error.resultName === 'NETWORK_FAILURE');
  });

  it('retransmits through packet loss: drop the first 2 replies, the server sees 3 requests', async () => {
    server.faults.drop = { count: 2 };
    // Sends at 0, 250 and 750 ms; the answer to the third has a full second before a fourth would go.
    const grant = await firstValueFrom(createPmpNat(HOST, { ...options, initialRetransmitMs: 250 }).addMapping(request()));
    assert.equal(grant.externalPort, 8080);
    assert.equal(server.counters.byKind['pmp.mapTcp'], 3);
    assert.equal(server.counters.dropped, 2);
  });

  it('a probe refused with NOT_AUTHORIZED, NETWORK_FAILURE or UNSUPPORTED_OPCODE finds no gateway and says so', async () => {
    for (const resultCode of [2, 3, 5]) {
      server.faults.refuse = { resultCode, protocol: 'pmp' };
      await assert.rejects(firstValueFrom(pmp(HOST, options)), (error: unknown) => {
        assert.ok(error instanceof GatewayError, `GatewayError for ${resultCode}`);
        assert.deepEqual([error.protocol, error.resultCode, error.gateway], ['pmp', resultCode, HOST]);
        assert.match(error.message, /probe \(external address request\) was refused: NAT-PMP will not map here/);
        return true;
      });
    }
    // Other codes fail the probe as before, without claiming a refusal.
    server.faults.refuse = { resultCode: 4, protocol: 'pmp' };
    await assert.rejects(firstValueFrom(pmp(HOST, options)), (error: unknown) => error instanceof GatewayError && error.resultCode === 4 && !/will not map/.test(error.message));
  });

  it('ECONNREFUSED ends the probe at once as GatewayUnreachableError', async () => {
    const port = await closedUdpPort(HOST);
    const started = Date.now();
    // A long deadline: ending well before it shows the refusal ended the probe, not the deadline.
    await assert.rejects(firstValueFrom(pmp(HOST, { ...options, port, probeTimeoutMs: 20_000 })), (error: unknown) => error instanceof GatewayUnreachableError && error.protocol === 'pmp');
    assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms (deadline 20 s)`);
  });

  it('drops replies with a wrong source port, opcode, length or internal port', async () => {
    server.faults.silent = true;
    const stats = createUdpStats();
    const watched = createPmpNat(HOST, { ...options, stats });
    const grant$ = firstValueFrom(watched.addMapping(request({ protocol: 'udp', internalPort: 5000, externalPort: 5000 })));
    await waitFor(() => server.log.length > 0);
    const client = server.log[0]?.from ?? assert.fail('no request');
    const good = { op: 'map' as const, protocol: 'udp' as const, resultCode: 0, epochSeconds: 3600, internalPort: 5000, externalPort: 4242, lifetimeSeconds: 60 };
    const intruder = createSocket('udp4');
    await new Promise<void>((resolve) => intruder.bind(0, HOST, resolve));
    await new Promise<void>((resolve) => intruder.send(encodePmpResponse(good), client.port, client.address, () => resolve())); // wrong source port
    await server.send(encodePmpResponse({ ...good, protocol: 'tcp' }), client); // opcode 130, not 129
    await server.send(encodePmpResponse({ ...good, internalPort: 5001 }), client); // another internal port
    await server.send(Uint8Array.of(...encodePmpResponse(good), 0), client); // 17 bytes
    await server.send(encodePmpResponse({ op: 'external-address', resultCode: 0, epochSeconds: 3600, externalIp: '1.2.3.4' }), client);
    await server.send(Uint8Array.of(0x00), client);
    await server.send(encodePmpResponse(good), client);
    const granted = await grant$;
    intruder.close();
    assert.equal(granted.externalPort, 4242);
    assert.equal(stats.dropped, 5, 'five forged replies dropped (the kernel filters the wrong source port)');
    assert.equal(stats.accepted, 1);
  });

  it('a gateway reboot (epoch back to 0) emits on resets$', async () => {
    const resets: unknown[] = [];
    const subscription = nat.resets$?.subscribe((r) => resets.push(r));
    await firstValueFrom(nat.externalIp());
    assert.equal(resets.length, 0, 'no reset while the epoch advances normally');
    table.reboot();
    await firstValueFrom(nat.externalIp());
    assert.equal(resets.length, 1);
    await firstValueFrom(nat.externalIp());
    assert.equal(resets.length, 1, 'the new epoch becomes the reference');
    subscription?.unsubscribe();
    clock += 3_600_000;
    await firstValueFrom(nat.externalIp()); // re-baseline for later tests
  });

  it('uses the scheduler clock for the epoch check: an epoch that stood still for an hour is a reset', async () => {
    let now = 0;
    const scheduler: SchedulerLike = { now: () => now, schedule: asyncScheduler.schedule.bind(asyncScheduler) };
    const clocked = await firstValueFrom(pmp(HOST, { ...options, scheduler }));
    let resets = 0;
    clocked.resets$?.subscribe(() => resets++);
    now += 60_000; // 1 min later the gateway's epoch has not moved: lost state (RFC 6886 §3.6)
    await firstValueFrom(clocked.externalIp());
    assert.equal(resets, 1);
  });

  it('a PCP-only gateway is reported clearly', async () => {
    const pcpOnly = await startPmpPcpServer(table, { protocols: { pmp: false } });
    try {
      await assert.rejects(firstValueFrom(pmp(HOST, { ...options, port: pcpOnly.port })), (error: unknown) => {
        assert.ok(error instanceof GatewayError, 'GatewayError');
        assert.equal(error.resultCode, 1);
        assert.match(error.message, /PCP/);
        return true;
      });
    } finally {
      await pcpOnly.close();
    }
  });

  /** Rewrites each 16-byte MAP success reply with `patch` (RFC 6886 §3.3 offsets). */
  const tamperMapReplies = (patch: (view: DataView) => void): void => {
    server.faults.tamper = (reply) => {
      if (reply.length !== 16) return [reply];
      const copy = reply.slice();
      patch(new DataView(copy.buffer));
      return [copy];
    };
  };
  const isInvalidAnswer = (reason: string) => (error: unknown): boolean => {
    assert.ok(error instanceof ProtocolError, `ProtocolError, got ${String(error)}`);
    assert.deepEqual([error.protocol, error.reason, error.gateway], ['pmp', reason, HOST]);
    return true;
  };

  it('a MAP success with lifetime 0 (a delete answer) is a ProtocolError lifetime, not a grant', async () => {
    const fresh = createPmpNat(HOST, options);
    tamperMapReplies((view) => view.setUint32(12, 0));
    await assert.rejects(firstValueFrom(fresh.addMapping(request())), isInvalidAnswer('lifetime'));
    const listed = await firstValueFrom(fresh.listMappings?.() ?? assert.fail('listMappings'));
    assert.deepEqual(listed, [], 'not held as a (permanent) mapping');
  });

  it('a MAP success assigning external port 0 is a ProtocolError external-port, not a grant', async () => {
    const fresh = createPmpNat(HOST, options);
    tamperMapReplies((view) => view.setUint16(10, 0));
    await assert.rejects(firstValueFrom(fresh.addMapping(request())), isInvalidAnswer('external-port'));
    const listed = await firstValueFrom(fresh.listMappings?.() ?? assert.fail('listMappings'));
    assert.deepEqual(listed, []);
  });

  it('externalIp(): 0.0.0.0 (not connected), loopback or multicast is a ProtocolError external-address', async () => {
    for (const ip of ['0.0.0.0', '127.0.0.1', '169.254.10.1', '224.0.0.1', '239.255.255.250', '255.255.255.255']) {
      table.setExternalIp(ip);
      await assert.rejects(firstValueFrom(nat.externalIp()), isInvalidAnswer('external-address'), ip);
    }
    // Discovery still finds the gateway: it speaks NAT-PMP, it just has no external address yet.
    table.setExternalIp('0.0.0.0');
    assert.equal((await firstValueFrom(pmp(HOST, options))).kind, 'pmp');
    table.setExternalIp('10.64.0.2'); // a private address is a valid external address behind another NAT
    assert.equal(await firstValueFrom(nat.externalIp()), '10.64.0.2');
  });

  it('an add applied but never answered is deleted by internal port, without token or granted port', async () => {
    // Guard of what the core relies on (NAT-PMP needed no change): the delete names only the internal port.
    // The add must time out (every reply dropped), the delete must be answered: 2 s is short enough
    // for the first and, with retransmissions from 50 ms, ample for the second on a loaded machine.
    const quick = createPmpNat(HOST, { ...options, timeoutMs: 2000, initialRetransmitMs: 50 });
    server.faults.drop = { count: 1000 };
    table.add({ protocol: 'tcp', internalClient: '10.0.0.9', internalPort: 1, externalPort: 8080, lifetimeSeconds: 0, via: 'upnp' }); // the gateway grants another port
    await assert.rejects(firstValueFrom(quick.addMapping(request())), GatewayTimeoutError);
    assert.notEqual(table.findByInternal('tcp', HOST, 8080), undefined, 'applied although unanswered');
    server.faults.drop = undefined;
    await lastValueFrom(quick.deleteMapping({ protocol: 'tcp', internalPort: 8080, externalPort: 8080, lifetimeSeconds: 0 }), { defaultValue: undefined });
    assert.equal(table.findByInternal('tcp', HOST, 8080), undefined);
    assert.deepEqual(server.table.list().map((m) => m.internalClient), ['10.0.0.9'], 'only the other client\'s mapping is left');
  });

  it('renewing from a grant of another mapping does not reuse its port', async () => {
    const other: MappingGrant = { protocol: 'udp', internalPort: 1234, externalPort: 4321, lifetimeSeconds: 60 };
    await firstValueFrom(nat.addMapping(request({ previous: other })));
    assert.equal(lastMapRequest(server).suggestedExternalPort, 8080);
  });
});

