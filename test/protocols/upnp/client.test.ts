import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { firstValueFrom, lastValueFrom } from 'rxjs';
import type { NatMappingRequest } from '../../../src/core/nat.js';
import { GatewayError, GatewayUnreachableError, ProtocolError } from '../../../src/errors.js';
import { upnp, type UpnpNat, type UpnpOptions } from '../../../src/protocols/upnp/client.js';
import { MappingTable } from '../../../src/testing/table.js';
import { startUpnpServer, type UpnpServer, type UpnpServerOptions } from '../../../src/testing/upnp-server.js';
import { decodeSoapRequest, encodeSoapFault, encodeSoapResponse } from '../../../src/protocols/upnp/soap.js';
import { fixture } from './fixtures.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function start(options: UpnpServerOptions = {}, table = new MappingTable()): Promise<UpnpServer> {
  const server = await startUpnpServer(table, options);
  cleanups.push(() => server.close());
  return server;
}
/**
 * The SOAP/HTTP deadline of requests these tests expect answered: far beyond any loopback round
 * trip on a loaded machine. The tests are about what is asked and answered; SOAP deadlines and
 * SSDP windows are timed in virtual time in client-timing.test.ts.
 */
const ANSWERED_MS = 10_000;
const connect = (server: UpnpServer, options: UpnpOptions = {}): Promise<UpnpNat> =>
  firstValueFrom(upnp({ descriptionUrl: server.descriptionUrl, requestTimeoutMs: ANSWERED_MS, ...options }));
/** Discovery resolves at the first valid answer, so a wide window costs nothing when one comes. */
const discover = (servers: UpnpServer[], options: UpnpOptions = {}): Promise<UpnpNat> =>
  firstValueFrom(upnp({ ssdpTargets: servers.map((s) => ({ address: '127.0.0.1', port: s.ssdpPort })), timeoutMs: 5000, requestTimeoutMs: ANSWERED_MS, ...options }));
const request = (port: number, protocol: 'tcp' | 'udp' = 'tcp', lifetimeSeconds = 60): NatMappingRequest => ({
  protocol,
  internalPort: port,
  externalPort: port,
  description: 'rxnat test',
  lifetimeSeconds,
});
const leases = (server: UpnpServer, action = 'AddPortMapping'): string[] =>
  server.requests.filter((r) => r.action === action).map((r) => r.args.NewLeaseDuration ?? '');
const isGatewayError = (code: number, gateway?: string) => (e: unknown): boolean =>
  e instanceof GatewayError && e.protocol === 'upnp' && e.resultCode === code && (gateway === undefined || e.gateway === gateway);

