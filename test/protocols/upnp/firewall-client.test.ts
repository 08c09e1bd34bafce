/**
 * The pinhole NAT (WANIPv6FirewallControl:1) against the simulated IGD on loopback: `::1` for
 * IPv6, `127.0.0.1` for an IGD found over IPv4; and mapPort over it, end to end.
 */
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { firstValueFrom, from, lastValueFrom, Observable, of, toArray } from 'rxjs';
import { mapPort, type MappingState } from '../../../src/core/map-port.js';
import type { MappingGrant, NatMappingRequest } from '../../../src/core/nat.js';
import { GatewayError, GatewayTimeoutError, ProtocolError } from '../../../src/errors.js';
import { upnp } from '../../../src/protocols/upnp/client.js';
import {
  MAX_PINHOLE_PROBES,
  pinholeTokenOf,
  upnpPinhole,
  upnpPinholeVia,
  type UpnpPinholeNat,
  type UpnpPinholeOptions,
} from '../../../src/protocols/upnp/firewall-client.js';
import { WAN_IPV6_FIREWALL_CONTROL_1 } from '../../../src/protocols/upnp/description.js';
import type { HttpRequest, HttpResponse } from '../../../src/transport/http.js';
import { createTransport } from '../../../src/transport/transport.js';
import type { UdpCollectOptions, UdpReply } from '../../../src/transport/udp.js';
import { PinholeTable } from '../../../src/testing/pinhole-table.js';
import { MappingTable } from '../../../src/testing/table.js';
import { startUpnpServer, type UpnpServer, type UpnpServerOptions } from '../../../src/testing/upnp-server.js';
import { waitFor } from '../../support/net.js';
import { fixture } from './fixtures.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
});

async function start(options: UpnpServerOptions = {}): Promise<UpnpServer> {
  const server = await startUpnpServer(new MappingTable(), { address: '::1', ...options });
  cleanups.push(() => server.close());
  return server;
}
/** Far beyond any loopback round trip on a loaded machine: these tests are about what is asked and answered. */
const ANSWERED_MS = 10_000;
const connect = (server: UpnpServer, options: UpnpPinholeOptions = {}): Promise<UpnpPinholeNat> =>
  firstValueFrom(upnpPinhole({ descriptionUrl: server.descriptionUrl, requestTimeoutMs: ANSWERED_MS, ...options }));
const request = (port: number, protocol: 'tcp' | 'udp' = 'tcp', lifetimeSeconds = 60, previous?: MappingGrant): NatMappingRequest => ({
  protocol,
  internalPort: port,
  externalPort: port,
  description: 'rxnat test',
  lifetimeSeconds,
  ...(previous ? { previous } : {}),
});
const sent = (server: UpnpServer, action: string): Array<Readonly<Record<string, string>>> => server.requests.filter((r) => r.action === action).map((r) => r.args);
const isFault = (code: number, gateway: string | undefined) => (e: unknown): boolean =>
  e instanceof GatewayError && e.protocol === 'upnp' && e.resultCode === code && e.gateway === gateway;

