import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { lastValueFrom, toArray } from 'rxjs';
import { ssdpSearch } from '../../../src/protocols/upnp/ssdp-search.js';

async function responder(answer: (text: string) => string | undefined): Promise<{ socket: Socket; port: number; received: string[] }> {
  const socket = createSocket('udp4');
  const received: string[] = [];
  socket.on('message', (msg, rinfo) => {
    const text = msg.toString('latin1');
    received.push(text);
    const reply = answer(text);
    // Answer from a second socket: a source port other than the one searched (and not 1900).
    if (reply !== undefined) {
      const other = createSocket('udp4');
      other.bind(0, '127.0.0.1', () => other.send(reply, rinfo.port, rinfo.address, () => other.close()));
    }
  });
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { socket, port: socket.address().port, received };
}

const ANSWER = 'HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nLOCATION: http://127.0.0.1:1/d.xml\r\nUSN: uuid:x::y\r\n\r\n';

describe('ssdpSearch', () => {
  it('sends one M-SEARCH per ST, repeats inside the window, and collects answers from any source port', async () => {
    let first = true;
    const { socket, port, received } = await responder(() => {
      if (!first) return undefined;
      first = false;
      return ANSWER;
    });
    const sts = ['urn:schemas-upnp-org:device:InternetGatewayDevice:2', 'urn:schemas-upnp-org:device:InternetGatewayDevice:1'];
    const started = Date.now();
    const answers = await lastValueFrom(
      ssdpSearch({ targets: [{ address: '127.0.0.1', port }], searchTargets: sts, windowMs: 300, repeatIntervalMs: 100 }).pipe(toArray()),
    );
    const elapsed = Date.now() - started;
    socket.close();
    assert.ok(elapsed >= 280 && elapsed < 800, `completes at the end of the window (${elapsed} ms)`);
    assert.equal(answers.length, 1);
    assert.equal(answers[0]?.message.location, 'http://127.0.0.1:1/d.xml');
    assert.equal(answers[0]?.from.address, '127.0.0.1');
    assert.notEqual(answers[0]?.from.port, port);
    assert.ok(received.length >= 6, `three rounds of two searches (${received.length})`);
    assert.match(received[0] ?? '', /^M-SEARCH \* HTTP\/1\.1\r\n/);
    assert.ok(received[0]?.includes(`ST: ${sts[0]}\r\n`));
    assert.ok(received[1]?.includes(`ST: ${sts[1]}\r\n`));
  });

  it('drops malformed answers', async () => {
    const { socket, port } = await responder(() => 'garbage');
    const answers = await lastValueFrom(
      ssdpSearch({ targets: [{ address: '127.0.0.1', port }], searchTargets: ['ssdp:all'], windowMs: 150 }).pipe(toArray()),
    );
    socket.close();
    assert.equal(answers.length, 0);
  });

  it('closes its socket on unsubscribe', async () => {
    const { socket, port, received } = await responder(() => undefined);
    const subscription = ssdpSearch({ targets: [{ address: '127.0.0.1', port }], searchTargets: ['ssdp:all'], windowMs: 5000, repeatIntervalMs: 100 }).subscribe();
    while (received.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    subscription.unsubscribe();
    const count = received.length;
    await new Promise((resolve) => setTimeout(resolve, 250));
    socket.close();
    assert.equal(received.length, count, 'no more rounds after unsubscribe');
  });
});