for (const igdVersion of [2, 1] as const) {
  describe(`upnp() against a simulated IGDv${igdVersion}`, () => {
    it('discovers over SSDP (unicast loopback) and resolves on the first valid answer, well before the window ends', async () => {
      const server = await start({ igdVersion });
      const started = Date.now();
      // A 20 s window: resolving well inside it shows discovery stops at the first valid answer.
      const nat = await discover([server], { timeoutMs: 20_000 });
      const elapsed = Date.now() - started;
      assert.ok(elapsed < 10_000, `resolved after ${elapsed} ms of a 20 s window`);
      assert.equal(nat.kind, 'upnp');
      assert.equal(nat.name, 'upnp(127.0.0.1)');
      assert.equal(nat.gateway, server.descriptionUrl);
      assert.equal(nat.service.serviceType, `urn:schemas-upnp-org:service:WANIPConnection:${igdVersion}`);
      assert.equal(nat.service.controlUrl, server.controlUrl);
      assert.equal(nat.internalClient, '127.0.0.1');
      assert.equal(nat.maxConcurrentRequests, 1);
      assert.equal(server.counters['M-SEARCH'], 1, 'the lead search alone (IGD:1, which an IGDv2 answers too) found it');
      assert.equal(server.counters.description, 1, 'fetched once');
    });

    it('maps tcp and udp, reads the external IP, renews, lists and deletes', async () => {
      const table = new MappingTable({ externalIp: '203.0.113.9' });
      const server = await start({ igdVersion }, table);
      const nat = await connect(server);
      assert.equal(await firstValueFrom(nat.externalIp()), '203.0.113.9');
      const tcp = await firstValueFrom(nat.addMapping(request(4000, 'tcp')));
      const udp = await firstValueFrom(nat.addMapping(request(4001, 'udp')));
      assert.deepEqual(tcp, { protocol: 'tcp', internalPort: 4000, externalPort: 4000, lifetimeSeconds: 60 });
      assert.equal(udp.protocol, 'udp');
      assert.deepEqual(
        table.list().map((m) => [m.protocol, m.externalPort, m.internalClient, m.internalPort, m.via, m.description]),
        [['tcp', 4000, '127.0.0.1', 4000, 'upnp', 'rxnat test'], ['udp', 4001, '127.0.0.1', 4001, 'upnp', 'rxnat test']],
      );
      const renewed = await firstValueFrom(nat.addMapping({ ...request(4000, 'tcp', 120), previous: tcp }));
      assert.equal(renewed.externalPort, 4000);
      assert.equal(table.get('tcp', 4000)?.lifetimeSeconds, 120);
      assert.equal(server.counters.AddPortMapping, 3);
      const listed = await firstValueFrom(nat.listMappings());
      assert.deepEqual(listed.map((e) => [e.protocol, e.externalPort, e.internalClient, e.internalPort, e.enabled]), [
        ['tcp', 4000, '127.0.0.1', 4000, true],
        ['udp', 4001, '127.0.0.1', 4001, true],
      ]);
      assert.equal(server.counters.GetGenericPortMappingEntry, 3, 'until 713');
      assert.equal((await firstValueFrom(nat.specificMapping('udp', 4001)))?.internalPort, 4001);
      assert.equal(await firstValueFrom(nat.specificMapping('udp', 4999)), null);
      await lastValueFrom(nat.deleteMapping(tcp), { defaultValue: undefined });
      await lastValueFrom(nat.deleteMapping(udp), { defaultValue: undefined });
      assert.deepEqual(table.list(), []);
      await lastValueFrom(nat.deleteMapping(udp), { defaultValue: undefined }); // 714: already gone, still completes
      assert.equal(server.counters.description, 1, 'description fetched once per Nat');
    });

    it('725 OnlyPermanentLeasesSupported: retries with lease 0, remembers it, and can still delete', async () => {
      const table = new MappingTable();
      const server = await start({ igdVersion }, table);
      server.faults.permanentLeasesOnly = true;
      const nat = await connect(server);
      const first = await firstValueFrom(nat.addMapping(request(4100)));
      assert.equal(first.lifetimeSeconds, 0);
      assert.equal(nat.permanentLeasesOnly, true);
      assert.deepEqual(leases(server), ['60', '0']);
      const second = await firstValueFrom(nat.addMapping(request(4101, 'udp')));
      assert.equal(second.lifetimeSeconds, 0);
      assert.deepEqual(leases(server), ['60', '0', '0'], 'the second add sends lease 0 directly');
      await lastValueFrom(nat.deleteMapping(first), { defaultValue: undefined });
      await lastValueFrom(nat.deleteMapping(second), { defaultValue: undefined });
      assert.deepEqual(table.list(), []);
    });

    it('402 on a lease: retries once with lease 0 and remembers it', async () => {
      const server = await start({ igdVersion });
      server.faults.inject({ kind: 'error', code: 402 }, { action: 'AddPortMapping' });
      const nat = await connect(server);
      assert.equal((await firstValueFrom(nat.addMapping(request(4200)))).lifetimeSeconds, 0);
      assert.equal(nat.permanentLeasesOnly, true);
      assert.deepEqual(leases(server), ['60', '0']);
    });

    it('724 SamePortValuesRequired: retries with external = internal port', async () => {
      const server = await start({ igdVersion });
      server.faults.inject({ kind: 'error', code: 724 }, { action: 'AddPortMapping' });
      const nat = await connect(server);
      const grant = await firstValueFrom(nat.addMapping({ ...request(4300), externalPort: 5300 }));
      assert.equal(grant.externalPort, 4300);
      assert.deepEqual(server.requests.filter((r) => r.action === 'AddPortMapping').map((r) => r.args.NewExternalPort), ['5300', '4300']);
    });

    for (const code of [606, 501, 728]) {
      it(`${code} becomes a typed GatewayError carrying the code and the control URL`, async () => {
        const server = await start({ igdVersion });
        server.faults.inject({ kind: 'error', code }, { action: 'AddPortMapping' });
        const nat = await connect(server);
        await assert.rejects(firstValueFrom(nat.addMapping(request(4400))), isGatewayError(code, server.controlUrl));
      });
    }

    it('727 ExternalPortOnlySupportsWildcard is a clear typed error', async () => {
      const server = await start({ igdVersion });
      server.faults.inject({ kind: 'error', code: 727 }, { action: 'AddPortMapping' });
      const nat = await connect(server);
      await assert.rejects(firstValueFrom(nat.addMapping(request(4450))), (e: unknown) => isGatewayError(727)(e) && /wildcard external port/.test((e as Error).message));
    });

    it('rewrites a LOCATION naming another host to the responder and never connects to that host', async () => {
      const server = await start({ igdVersion, locationHost: '127.0.0.2' });
      let hits = 0;
      const decoy: Server = createServer((socket) => {
        hits += 1;
        socket.destroy();
      });
      decoy.listen(server.httpPort, '127.0.0.2');
      await once(decoy, 'listening');
      cleanups.push(() => new Promise((resolve) => decoy.close(resolve)));
      const nat = await discover([server]);
      assert.equal(nat.gateway, `http://127.0.0.1:${server.httpPort}/rootDesc.xml`);
      assert.equal(nat.service.controlUrl, `http://127.0.0.1:${server.httpPort}/ctl/IPConn`);
      await firstValueFrom(nat.addMapping(request(4500)));
      assert.equal(hits, 0);
      assert.equal(server.counters.description, 1);
    });
  });
}