describe('upnpPinhole() against the simulated IGD on ::1', () => {
  it('finds the firewall service, reads GetFirewallStatus, takes the connection\'s IPv6 address as InternalClient', async () => {
    const server = await start();
    const nat = await connect(server);
    assert.equal(nat.kind, 'upnp-pinhole');
    assert.equal(nat.name, 'upnp-pinhole([::1])');
    assert.equal(nat.gateway, server.descriptionUrl);
    assert.equal(nat.endpoint, server.firewallControlUrl);
    assert.equal(nat.service.serviceType, WAN_IPV6_FIREWALL_CONTROL_1);
    assert.equal(nat.internalClient, '::1');
    assert.deepEqual(nat.firewallStatus, { firewallEnabled: true, inboundPinholeAllowed: true });
    assert.equal(await firstValueFrom(nat.externalIp()), '::1');
    assert.deepEqual(
      server.requests.map((r) => r.action),
      ['GetFirewallStatus'],
    );
  });

  it('opens a pinhole (no translation), renews it with UpdatePinhole, opens it again after 704, deletes it', async () => {
    const server = await start();
    const nat = await connect(server);
    const grant = await firstValueFrom(nat.addMapping(request(18080, 'udp', 300)));
    const id = pinholeTokenOf(grant)!.uniqueId;
    assert.deepEqual(grant, {
      protocol: 'udp',
      internalPort: 18080,
      externalPort: 18080,
      lifetimeSeconds: 300,
      externalIp: '::1',
      token: { kind: 'upnp-pinhole', uniqueId: id, internalClient: '::1' },
    });
    assert.deepEqual(sent(server, 'AddPinhole'), [{ RemoteHost: '', RemotePort: '0', InternalClient: '::1', InternalPort: '18080', Protocol: '17', LeaseTime: '300' }]);
    assert.deepEqual(
      server.pinholes.list().map((p) => [p.uniqueId, p.protocol, p.internalClient, p.internalPort, p.leaseTimeSeconds]),
      [[id, 'udp', '::1', 18080, 300]],
    );

    const renewed = await firstValueFrom(nat.addMapping(request(18080, 'udp', 600, grant)));
    assert.deepEqual(sent(server, 'UpdatePinhole'), [{ UniqueID: String(id), NewLeaseTime: '600' }]);
    assert.equal(sent(server, 'AddPinhole').length, 1, 'a renewal is not a second AddPinhole');
    assert.equal(pinholeTokenOf(renewed)!.uniqueId, id);
    assert.equal(renewed.lifetimeSeconds, 600);
    assert.equal(server.pinholes.get(id)!.leaseTimeSeconds, 600);

    server.pinholes.clear(); // the router forgot it
    const reopened = await firstValueFrom(nat.addMapping(request(18080, 'udp', 600, renewed)));
    assert.equal(sent(server, 'UpdatePinhole').length, 2);
    assert.equal(sent(server, 'AddPinhole').length, 2, '704 on UpdatePinhole: opened again');
    const newId = pinholeTokenOf(reopened)!.uniqueId;
    assert.deepEqual(server.pinholes.list().map((p) => p.uniqueId), [newId]);

    assert.deepEqual(await lastValueFrom(nat.deleteMapping(reopened).pipe(toArray())), []);
    assert.deepEqual(sent(server, 'DeletePinhole'), [{ UniqueID: String(newId) }]);
    assert.deepEqual(server.pinholes.list(), []);
    // Already gone (704): the goal is reached.
    assert.deepEqual(await lastValueFrom(nat.deleteMapping(reopened).pipe(toArray())), []);
    assert.equal(sent(server, 'DeletePinhole').length, 2);
  });

  it('a permanent request asks for a day (no permanent pinholes); a grant without UniqueID cannot be deleted', async () => {
    const server = await start();
    const nat = await connect(server);
    const grant = await firstValueFrom(nat.addMapping(request(18081, 'tcp', 0)));
    assert.equal(grant.lifetimeSeconds, 86_400);
    assert.equal(sent(server, 'AddPinhole')[0]!.LeaseTime, '86400');
    const { token: _token, ...plain } = grant;
    await assert.rejects(firstValueFrom(nat.deleteMapping(plain), { defaultValue: 'done' }), (e: unknown) => e instanceof ProtocolError && e.reason === 'unique-id');
    assert.equal(sent(server, 'DeletePinhole').length, 0);
  });

  it('GetFirewallStatus, GetOutboundPinholeTimeout, GetPinholePackets, CheckPinholeWorking (709: cannot tell yet)', async () => {
    const server = await start({ outboundPinholeTimeoutSeconds: 150 });
    const nat = await connect(server);
    assert.deepEqual(await firstValueFrom(nat.getFirewallStatus()), { firewallEnabled: true, inboundPinholeAllowed: true });
    assert.equal(await firstValueFrom(nat.outboundPinholeTimeout({ protocol: 'udp', internalPort: 18082 })), 150);
    assert.deepEqual(sent(server, 'GetOutboundPinholeTimeout'), [{ RemoteHost: '', RemotePort: '0', InternalClient: '::1', InternalPort: '18082', Protocol: '17' }]);
    const grant = await firstValueFrom(nat.addMapping(request(18082, 'udp')));
    assert.equal(await firstValueFrom(nat.pinholePackets(grant)), 0);
    assert.equal(await firstValueFrom(nat.checkPinholeWorking(grant)), null);
    server.pinholes.recordPackets(pinholeTokenOf(grant)!.uniqueId, 3);
    assert.equal(await firstValueFrom(nat.pinholePackets(grant)), 3);
    assert.equal(await firstValueFrom(nat.checkPinholeWorking(grant)), true);
    // A gateway without the optional action: the fault, typed.
    server.faults.inject({ kind: 'error', code: 401 }, { action: 'CheckPinholeWorking' });
    await assert.rejects(firstValueFrom(nat.checkPinholeWorking(grant)), isFault(401, server.firewallControlUrl));
  });

  it('discovery fails typed when the firewall is off (702) or allows no pinholes (703)', async () => {
    const server = await start();
    server.faults.firewallDisabled = true;
    await assert.rejects(connect(server), (e: unknown) => isFault(702, server.firewallControlUrl)(e) && (e as GatewayError).resultName === 'FirewallDisabled');
    server.faults.firewallDisabled = false;
    server.faults.inboundPinholeNotAllowed = true;
    await assert.rejects(connect(server), (e: unknown) => isFault(703, server.firewallControlUrl)(e) && (e as GatewayError).resultName === 'InboundPinholeNotAllowed');
  });

  it('a gateway that answers GetFirewallStatus with a fault is still used', async () => {
    const server = await start();
    server.faults.inject({ kind: 'error', code: 501 }, { action: 'GetFirewallStatus' });
    const nat = await connect(server);
    assert.equal(nat.firewallStatus, null);
    assert.equal(nat.internalClient, '::1');
    await firstValueFrom(nat.addMapping(request(18083)));
    assert.equal(server.pinholes.list().length, 1);
  });

  it('each fault of AddPinhole is a GatewayError with the code, the service\'s name and the control URL', async () => {
    const server = await start({ pinholes: new PinholeTable({ capacity: 1 }) });
    const nat = await connect(server);
    await firstValueFrom(nat.addMapping(request(18084)));
    await assert.rejects(firstValueFrom(nat.addMapping(request(18085))), (e: unknown) => isFault(701, server.firewallControlUrl)(e) && (e as GatewayError).resultName === 'PinholeSpaceExhausted');
    server.pinholes.clear();
    await assert.rejects(firstValueFrom(nat.addMapping(request(80))), (e: unknown) => isFault(606, server.firewallControlUrl)(e) && (e as GatewayError).resultName === 'ActionNotAuthorized');
    server.faults.firewallDisabled = true;
    await assert.rejects(firstValueFrom(nat.addMapping(request(18086))), isFault(702, server.firewallControlUrl));
    server.faults.clear();
    server.faults.inboundPinholeNotAllowed = true;
    await assert.rejects(firstValueFrom(nat.addMapping(request(18086))), isFault(703, server.firewallControlUrl));
    server.faults.clear();
    for (const code of [705, 706, 707, 708]) {
      server.faults.inject({ kind: 'error', code }, { action: 'AddPinhole' });
      await assert.rejects(firstValueFrom(nat.addMapping(request(18086))), isFault(code, server.firewallControlUrl), String(code));
    }
  });

  it('secure mode: a pinhole for another address is refused (606), as miniupnpd does; without it the given address is opened', async () => {
    const server = await start();
    const nat = await connect(server, { internalClient: '2001:db8::10' });
    await assert.rejects(firstValueFrom(nat.addMapping(request(18087))), isFault(606, server.firewallControlUrl));
    const open = await start({ pinholeSecureMode: false });
    const other = await connect(open, { internalClient: '2001:db8::10' });
    const grant = await firstValueFrom(other.addMapping(request(18087)));
    assert.equal(grant.externalIp, '2001:db8::10');
    assert.equal(open.pinholes.list()[0]!.internalClient, '2001:db8::10');
  });
});

