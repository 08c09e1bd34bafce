/** The gateway simulator façade: three protocols on loopback over one table. */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { test } from 'node:test';
import { firstValueFrom, ReplaySubject } from 'rxjs';
import { mapPort, type MappingState } from '../../src/core/map-port.js';
import type { Nat } from '../../src/core/nat.js';
import { parseNat } from '../../src/parse-nat.js';
import { pcp } from '../../src/protocols/pcp/client.js';
import { pmp } from '../../src/protocols/pmp/client.js';
import { upnp } from '../../src/protocols/upnp/client.js';
import * as testing from '../../src/testing/index.js';
import { startGatewaySimulator } from '../../src/testing/simulator.js';
import { MappingTable } from '../../src/testing/table.js';
import { waitFor } from '../support/net.js';

const request = { protocol: 'tcp', internalPort: 8080, externalPort: 8080, description: 'sim test', lifetimeSeconds: 60 } as const;
/**
 * Deadlines no loaded machine misses on loopback (the defaults are a 1 s NAT-PMP/PCP probe and a
 * 3 s SOAP deadline): these tests are about what lands in the table, not when.
 */
const PORT_CONTROL = { probeTimeoutMs: 10_000, timeoutMs: 10_000 } as const;
const UPNP = { timeoutMs: 5000, requestTimeoutMs: 10_000 } as const;

test('starts every server on 127.0.0.1 ephemeral ports over one table', async () => {
  const sim = await startGatewaySimulator();
  try {
    assert.equal(sim.address, '127.0.0.1');
    assert.ok(sim.pmpPort > 0 && sim.pmpPort === sim.pcpPort && sim.pmpPort === sim.pmpPcp.port);
    assert.deepEqual(sim.ssdpTarget, { address: '127.0.0.1', port: sim.upnp.ssdpPort });
    assert.match(sim.descriptionUrl, /^http:\/\/127\.0\.0\.1:\d+\/rootDesc\.xml$/);
    assert.equal(sim.pmpPcp.table, sim.table);
    assert.equal(sim.upnp.table, sim.table);
    assert.equal(sim.table.externalIp, '203.0.113.1');
    assert.deepEqual(sim.discoverOptions, {
      gateway: '127.0.0.1',
      pmp: { port: sim.pmpPort, localAddress: '127.0.0.1' },
      pcp: { port: sim.pmpPort, localAddress: '127.0.0.1' },
      upnp: { ssdpTargets: [sim.ssdpTarget], localAddress: '127.0.0.1' },
    });
  } finally {
    await sim.close();
  }
});

test('PCP, NAT-PMP and UPnP (SSDP and description URL) all map into the shared table', async () => {
  const sim = await startGatewaySimulator({ externalIp: '198.51.100.20' });
  try {
    const local = { localAddress: sim.address };
    const nats: Nat[] = await Promise.all([
      firstValueFrom(pcp(sim.address, { ...local, ...PORT_CONTROL, port: sim.pcpPort, fallbackToPmp: false })),
      firstValueFrom(pmp(sim.address, { ...local, ...PORT_CONTROL, port: sim.pmpPort })),
      firstValueFrom(upnp({ ...local, ...UPNP, ssdpTargets: [sim.ssdpTarget] })),
      firstValueFrom(upnp({ ...local, ...UPNP, descriptionUrl: sim.descriptionUrl })),
    ]);
    assert.deepEqual(nats.map((n) => n.kind), ['pcp', 'pmp', 'upnp', 'upnp']);
    const ports = [8081, 8082, 8083, 8084];
    await Promise.all(nats.map((nat, i) => firstValueFrom(nat.addMapping({ ...request, internalPort: ports[i]!, externalPort: ports[i]! }))));
    assert.deepEqual(
      sim.table.list().map((m) => [m.via, m.externalPort, m.internalClient]).sort(),
      [['pcp', 8081, '127.0.0.1'], ['pmp', 8082, '127.0.0.1'], ['upnp', 8083, '127.0.0.1'], ['upnp', 8084, '127.0.0.1']],
    );
    // One table: UPnP lists the mappings made through NAT-PMP and PCP too.
    const listed = await firstValueFrom(nats[2]!.listMappings!());
    assert.deepEqual(listed.map((e) => e.externalPort).sort(), ports);
    // setExternalIp is what every protocol reports from then on.
    sim.setExternalIp('198.51.100.21');
    const ips = await Promise.all(nats.map((nat) => firstValueFrom(nat.externalIp())));
    assert.deepEqual(ips, ['198.51.100.21', '198.51.100.21', '198.51.100.21', '198.51.100.21']);
  } finally {
    await sim.close();
  }
});