describe('upnp() conflicts (718)', () => {
  it('IGDv2: falls back to AddAnyPortMapping and reports the port granted', async () => {
    const table = new MappingTable();
    const server = await start({ igdVersion: 2 }, table);
    server.faults.conflictingPorts.add(8080);
    const nat = await connect(server);
    const grant = await firstValueFrom(nat.addMapping(request(8080)));
    assert.notEqual(grant.externalPort, 8080);
    assert.equal(table.get('tcp', grant.externalPort)?.internalPort, 8080);
    assert.equal(server.counters.AddAnyPortMapping, 1);
    assert.equal(server.counters.AddPortMapping, 1);
  });

  it('IGDv1: tries random ports in 10000-65534 (bounded) and reports the port granted', async () => {
    const table = new MappingTable();
    const server = await start({ igdVersion: 1 }, table);
    server.faults.conflictingPorts.add(8080);
    const randoms = [0, 0.5];
    server.faults.conflictingPorts.add(10000); // the first random port is taken too
    const nat = await connect(server, { random: () => randoms.shift() ?? 0.99 });
    const grant = await firstValueFrom(nat.addMapping(request(8080)));
    assert.equal(grant.externalPort, 10000 + Math.floor(0.5 * 55535));
    assert.equal(table.get('tcp', grant.externalPort)?.internalPort, 8080);
    assert.deepEqual(server.requests.filter((r) => r.action === 'AddPortMapping').map((r) => r.args.NewExternalPort), ['8080', '10000', String(grant.externalPort)]);
    assert.equal(server.counters.AddAnyPortMapping, undefined);
    // Every port taken: gives up after 1 + 3 attempts with the 718.
    server.faults.inject({ kind: 'error', code: 718 }, { action: 'AddPortMapping', times: Infinity });
    await assert.rejects(firstValueFrom(nat.addMapping(request(9090))), isGatewayError(718));
    assert.equal(server.counters.AddPortMapping, 3 + 4);
  });
});