describe('the IPv6 request fields', () => {
  it("a request's internalAddress is the address opened; another family than ipv6 is refused before anything is sent", async () => {
    const server = await start({ pinholeSecureMode: false });
    const nat = await connect(server);
    assert.equal(nat.family, 'ipv6');
    const one = { ...request(18092), internalAddress: '2001:db8::20' } as NatMappingRequest;
    const grant = await firstValueFrom(nat.addMapping(one));
    assert.equal(grant.externalIp, '2001:db8::20');
    assert.equal(sent(server, 'AddPinhole')[0]!.InternalClient, '2001:db8::20');
    // Renewing for the same address updates; for another address it opens that one.
    await firstValueFrom(nat.addMapping({ ...one, previous: grant } as NatMappingRequest));
    assert.equal(sent(server, 'UpdatePinhole').length, 1);
    await firstValueFrom(nat.addMapping({ ...request(18092), previous: grant }));
    assert.deepEqual(sent(server, 'AddPinhole').map((a) => a.InternalClient), ['2001:db8::20', '::1']);
    const before = server.requests.length;
    await assert.rejects(firstValueFrom(nat.addMapping({ ...request(18093), family: 'ipv4' } as NatMappingRequest)), (e: unknown) => e instanceof ProtocolError && e.reason === 'family');
    for (const bad of ['192.0.2.1', 'fe80::1%eth0', 'nonsense']) {
      await assert.rejects(firstValueFrom(nat.addMapping({ ...request(18093), internalAddress: bad } as NatMappingRequest)), (e: unknown) => e instanceof ProtocolError && e.reason === 'internal-address', bad);
    }
    assert.equal(server.requests.length, before);
  });
});

