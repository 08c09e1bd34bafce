import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect } from 'node:net';
import { request } from 'node:http';
import { MappingTable } from '../../src/testing/table.js';
import { startUpnpServer, type UpnpServer } from '../../src/testing/upnp-server.js';
import { decodeSsdpResponse, encodeMSearch } from '../../src/protocols/upnp/ssdp.js';
import { parseDescription, chooseWanConnectionService } from '../../src/protocols/upnp/description.js';
import {
  decodeSoapResponse,
  encodeAddAnyPortMapping,
  encodeAddPortMapping,
  encodeDeletePortMapping,
  encodeGetGenericPortMappingEntry,
  encodeGetSpecificPortMappingEntry,
  encodeGetStatusInfo,
  type SoapRequest,
} from '../../src/protocols/upnp/soap.js';
import { ProtocolError } from '../../src/errors.js';

const started: UpnpServer[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.close()));
});
/** The device UUID every server here gets: `uuid:<UUID>` is the sentinel search target of {@link search}. */
const UUID = '6a3f0c1e-2b4d-4e8f-9a7c-5d1e3f2a0b9c';
async function start(options: Parameters<typeof startUpnpServer>[1] = {}, table = new MappingTable()): Promise<UpnpServer> {
  const server = await startUpnpServer(table, { uuid: UUID, ...options });
  started.push(server);
  return server;
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    }).on('error', reject).end();
  });
}

function post(url: string, soap: SoapRequest): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { method: 'POST', headers: soap.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    }).on('error', reject).end(soap.body);
  });
}

/**
 * The answers to an M-SEARCH for `st`. No fixed wait: a second search for the server's own
 * `uuid:` (always answered) follows on the same socket, and the answers to `st` are those that
 * arrived before the sentinel's. The server answers each search as it reads it, in order, so a
 * search it would answer has been answered by then, however slow the machine (10 s guard).
 */
async function search(port: number, st: string): Promise<string[]> {
  const socket = createSocket('udp4');
  const answers: string[] = [];
  try {
    const sentinel = new Promise<void>((resolve, reject) => {
      const guard = setTimeout(() => reject(new Error(`no answer to the sentinel search within 10 s (port ${port})`)), 10_000);
      socket.on('message', (m) => {
        const text = m.toString('latin1');
        if (new RegExp(`^ST: uuid:${UUID}\\r$`, 'm').test(text)) {
          clearTimeout(guard);
          resolve();
        } else {
          answers.push(text);
        }
      });
    });
    socket.bind(0, '127.0.0.1');
    await once(socket, 'listening');
    const send = (target: string): Promise<void> =>
      new Promise((resolve, reject) => socket.send(encodeMSearch({ searchTarget: target }), port, '127.0.0.1', (error) => (error ? reject(error) : resolve())));
    await send(st);
    await send(`uuid:${UUID}`);
    await sentinel;
    return answers;
  } finally {
    socket.close();
  }
}

/** The fault code of an answer, 'ok' for a response, or the ProtocolError reason. */
function outcome(body: string, action: string): number | string {
  const decoded = decodeSoapResponse(body, action);
  return decoded instanceof ProtocolError ? decoded.reason : decoded.kind === 'fault' ? decoded.errorCode : 'ok';
}

const base = { protocol: 'tcp' as const, internalClient: '127.0.0.1', description: 'test', leaseDurationSeconds: 60 };