describe('upnp() transport failures', () => {
  it('unsubscribing aborts the HTTP request: the server sees the connection close', async () => {
    const server = await start();
    const nat = await connect(server);
    server.faults.inject({ kind: 'silent' }, { action: 'GetExternalIPAddress' });
    const requested = once(server.events, 'request');
    const subscription = nat.externalIp().subscribe({ error: () => assert.fail('no error after unsubscribe') });
    await requested;
    assert.equal(server.openConnections, 1);
    const closed = once(server.events, 'connection-closed');
    subscription.unsubscribe();
    await closed;
    assert.equal(server.openConnections, 0);
  });

  it('an oversized body is a ProtocolError', async () => {
    const server = await start();
    const nat = await connect(server, { maxBodyBytes: 10_000 });
    server.faults.inject({ kind: 'oversize', bytes: 50_000 }, { action: 'GetExternalIPAddress' });
    await assert.rejects(firstValueFrom(nat.externalIp()), (e: unknown) => e instanceof ProtocolError && e.reason === 'too-large');
    server.faults.inject({ kind: 'oversize', bytes: 50_000 }, { action: 'description' });
    await assert.rejects(connect(server, { maxBodyBytes: 10_000 }), (e: unknown) => e instanceof ProtocolError && e.reason === 'too-large');
  });

  it('malformed XML, an empty body and a reset mid-body are typed errors', async () => {
    const server = await start();
    const nat = await connect(server);
    server.faults.inject({ kind: 'malformed' }, { action: 'GetExternalIPAddress' });
    await assert.rejects(firstValueFrom(nat.externalIp()), (e: unknown) => e instanceof ProtocolError && e.reason === 'malformed');
    server.faults.inject({ kind: 'empty' }, { action: 'GetExternalIPAddress' });
    await assert.rejects(firstValueFrom(nat.externalIp()), (e: unknown) => e instanceof ProtocolError && e.reason === 'empty');
    server.faults.inject({ kind: 'reset' }, { action: 'GetExternalIPAddress' });
    await assert.rejects(firstValueFrom(nat.externalIp()), GatewayUnreachableError);
    server.faults.inject({ kind: 'error', code: 501, httpStatus: 200 }, { action: 'GetExternalIPAddress' });
    await assert.rejects(firstValueFrom(nat.externalIp()), isGatewayError(501));
    assert.equal(await firstValueFrom(nat.externalIp()), '203.0.113.1');
  });

  it('a reboot that moves the control port makes calls fail with GatewayUnreachableError', async () => {
    const server = await start();
    const nat = await connect(server);
    await firstValueFrom(nat.addMapping(request(4600)));
    await server.reboot({ moveControlPort: true });
    await assert.rejects(firstValueFrom(nat.addMapping(request(4600))), (e: unknown) => e instanceof GatewayUnreachableError && e.protocol === 'upnp');
    // A new discovery finds the new port.
    const again = await connect(server);
    assert.equal((await firstValueFrom(again.addMapping(request(4600)))).externalPort, 4600);
  });

  it('the description URL must be http:', async () => {
    await assert.rejects(firstValueFrom(upnp({ descriptionUrl: 'https://127.0.0.1:1/rootDesc.xml' })), (e: unknown) => e instanceof ProtocolError && e.reason === 'scheme');
  });
});

describe('upnp() discovery', () => {
  it('skips an invalid gateway and takes the valid one; prefers IGDv2 being checked over an IGDv1', async () => {
    const broken = await start({ igdVersion: 2 });
    broken.faults.inject({ kind: 'malformed' }, { action: 'description' });
    const v1 = await start({ igdVersion: 1, uuid: 'b7a2c2d4-5f43-4b1e-9a6e-000000000001' });
    const v2 = await start({ igdVersion: 2, uuid: 'b7a2c2d4-5f43-4b1e-9a6e-000000000002' });
    v2.faults.inject({ kind: 'delay', ms: 80 }, { action: 'description' });
    const nat = await discover([v2, broken, v1]);
    assert.equal(nat.gateway, v2.descriptionUrl);
    assert.equal(nat.service.version, 2);
    assert.equal(broken.counters.description, 1);
  });

  it('errors with the candidate\'s error when the only gateway is invalid', async () => {
    const server = await start();
    server.faults.inject({ kind: 'malformed' }, { action: 'description' });
    // The error comes when the window ends; the SSDP answer must arrive inside it, so 2 s, not 300 ms.
    await assert.rejects(discover([server], { timeoutMs: 2000 }), (e: unknown) => e instanceof ProtocolError && e.reason === 'malformed');
  });

  it('a gateway with one WAN connection service is taken without a request; a WAN link that is down shows in externalIp()', async () => {
    const server = await start();
    server.connectionStatus = 'Disconnected'; // its GetExternalIPAddress answers 0.0.0.0, as miniupnpd's does
    const nat = await connect(server);
    assert.deepEqual(server.requests.filter((r) => r.action !== 'description').map((r) => r.action), [], 'no SOAP request at discovery');
    await assert.rejects(firstValueFrom(nat.externalIp()), (e: unknown) => e instanceof ProtocolError && e.reason === 'external-address' && /0\.0\.0\.0/.test(e.message));
  });

  it('accepts a WANPPPConnection-only gateway', async () => {
    const server = await start({ connection: 'ppp' });
    const nat = await discover([server]);
    assert.equal(nat.service.kind, 'ppp');
    assert.equal((await firstValueFrom(nat.addMapping(request(4700)))).externalPort, 4700);
  });

  it('bounds listMappings by maxListedMappings', async () => {
    const table = new MappingTable();
    const server = await start({}, table);
    for (let port = 5000; port < 5010; port++) table.add({ protocol: 'udp', internalClient: '10.0.0.9', internalPort: port, externalPort: port, lifetimeSeconds: 0, via: 'pmp' });
    const nat = await connect(server, { maxListedMappings: 4 });
    assert.equal((await firstValueFrom(nat.listMappings())).length, 4);
    assert.equal(server.counters.GetGenericPortMappingEntry, 4);
  });
});

