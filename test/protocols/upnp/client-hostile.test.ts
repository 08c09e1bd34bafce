/**
 * Hostile input over real sockets on loopback: answers a LAN attacker (or a broken router) could
 * send. Each must end in a clear typed error or a skipped candidate, within the deadlines, with
 * the process up and no request made to any host but the one that answered.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createSocket, type Socket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { firstValueFrom } from 'rxjs';
import { GatewayTimeoutError, ProtocolError, RxnatError } from '../../../src/errors.js';
import { upnp } from '../../../src/protocols/upnp/client.js';
import { fixture } from './fixtures.js';

/** An HTTP server on a loopback address that records every request and answers with `handler`. */
async function httpOn(address: string, handler: (res: ServerResponse, path: string) => void): Promise<{ server: Server; port: number; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    handler(res, req.url ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  return { server, port: (server.address() as AddressInfo).port, hits };
}

const closeHttp = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

/** A fake SSDP responder on 127.0.0.1 answering every M-SEARCH with `answer(searchTarget)`. */
async function ssdpResponder(answer: (st: string) => string | undefined): Promise<{ socket: Socket; port: number; searches: number }> {
  const socket = createSocket('udp4');
  const state = { socket, port: 0, searches: 0 };
  socket.on('message', (message, rinfo) => {
    state.searches++;
    const st = /^ST:\s*(.+)$/im.exec(message.toString('latin1'))?.[1]?.trim() ?? '';
    const text = answer(st);
    if (text !== undefined) socket.send(Buffer.from(text, 'latin1'), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  state.port = socket.address().port;
  return state;
}

const ssdpAnswer = (st: string, location: string | undefined): string =>
  ['HTTP/1.1 200 OK', 'CACHE-CONTROL: max-age=120', `ST: ${st}`, 'USN: uuid:hostile::' + st, 'EXT:', ...(location === undefined ? [] : [`LOCATION: ${location}`]), '', ''].join('\r\n');

/** A decoy on another loopback address: it must never be contacted. */
let decoy: Awaited<ReturnType<typeof httpOn>>;
before(async () => {
  decoy = await httpOn('127.0.0.2', (res) => res.end(fixture('igd2-miniupnpd.xml')));
});
after(async () => {
  await closeHttp(decoy.server);
});

describe('hostile device descriptions over HTTP', () => {
  it('a slow-dripping description ends at the request deadline with GatewayTimeoutError', async () => {
    const drip = await httpOn('127.0.0.1', (res) => {
      res.writeHead(200, { 'content-type': 'text/xml' });
      const timer = setInterval(() => res.write('<a>'), 20);
      res.on('close', () => clearInterval(timer));
    });
    try {
      await assert.rejects(
        firstValueFrom(upnp({ descriptionUrl: `http://127.0.0.1:${drip.port}/rootDesc.xml`, requestTimeoutMs: 300 })),
        (e: unknown) => e instanceof GatewayTimeoutError,
      );
    } finally {
      await closeHttp(drip.server);
    }
  });

  it('a never-ending description is cut at the body limit with ProtocolError', async () => {
    const endless = await httpOn('127.0.0.1', (res) => {
      res.writeHead(200, { 'content-type': 'text/xml' });
      const chunk = '<x>'.repeat(10_000);
      const pump = (): void => {
        while (res.write(chunk)) {
          /* keep writing until the socket pushes back */
        }
      };
      res.on('drain', pump);
      pump();
    });
    try {
      await assert.rejects(
        firstValueFrom(upnp({ descriptionUrl: `http://127.0.0.1:${endless.port}/rootDesc.xml`, maxBodyBytes: 64 * 1024, requestTimeoutMs: 5000 })),
        (e: unknown) => e instanceof ProtocolError,
      );
    } finally {
      await closeHttp(endless.server);
    }
  });

  it('deep nesting, DOCTYPE and billion laughs are refused as ProtocolError', async () => {
    const bodies: Record<string, string> = {
      '/deep.xml': '<root>' + '<a>'.repeat(5000) + '</a>'.repeat(5000) + '</root>',
      '/doctype.xml': '<?xml version="1.0"?><!DOCTYPE root SYSTEM "http://127.0.0.2/evil.dtd"><root/>',
      '/laughs.xml': fixture('billion-laughs.xml'),
    };
    const hostile = await httpOn('127.0.0.1', (res, path) => res.end(bodies[path] ?? ''));
    try {
      for (const path of Object.keys(bodies)) {
        await assert.rejects(firstValueFrom(upnp({ descriptionUrl: `http://127.0.0.1:${hostile.port}${path}` })), (e: unknown) => e instanceof ProtocolError, path);
      }
    } finally {
      await closeHttp(hostile.server);
    }
    assert.deepEqual(decoy.hits, [], 'the DTD host was never contacted');
  });
});

describe('hostile SSDP answers', () => {
  const cases: Array<[string, (httpPort: number) => string | undefined]> = [
    ['no LOCATION', () => undefined],
    ['a non-http LOCATION', (port) => `https://127.0.0.1:${port}/rootDesc.xml`],
    ['a file: LOCATION', () => 'file:///etc/passwd'],
    ['a LOCATION that is no URL', () => 'not a url at all'],
    ['a LOCATION on another host (public address)', (port) => `http://203.0.113.66:${port}/rootDesc.xml`],
    ['a LOCATION on a link-local address', (port) => `http://169.254.1.1:${port}/rootDesc.xml`],
    ['a LOCATION on the decoy', () => `http://127.0.0.2:${decoy.port}/rootDesc.xml`],
  ];
  for (const [name, location] of cases) {
    it(`${name}: never fetched as given; discovery ends in a typed error or uses the responder only`, async () => {
      // The responder's own HTTP server answers nothing useful: the point is who gets contacted.
      const own = await httpOn('127.0.0.1', (res) => res.end('<not-a-description/>'));
      const responder = await ssdpResponder((st) => ssdpAnswer(st, location(own.port)));
      const before = decoy.hits.length;
      try {
        await assert.rejects(
          firstValueFrom(upnp({ ssdpTargets: [{ address: '127.0.0.1', port: responder.port }], timeoutMs: 400, localAddress: '127.0.0.1' })),
          (e: unknown) => e instanceof RxnatError,
        );
        assert.ok(responder.searches > 0, 'the responder was asked');
        assert.equal(decoy.hits.length, before, 'no request reached a host other than the responder');
      } finally {
        responder.socket.close();
        await closeHttp(own.server);
      }
    });
  }
});