describe('startUpnpServer', () => {
  it('serves an IGDv2 description (WANIPConnection:2 at /ctl/IPConn) and answers M-SEARCH with its LOCATION', async () => {
    const server = await start();
    const { status, body } = await get(server.descriptionUrl);
    assert.equal(status, 200);
    const description = parseDescription(body, server.descriptionUrl);
    assert.ok(!(description instanceof ProtocolError));
    assert.equal(description.igdVersion, 2);
    const service = chooseWanConnectionService(description);
    assert.ok(!(service instanceof ProtocolError));
    assert.equal(service.controlUrl, server.controlUrl);
    assert.equal(new URL(service.controlUrl).pathname, '/ctl/IPConn');
    for (const st of ['urn:schemas-upnp-org:device:InternetGatewayDevice:2', 'urn:schemas-upnp-org:device:InternetGatewayDevice:1', 'urn:schemas-upnp-org:service:WANIPConnection:2']) {
      const [answer] = await search(server.ssdpPort, st);
      const decoded = decodeSsdpResponse(answer ?? '');
      assert.ok(!(decoded instanceof ProtocolError), st);
      assert.equal(decoded.st, st);
      assert.equal(decoded.location, server.descriptionUrl);
    }
    assert.deepEqual(await search(server.ssdpPort, 'urn:schemas-upnp-org:device:MediaServer:1'), []);
    assert.equal(server.counters['M-SEARCH'], 3 + 4, 'the three answered searches and four sentinels; the MediaServer search is not answered');
  });

  it('serves IGDv1 (with URLBase) and WANPPPConnection descriptions', async () => {
    const v1 = await start({ igdVersion: 1 });
    const body = (await get(v1.descriptionUrl)).body;
    assert.match(body, /InternetGatewayDevice:1/);
    assert.match(body, new RegExp(`<URLBase>http://127.0.0.1:${v1.httpPort}/</URLBase>`));
    assert.equal(v1.serviceType, 'urn:schemas-upnp-org:service:WANIPConnection:1');
    assert.deepEqual(await search(v1.ssdpPort, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2'), []);
    const ppp = await start({ connection: 'ppp' });
    const description = parseDescription((await get(ppp.descriptionUrl)).body, ppp.descriptionUrl);
    assert.ok(!(description instanceof ProtocolError));
    assert.equal((chooseWanConnectionService(description) as { kind: string }).kind, 'ppp');
  });

  it('implements the actions against the shared table', async () => {
    const table = new MappingTable();
    const server = await start({}, table);
    const st = server.serviceType;
    assert.equal((await post(server.controlUrl, encodeAddPortMapping(st, { ...base, externalPort: 5000, internalPort: 5000 }))).status, 200);
    assert.equal(table.get('tcp', 5000)?.via, 'upnp');
    assert.equal(table.get('tcp', 5000)?.lifetimeSeconds, 60);
    // Another client holds 6000: AddPortMapping conflicts (718), AddAnyPortMapping picks a free port.
    table.add({ protocol: 'tcp', internalClient: '192.168.1.50', internalPort: 6000, externalPort: 6000, lifetimeSeconds: 0, via: 'pmp' });
    assert.equal(outcome((await post(server.controlUrl, encodeAddPortMapping(st, { ...base, externalPort: 6000, internalPort: 6001 }))).body, 'AddPortMapping'), 718);
    const any = decodeSoapResponse((await post(server.controlUrl, encodeAddAnyPortMapping(st, { ...base, externalPort: 6000, internalPort: 6001 }))).body, 'AddAnyPortMapping');
    assert.ok(!(any instanceof ProtocolError) && any.kind === 'response');
    const reserved = Number(any.values.get('NewReservedPort'));
    assert.notEqual(reserved, 6000);
    assert.equal(table.get('tcp', reserved)?.internalPort, 6001);
    // Lease 0 on IGDv2 becomes 604800 (as miniupnpd).
    await post(server.controlUrl, encodeAddPortMapping(st, { ...base, externalPort: 7000, internalPort: 7000, leaseDurationSeconds: 0 }));
    assert.equal(table.get('tcp', 7000)?.lifetimeSeconds, 604800);
    // Specific, generic (713 at the end), delete (714 when gone), status.
    const specific = decodeSoapResponse((await post(server.controlUrl, encodeGetSpecificPortMappingEntry(st, { externalPort: 5000, protocol: 'tcp' }))).body, 'GetSpecificPortMappingEntry');
    assert.ok(!(specific instanceof ProtocolError) && specific.kind === 'response');
    assert.equal(specific.values.get('NewInternalPort'), '5000');
    assert.equal(outcome((await post(server.controlUrl, encodeGetGenericPortMappingEntry(st, table.list().length))).body, 'GetGenericPortMappingEntry'), 713);
    assert.equal((await post(server.controlUrl, encodeDeletePortMapping(st, { externalPort: 5000, protocol: 'tcp' }))).status, 200);
    assert.equal(table.get('tcp', 5000), undefined);
    assert.equal(outcome((await post(server.controlUrl, encodeDeletePortMapping(st, { externalPort: 5000, protocol: 'tcp' }))).body, 'DeletePortMapping'), 714);
    // Secure mode: another client's mapping cannot be deleted; privileged ports are refused.
    assert.equal(outcome((await post(server.controlUrl, encodeDeletePortMapping(st, { externalPort: 6000, protocol: 'tcp' }))).body, 'DeletePortMapping'), 606);
    assert.equal(outcome((await post(server.controlUrl, encodeAddPortMapping(st, { ...base, externalPort: 80, internalPort: 80 }))).body, 'AddPortMapping'), 606);
    assert.equal(server.counters.AddPortMapping, 4);
    assert.equal(server.requests.at(-1)?.args.NewInternalPort, '80');
    server.connectionStatus = 'Disconnected';
    const status = decodeSoapResponse((await post(server.controlUrl, encodeGetStatusInfo(st))).body, 'GetStatusInfo');
    assert.ok(!(status instanceof ProtocolError) && status.kind === 'response');
    assert.equal(status.values.get('NewConnectionStatus'), 'Disconnected');
  });

  it('applies injected faults to the next N calls of an action only', async () => {
    const server = await start();
    const st = server.serviceType;
    server.faults.inject({ kind: 'error', code: 501 }, { action: 'GetStatusInfo', times: 2 });
    server.faults.inject({ kind: 'empty' }, { action: 'AddPortMapping' });
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push(outcome((await post(server.controlUrl, encodeGetStatusInfo(st))).body, 'GetStatusInfo'));
    assert.deepEqual(codes, [501, 501, 'ok']);
    assert.equal((await post(server.controlUrl, encodeAddPortMapping(st, { ...base, externalPort: 5000, internalPort: 5000 }))).body, '');
    server.faults.permanentLeasesOnly = true;
    assert.equal(outcome((await post(server.controlUrl, encodeAddPortMapping(st, { ...base, externalPort: 5000, internalPort: 5000 }))).body, 'AddPortMapping'), 725);
    server.faults.clear();
    server.faults.conflictingPorts.add(5001);
    assert.equal(outcome((await post(server.controlUrl, encodeAddPortMapping(st, { ...base, externalPort: 5001, internalPort: 5001 }))).body, 'AddPortMapping'), 718);
    server.faults.inject({ kind: 'malformed' }, { action: 'description' });
    assert.ok(parseDescription((await get(server.descriptionUrl)).body, server.descriptionUrl) instanceof ProtocolError);
  });

  it('moves its control port on reboot: the old port refuses, mappings are gone', async () => {
    const table = new MappingTable();
    const server = await start({}, table);
    table.add({ protocol: 'udp', internalClient: '127.0.0.1', internalPort: 9000, externalPort: 9000, lifetimeSeconds: 60, via: 'upnp' });
    const oldPort = server.httpPort;
    await server.reboot({ moveControlPort: true });
    assert.notEqual(server.httpPort, oldPort);
    assert.equal(table.list().length, 0);
    assert.equal((await get(server.descriptionUrl)).status, 200);
    await assert.rejects(get(`http://127.0.0.1:${oldPort}/rootDesc.xml`), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED');
    const [answer] = await search(server.ssdpPort, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2');
    assert.match(answer ?? '', new RegExp(`LOCATION: http://127.0.0.1:${server.httpPort}/rootDesc.xml`));
  });

  it('never crashes on garbage (UDP, HTTP, SOAP)', async () => {
    const server = await start();
    const udp = createSocket('udp4');
    for (const garbage of ['', 'M-SEARCH', 'M-SEARCH * HTTP/1.1\r\nMAN: "ssdp:discover"\r\n\r\n', '\u0000\u00ff'.repeat(5000)]) {
      await new Promise<void>((resolve) => udp.send(Buffer.from(garbage, 'latin1'), server.ssdpPort, '127.0.0.1', () => resolve()));
    }
    udp.close();
    assert.equal((await search(server.ssdpPort, 'urn:schemas-upnp-org:device:InternetGatewayDevice:2')).length, 1, 'SSDP still answers after the garbage');
    const raw = connect(server.httpPort, '127.0.0.1');
    raw.on('error', () => undefined);
    raw.end('GARBAGE / HTTP/9\r\n\r\n');
    await once(raw, 'close');
    for (const body of ['', '<x', '<!DOCTYPE a><a/>', '<s:Envelope><s:Body></s:Body></s:Envelope>', 'x'.repeat(70_000)]) {
      const res = await post(server.controlUrl, { action: 'X', serviceType: '', headers: { SOAPAction: '"#X"' }, body });
      assert.ok(res.status >= 400, `status ${res.status}`);
    }
    assert.equal((await get(`http://127.0.0.1:${server.httpPort}/nope`)).status, 404);
    assert.equal((await get(server.descriptionUrl)).status, 200, 'still serving');
  });
});