describe('upnp() success answers that are not valid', () => {
  const isInvalidAnswer = (reason: string, gateway: string) => (error: unknown): boolean => {
    assert.ok(error instanceof ProtocolError, `ProtocolError, got ${String(error)}`);
    assert.deepEqual([error.protocol, error.reason, error.gateway], ['upnp', reason, gateway]);
    return true;
  };

  it('externalIp(): empty, 0.0.0.0 (not connected), garbage, non-IP, loopback or multicast is a ProtocolError external-address', async () => {
    const table = new MappingTable();
    const server = await start({}, table);
    const nat = await connect(server);
    for (const ip of ['', '0.0.0.0', '<<garbage>>', 'not-an-ip', '999.1.1.1', '203.0.113', '127.0.0.1', '169.254.0.7', '224.0.0.1', '240.0.0.1', '::1']) {
      table.setExternalIp(ip);
      await assert.rejects(firstValueFrom(nat.externalIp()), isInvalidAnswer('external-address', server.controlUrl), JSON.stringify(ip));
    }
    table.setExternalIp('100.64.0.9'); // a carrier-grade NAT's shared address is a valid external address
    assert.equal(await firstValueFrom(nat.externalIp()), '100.64.0.9');
  });

  it('AddAnyPortMapping answering NewReservedPort 0, missing or not a port is a ProtocolError external-port', async () => {
    // A loopback IGDv2 whose AddPortMapping always conflicts (718), so the client falls back to
    // AddAnyPortMapping, answered with `reserved` as NewReservedPort (absent when undefined).
    let reserved: string | undefined;
    const description = fixture('igd2-miniupnpd.xml');
    const serviceType = 'urn:schemas-upnp-org:service:WANIPConnection:2';
    const gateway = createHttpServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        if (req.method === 'GET') {
          res.writeHead(200, { 'content-type': 'text/xml' }).end(description);
          return;
        }
        const soap = decodeSoapRequest(body, String(req.headers.soapaction ?? ''));
        const action = soap instanceof ProtocolError ? '' : soap.action;
        const reply = (status: number, xml: string): void => void res.writeHead(status, { 'content-type': 'text/xml; charset="utf-8"' }).end(xml);
        if (action === 'GetStatusInfo') reply(200, encodeSoapResponse(serviceType, action, [['NewConnectionStatus', 'Connected']]));
        else if (action === 'AddPortMapping') reply(500, encodeSoapFault(718));
        else if (action === 'AddAnyPortMapping') reply(200, encodeSoapResponse(serviceType, action, reserved === undefined ? [] : [['NewReservedPort', reserved]]));
        else reply(500, encodeSoapFault(401));
      });
    });
    await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => gateway.close(() => resolve())));
    const { port } = gateway.address() as AddressInfo;
    const nat = await firstValueFrom(upnp({ descriptionUrl: `http://127.0.0.1:${port}/rootDesc.xml`, requestTimeoutMs: ANSWERED_MS }));
    const controlUrl = `http://127.0.0.1:${port}/ctl/IPConn`;
    assert.equal(nat.service.controlUrl, controlUrl);
    for (const value of ['0', undefined, '', 'abc', '70000', '-1', '8080.5']) {
      reserved = value;
      await assert.rejects(firstValueFrom(nat.addMapping(request(8080))), isInvalidAnswer('external-port', controlUrl), String(value));
    }
    reserved = '10001';
    assert.equal((await firstValueFrom(nat.addMapping(request(8080)))).externalPort, 10001);
  });
});