describe('pinholes through an IGD found over IPv4', () => {
  it('without an IPv6 address for InternalClient, discovery says so', async () => {
    const server = await start({ address: '127.0.0.1' });
    await assert.rejects(connect(server), (e: unknown) => e instanceof ProtocolError && e.reason === 'no-ipv6-address' && e.gateway === server.firewallControlUrl);
  });

  it('upnpPinholeVia(igd, { controlHost }): the description is not fetched again; SOAP goes to the router\'s IPv6 address, InternalClient is the address seen there', async () => {
    const v4 = await start({ address: '127.0.0.1' });
    // The same router on its IPv6 address: one HTTP port, two addresses (a separate table here).
    const v6 = await start({ address: '::1', httpPort: v4.httpPort });
    const igd = await firstValueFrom(upnp({ descriptionUrl: v4.descriptionUrl, requestTimeoutMs: ANSWERED_MS }));
    assert.equal(igd.internalClient, '127.0.0.1');
    const nat = await firstValueFrom(upnpPinholeVia(igd, { controlHost: '::1', requestTimeoutMs: ANSWERED_MS }));
    assert.equal(nat.endpoint, `http://[::1]:${v4.httpPort}/ctl/IP6FCtl`);
    assert.equal(nat.gateway, v4.descriptionUrl);
    assert.equal(nat.internalClient, '::1');
    await firstValueFrom(nat.addMapping(request(18088)));
    assert.equal(v6.pinholes.list().length, 1);
    assert.equal(v4.counters.description, 1, 'fetched once, by upnp()');
    assert.equal(v6.counters.description, undefined);
    assert.deepEqual(sent(v4, 'AddPinhole'), []);
    // A gateway that faults GetFirewallStatus: the address is still the one its answer came to.
    v6.faults.inject({ kind: 'error', code: 501 }, { action: 'GetFirewallStatus' });
    const again = await firstValueFrom(upnpPinholeVia(igd, { controlHost: '[::1]', requestTimeoutMs: ANSWERED_MS }));
    assert.deepEqual([again.firewallStatus, again.internalClient], [null, '::1']);
  });

  it('upnpPinholeVia with an explicit internalClient, over IPv4 (a gateway that does not insist on IPv6)', async () => {
    const server = await start({ address: '127.0.0.1', pinholeSecureMode: false });
    const igd = await firstValueFrom(upnp({ descriptionUrl: server.descriptionUrl, requestTimeoutMs: ANSWERED_MS }));
    const nat = await firstValueFrom(upnpPinholeVia(igd, { internalClient: '2001:db8::10', requestTimeoutMs: ANSWERED_MS }));
    assert.equal(nat.name, 'upnp-pinhole(127.0.0.1)');
    await firstValueFrom(nat.addMapping(request(18089)));
    assert.equal(server.pinholes.list()[0]!.internalClient, '2001:db8::10');
  });

  it('an IGDv1 has no pinholes; a bad controlHost is refused', async () => {
    const v1 = await start({ address: '127.0.0.1', igdVersion: 1 });
    const igd = await firstValueFrom(upnp({ descriptionUrl: v1.descriptionUrl, requestTimeoutMs: ANSWERED_MS }));
    await assert.rejects(firstValueFrom(upnpPinholeVia(igd, { internalClient: '2001:db8::10' })), (e: unknown) => e instanceof ProtocolError && e.reason === 'no-firewall-service');
    const v2 = await start({ address: '127.0.0.1' });
    const igd2 = await firstValueFrom(upnp({ descriptionUrl: v2.descriptionUrl, requestTimeoutMs: ANSWERED_MS }));
    await assert.rejects(firstValueFrom(upnpPinholeVia(igd2, { controlHost: 'a b/c' })), (e: unknown) => e instanceof ProtocolError && e.reason === 'bad-url');
  });
});

