import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { firstValueFrom } from 'rxjs';
import { GatewayTimeoutError, GatewayUnreachableError, ProtocolError } from '../../src/errors.js';
import { http } from '../../src/transport/http.js';

/**
 * The deadline of a loopback request that must be answered: far beyond any round trip however
 * loaded the machine, since those tests are about what comes back, not when.
 */
const ANSWERED_MS = 10_000;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => { s.closeAllConnections(); s.close(resolve); })));
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void, host = '127.0.0.1'): Promise<{ url: string; server: Server; sockets: Socket[] }> {
  const server = createServer(handler);
  const sockets: Socket[] = [];
  server.on('connection', (s: Socket) => sockets.push(s));
  servers.push(server);
  server.listen(0, host);
  await once(server, 'listening');
  return { url: `http://${host}:${(server.address() as AddressInfo).port}`, server, sockets };
}

describe('http', () => {
  it('GETs a body and reports the local address of the connection', async () => {
    let seenRemote = '';
    const { url } = await serve((req, res) => {
      seenRemote = req.socket.remoteAddress ?? '';
      res.end('hello');
    });
    const res = await firstValueFrom(http({ method: 'GET', url: `${url}/rootDesc.xml`, timeoutMs: ANSWERED_MS }));
    assert.equal(res.status, 200);
    assert.equal(res.body.toString(), 'hello');
    assert.equal(res.localAddress, seenRemote);
    assert.equal(res.remoteAddress, '127.0.0.1');
  });

  it('binds localAddress (the address the gateway sees)', async () => {
    let seenRemote = '';
    const { url } = await serve((req, res) => {
      seenRemote = req.socket.remoteAddress ?? '';
      res.end();
    });
    const res = await firstValueFrom(http({ method: 'GET', url, localAddress: '127.0.0.2', timeoutMs: ANSWERED_MS }));
    assert.equal(seenRemote, '127.0.0.2');
    assert.equal(res.localAddress, '127.0.0.2');
  });

  it('POSTs the body with its headers and Content-Length, without keep-alive', async () => {
    let got: { method?: string; headers?: IncomingMessage['headers']; body?: string } = {};
    const { url } = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        got = { method: req.method, headers: req.headers, body: Buffer.concat(chunks).toString() };
        res.statusCode = 500;
        res.end('fault');
      });
    });
    const res = await firstValueFrom(http({ method: 'POST', url: `${url}/ctl`, headers: { SOAPAction: '"x#y"' }, body: 'é<a/>', timeoutMs: ANSWERED_MS }));
    assert.equal(res.status, 500, 'non-2xx statuses are returned, not thrown');
    assert.equal(got.method, 'POST');
    assert.equal(got.body, 'é<a/>');
    assert.equal(got.headers?.['soapaction'], '"x#y"');
    assert.equal(got.headers?.['content-length'], String(Buffer.byteLength('é<a/>')));
    assert.equal(got.headers?.['connection'], 'close');
  });

  it('does not send anything before it is subscribed', async () => {
    let hits = 0;
    const { url } = await serve((_req, res) => {
      hits += 1;
      res.end();
    });
    const request$ = http({ method: 'GET', url });
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(hits, 0);
    await firstValueFrom(request$);
    assert.equal(hits, 1);
  });

  it('does not follow redirects', async () => {
    let otherHits = 0;
    const other = await serve((_req, res) => {
      otherHits += 1;
      res.end();
    });
    const { url } = await serve((_req, res) => {
      res.writeHead(302, { Location: `${other.url}/x` });
      res.end();
    });
    const res = await firstValueFrom(http({ method: 'GET', url, timeoutMs: ANSWERED_MS }));
    assert.equal(res.status, 302);
    assert.equal(otherHits, 0);
  });

  it('refuses non-http URLs without connecting', async () => {
    for (const url of ['https://127.0.0.1/', 'file:///etc/passwd', 'not a url']) {
      await assert.rejects(firstValueFrom(http({ method: 'GET', url })), (e: unknown) => e instanceof ProtocolError && e.reason === 'scheme');
    }
  });

  it('times out a silent server with GatewayTimeoutError', async () => {
    const { url } = await serve(() => undefined);
    const started = Date.now();
    await assert.rejects(firstValueFrom(http({ method: 'GET', url, timeoutMs: 150 })), (e: unknown) => e instanceof GatewayTimeoutError && e.timeoutMs === 150);
    // The error names the 150 ms deadline; the bound only rules out some other, far longer timer
    // (the server's 60 s headersTimeout) and holds on any machine that runs at all.
    assert.ok(Date.now() - started < 30_000, `ended by the 150 ms timeout, took ${Date.now() - started} ms`);
  });

  it('times out a body that trickles past the deadline', async () => {
    const { url } = await serve((_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('x'), 20);
      res.on('close', () => clearInterval(timer));
    });
    await assert.rejects(firstValueFrom(http({ method: 'GET', url, timeoutMs: 150 })), GatewayTimeoutError);
  });

  it('maps a refused connection to GatewayUnreachableError', async () => {
    const { url, server } = await serve(() => undefined);
    await new Promise((resolve) => server.close(resolve));
    await assert.rejects(firstValueFrom(http({ method: 'GET', url, timeoutMs: ANSWERED_MS })), (e: unknown) => e instanceof GatewayUnreachableError && e.protocol === 'upnp');
  });

  it('maps a reset in the middle of the body to GatewayUnreachableError', async () => {
    const { url } = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Length': '100' });
      res.write('partial', () => res.socket?.destroy());
    });
    await assert.rejects(firstValueFrom(http({ method: 'GET', url, timeoutMs: ANSWERED_MS })), GatewayUnreachableError);
  });

  it('enforces the body size limit, declared or streamed', async () => {
    const declared = await serve((_req, res) => res.end('x'.repeat(2000)));
    await assert.rejects(firstValueFrom(http({ method: 'GET', url: declared.url, maxBodyBytes: 1000 })), (e: unknown) => e instanceof ProtocolError && e.reason === 'too-large');
    const chunked = await serve((_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 20; i++) res.write('y'.repeat(100));
      res.end();
    });
    await assert.rejects(firstValueFrom(http({ method: 'GET', url: chunked.url, maxBodyBytes: 1000 })), (e: unknown) => e instanceof ProtocolError && e.reason === 'too-large');
  });

  it('aborts the request on unsubscribe: the server sees the socket close', async () => {
    const { url, sockets } = await serve(() => undefined);
    const subscription = http({ method: 'GET', url, timeoutMs: 5000 }).subscribe({ error: () => assert.fail('no error after unsubscribe') });
    while (sockets.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    const socket = sockets[0] as Socket;
    const closed = once(socket, 'close');
    subscription.unsubscribe();
    await closed;
  });
});