test('discoverOptions keeps parseNat("any") on the simulator', async () => {
  const sim = await startGatewaySimulator();
  try {
    const stop$ = new ReplaySubject<void>(1);
    const states$ = mapPort(parseNat('any', { ...sim.discoverOptions, timeoutMs: 10_000 })!, { protocol: 'udp', internalPort: 4001 }, { stop: stop$ });
    const states: MappingState[] = [];
    // One subscription: one mapping. Stop once the stream says mapped (the router's table gets the
    // entry a moment before the answer reaches the stream: stopping then skips `mapped`).
    const done = new Promise<void>((resolve, reject) => states$.subscribe({ next: (s) => states.push(s), error: reject, complete: resolve }));
    await waitFor(() => states.some((s) => s.status === 'mapped'), 20_000, 'a mapped state');
    assert.equal(sim.table.list().length, 1);
    stop$.next();
    await done;
    assert.ok(states.some((s) => s.status === 'mapped' && /\(127\.0\.0\.1\)$/.test(s.backend ?? '')), JSON.stringify(states));
    assert.equal(states.at(-1)!.status, 'unmapped');
    assert.deepEqual(sim.table.list(), []);
  } finally {
    await sim.close();
  }
});

test('reboot wipes the table and restarts the epoch; moveControlPort moves the UPnP port', async () => {
  let clockMs = 1_000_000;
  const table = new MappingTable({ externalIp: '203.0.113.50', now: () => clockMs });
  clockMs += 60_000; // the gateway has been up a minute
  const sim = await startGatewaySimulator({ table });
  try {
    assert.equal(sim.table, table);
    const nat = await firstValueFrom(pmp(sim.address, { ...PORT_CONTROL, port: sim.pmpPort, localAddress: sim.address }));
    const resets: unknown[] = [];
    nat.resets$!.subscribe((r) => resets.push(r));
    await firstValueFrom(nat.addMapping(request));
    const before = sim.descriptionUrl;
    assert.equal(sim.table.epochSeconds(), 60);
    await sim.reboot({ moveControlPort: true });
    assert.deepEqual(sim.table.list(), []);
    assert.equal(sim.table.epochSeconds(), 0);
    assert.notEqual(sim.descriptionUrl, before);
    await firstValueFrom(nat.externalIp()); // the reply's epoch went backwards
    assert.equal(resets.length, 1);
    const moved = await firstValueFrom(upnp({ ...UPNP, descriptionUrl: sim.descriptionUrl, localAddress: sim.address }));
    assert.equal(await firstValueFrom(moved.externalIp()), '203.0.113.50');
  } finally {
    await sim.close();
  }
});

test('options reach the servers (short PCP leases, IGDv1)', async () => {
  const sim = await startGatewaySimulator({ pmpPcp: { pcpMinLifetimeSeconds: 1 }, upnp: { igdVersion: 1 } });
  try {
    const nat = await firstValueFrom(pcp(sim.address, { ...PORT_CONTROL, port: sim.pcpPort, localAddress: sim.address }));
    const grant = await firstValueFrom(nat.addMapping({ ...request, lifetimeSeconds: 3 }));
    assert.equal(grant.lifetimeSeconds, 3);
    assert.equal(sim.upnp.igdVersion, 1);
  } finally {
    await sim.close();
  }
});

test('refuses to listen anywhere but loopback', async () => {
  for (const address of ['0.0.0.0', '192.168.1.1', '::1', '::', 'localhost']) {
    await assert.rejects(startGatewaySimulator({ address }), /loopback only/, address);
  }
});

test('close() releases the ports and can be called twice', async () => {
  const sim = await startGatewaySimulator();
  const { pmpPort } = sim;
  const ssdpPort = sim.ssdpTarget.port;
  await Promise.all([sim.close(), sim.close()]);
  for (const port of [pmpPort, ssdpPort]) {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ port, address: '127.0.0.1', exclusive: true }, () => resolve());
    });
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
});

test('rxnat/testing exports the simulator API', () => {
  assert.equal(typeof testing.startGatewaySimulator, 'function');
  assert.equal(typeof testing.startPmpPcpServer, 'function');
  assert.equal(typeof testing.startUpnpServer, 'function');
  assert.equal(typeof testing.MappingTable, 'function');
  assert.equal(typeof testing.UpnpFaults, 'function');
});