describe('IPv6 SSDP for pinholes', () => {
  it('searches the firewall service by unicast on ::1 and takes the first gateway that has it', async () => {
    const server = await start();
    const nat = await firstValueFrom(upnpPinhole({ ssdpTargets: [{ address: '::1', port: server.ssdpPort }], timeoutMs: 10_000, requestTimeoutMs: ANSWERED_MS }));
    assert.equal(nat.gateway, server.descriptionUrl);
    assert.equal(nat.internalClient, '::1');
    assert.ok((server.counters['M-SEARCH'] ?? 0) >= 1);
  });

  it('nothing answering: a timeout naming the targets; IPv4 targets are refused', async () => {
    const server = await start();
    server.faults.ssdpSilent = true;
    await assert.rejects(
      firstValueFrom(upnpPinhole({ ssdpTargets: [{ address: '::1', port: server.ssdpPort }], timeoutMs: 300 })),
      (e: unknown) => e instanceof GatewayTimeoutError && e.gateway === `ssdp([::1]:${server.ssdpPort})`,
    );
    await assert.rejects(firstValueFrom(upnpPinhole({ ssdpTargets: [{ address: '127.0.0.1', port: 1900 }] })), (e: unknown) => e instanceof ProtocolError && e.reason === 'not-ipv6');
  });

  /** A fake network: one SSDP answer from `from`, and the description and GetFirewallStatus answered from fixtures. */
  function fakeNetwork(from: string, location: string): { transport: ReturnType<typeof createTransport>; fetched: string[]; searches: UdpCollectOptions[] } {
    const fetched: string[] = [];
    const searches: UdpCollectOptions[] = [];
    const answer = `HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: ${WAN_IPV6_FIREWALL_CONTROL_1}\r\nUSN: uuid:x::${WAN_IPV6_FIREWALL_CONTROL_1}\r\nEXT:\r\nLOCATION: ${location}\r\n\r\n`;
    const transport = createTransport({
      udpCollect: (options: UdpCollectOptions): Observable<UdpReply> => {
        searches.push(options);
        return of<UdpReply>({ message: Buffer.from(answer, 'latin1'), remote: { address: from, port: 1900 }, local: { address: '::', port: 40000 } });
      },
      http: (req: HttpRequest): Observable<HttpResponse> => {
        fetched.push(req.url);
        const body = req.method === 'GET' ? fixture('igd2-miniupnpd.xml') : fixture('pinhole/get-firewall-status-response.xml');
        return of({ status: 200, headers: {}, body: Buffer.from(body), localAddress: 'fd77::10', remoteAddress: from });
      },
    });
    return { transport, fetched, searches };
  }

  it('a link-local responder may name its own ULA or global address (miniupnpd answers from fe80::); the M-SEARCH names [FF02::C]', async () => {
    const net = fakeNetwork('fe80::1%lo', 'http://[fd77::1]:5000/rootDesc.xml');
    const nat = await firstValueFrom(upnpPinhole({ transport: net.transport, ssdpTargets: [{ address: '::1', port: 1900 }] }));
    assert.deepEqual(net.fetched, ['http://[fd77::1]:5000/rootDesc.xml', 'http://[fd77::1]:5000/ctl/IP6FCtl']);
    assert.equal(nat.internalClient, 'fd77::10');
    const text = Buffer.from(net.searches[0]!.datagrams[0]!.message).toString('latin1');
    assert.match(text, /^HOST: \[FF02::C\]:1900\r$/m);
    assert.match(text, new RegExp(`^ST: ${WAN_IPV6_FIREWALL_CONTROL_1}\\r$`, 'm'));
  });

  it('a LOCATION naming another host is fetched from the responder (never from the host it names)', async () => {
    const net = fakeNetwork('2001:db8::1', 'http://[2001:db8::66]:5000/rootDesc.xml');
    const nat = await firstValueFrom(upnpPinhole({ transport: net.transport, ssdpTargets: [{ address: '::1', port: 1900 }] }));
    assert.deepEqual(net.fetched, ['http://[2001:db8::1]:5000/rootDesc.xml', 'http://[2001:db8::1]:5000/ctl/IP6FCtl']);
    assert.equal(nat.gateway, 'http://[2001:db8::1]:5000/rootDesc.xml');
  });

  it('a link-local responder naming a link-local or IPv4 host is ignored', async () => {
    for (const location of ['http://[fe80::2]:5000/rootDesc.xml', 'http://192.0.2.1:5000/rootDesc.xml']) {
      const net = fakeNetwork('fe80::1%lo', location);
      await assert.rejects(firstValueFrom(upnpPinhole({ transport: net.transport, ssdpTargets: [{ address: '::1', port: 1900 }] })), GatewayTimeoutError, location);
      assert.deepEqual(net.fetched, [], location);
    }
  });
});

describe('hostile or broken answers', () => {
  it('a flood of distinct LOCATIONs: at most MAX_PINHOLE_PROBES descriptions fetched, one at a time; the last error reported', async () => {
    const fetched: string[] = [];
    let inFlight = 0;
    let most = 0;
    const answers = Array.from({ length: 50 }, (_, i) =>
      ({ message: Buffer.from(`HTTP/1.1 200 OK\r\nST: ${WAN_IPV6_FIREWALL_CONTROL_1}\r\nLOCATION: http://[2001:db8::1]:5000/d${i}.xml\r\n\r\n`, 'latin1'), remote: { address: '2001:db8::1', port: 1900 }, local: { address: '::', port: 40000 } }) as UdpReply,
    );
    const transport = createTransport({
      udpCollect: () => from(answers),
      http: (req: HttpRequest) =>
        new Observable<HttpResponse>((subscriber) => {
          fetched.push(req.url);
          most = Math.max(most, ++inFlight);
          // An IGDv1: no firewall service.
          subscriber.next({ status: 200, headers: {}, body: Buffer.from(fixture('igd1.xml')), localAddress: '2001:db8::10', remoteAddress: '2001:db8::1' });
          inFlight--;
          subscriber.complete();
        }),
    });
    await assert.rejects(firstValueFrom(upnpPinhole({ transport, ssdpTargets: [{ address: '::1', port: 1900 }] })), (e: unknown) => e instanceof ProtocolError && e.reason === 'no-firewall-service');
    assert.equal(fetched.length, MAX_PINHOLE_PROBES);
    assert.equal(most, 1);
  });

  it('an AddPinhole answer without a UniqueID, broken XML, an oversized body: ProtocolErrors', async () => {
    const server = await start();
    const nat = await connect(server, { maxBodyBytes: 4096 });
    server.faults.inject({ kind: 'malformed' }, { action: 'AddPinhole' });
    await assert.rejects(firstValueFrom(nat.addMapping(request(18095))), ProtocolError);
    server.faults.inject({ kind: 'oversize', bytes: 10_000 }, { action: 'AddPinhole' });
    await assert.rejects(firstValueFrom(nat.addMapping(request(18095))), (e: unknown) => e instanceof ProtocolError && e.reason === 'too-large');
    const noId = createTransport({
      http: (req: HttpRequest) =>
        of<HttpResponse>({
          status: 200,
          headers: {},
          body: Buffer.from(
            req.method === 'GET'
              ? fixture('igd2-miniupnpd.xml')
              : String(req.body).includes('u:AddPinhole')
                ? // an AddPinhole answer with nothing in it
                  fixture('pinhole/update-pinhole-response.xml').replace(/UpdatePinhole/g, 'AddPinhole')
                : fixture('pinhole/get-firewall-status-response.xml'),
          ),
          localAddress: 'fd77::10',
          remoteAddress: 'fd77::1',
        }),
    });
    const fake = await firstValueFrom(upnpPinhole({ transport: noId, descriptionUrl: 'http://[fd77::1]:5000/rootDesc.xml' }));
    await assert.rejects(firstValueFrom(fake.addMapping(request(18096))), (e: unknown) => e instanceof ProtocolError && e.reason === 'unique-id' && e.gateway === 'http://[fd77::1]:5000/ctl/IP6FCtl');
  });
});

describe('mapPort over a pinhole NAT, end to end against the simulator on ::1', () => {
  it('mapped → renewed with UpdatePinhole → unsubscribe → DeletePinhole, the table empty', async () => {
    const server = await start({ pinholeSecureMode: false });
    const nat = await connect(server, { internalClient: '2001:db8::10' });
    const states: MappingState[] = [];
    const errors: unknown[] = [];
    const subscription = mapPort(nat, { protocol: 'tcp', internalPort: 18090, lifetimeSeconds: 3 }).subscribe({ next: (s) => states.push(s), error: (e: unknown) => errors.push(e) });
    try {
      await waitFor(() => states.some((s) => s.status === 'mapped'), 20_000, 'a mapped state');
      const mapped = states.find((s) => s.status === 'mapped')!;
      assert.equal(mapped.externalIp, '2001:db8::10');
      assert.equal(mapped.externalPort, 18090);
      assert.equal(mapped.lifetimeSeconds, 3);
      assert.equal(mapped.backend, 'upnp-pinhole([::1])');
      assert.equal(mapped.doubleNat, false);
      const id = server.pinholes.list()[0]!.uniqueId;
      await waitFor(() => states.some((s) => s.status === 'mapped' && s.renewals >= 1), 20_000, 'a renewal');
      assert.deepEqual(sent(server, 'UpdatePinhole')[0], { UniqueID: String(id), NewLeaseTime: '3' });
      assert.equal(sent(server, 'AddPinhole').length, 1, 'renewed, not re-added');
    } finally {
      subscription.unsubscribe();
    }
    await waitFor(() => server.pinholes.list().length === 0, 20_000, 'the pinhole deleted');
    assert.equal(sent(server, 'DeletePinhole').length, 1);
    assert.deepEqual(errors, []);
  });

  it('a refused pinhole shows on the state: the GatewayError with its code and the control URL', async () => {
    const server = await start({ pinholeSecureMode: false });
    const nat = await connect(server, { internalClient: '2001:db8::10' });
    server.faults.inboundPinholeNotAllowed = true;
    const states: MappingState[] = [];
    const subscription = mapPort(nat, { protocol: 'udp', internalPort: 18091, lifetimeSeconds: 60 }).subscribe((s) => states.push(s));
    try {
      await waitFor(() => states.some((s) => s.error !== null), 20_000, 'an error on the state');
      const state = states.find((s) => s.error !== null)!;
      assert.equal(state.status, 'unmapped');
      assert.ok(isFault(703, server.firewallControlUrl)(state.error), String(state.error));
      assert.equal((state.error as GatewayError).resultName, 'InboundPinholeNotAllowed');
    } finally {
      subscription.unsubscribe();
    }
    assert.deepEqual(server.pinholes.list(), []);
  });
});
