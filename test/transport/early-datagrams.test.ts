/** Datagrams sent before their exchange's code loads, and the exchange that takes the socket over (loopback only). */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, beforeEach, describe, it } from 'node:test';
import { firstValueFrom, take, toArray } from 'rxjs';
import { adoptingOpen, sendEarly } from '../../src/transport/early-datagrams.js';
import { createUdpCollect, createUdpExchange, openNodeDatagramSocket, type DatagramSocket, type OpenDatagramSocket } from '../../src/transport/udp.js';
import { waitFor } from '../support/net.js';

const HOST = '127.0.0.1';
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (data: Uint8Array): string => new TextDecoder().decode(data);

describe('early datagrams, taken over by the first collection (loopback)', () => {
  let responder: Socket;
  let port = 0;
  const heard: string[] = [];
  before(async () => {
    responder = createSocket('udp4');
    // Answers every datagram with "re:<it>".
    responder.on('message', (message, remote) => {
      heard.push(message.toString());
      responder.send(`re:${message.toString()}`, remote.port, remote.address);
    });
    await new Promise<void>((resolve) => responder.bind(0, HOST, resolve));
    port = responder.address().port;
  });
  after(() => responder.close());
  beforeEach(() => void heard.splice(0));

  it('the early datagram is the collection\'s first send (not sent twice), and the answer that came before it is replayed', async () => {
    const early = sendEarly([{ message: bytes('lead'), to: { address: HOST, port } }], { localAddress: HOST });
    await new Promise<void>((resolve) => early.whenSent(resolve));
    await waitFor(() => heard.length === 1);
    await new Promise((resolve) => setTimeout(resolve, 30)); // the answer is in the early socket by now
    const collect = createUdpCollect(adoptingOpen(early, openNodeDatagramSocket));
    const answers = await firstValueFrom(
      // Listening 300 ms: a second "lead" would be answered within it.
      collect({ protocol: 'upnp', datagrams: [{ message: bytes('lead'), to: { address: HOST, port } }], windowMs: 300, localAddress: HOST }).pipe(toArray()),
    );
    assert.deepEqual(answers.map((a) => text(a.message)), ['re:lead']);
    assert.deepEqual(heard, ['lead'], 'sent once, before the collection existed');
  });

  it('a collection that sends something else sends it (and still hears the early answer)', async () => {
    const early = sendEarly([{ message: bytes('lead'), to: { address: HOST, port } }], { localAddress: HOST });
    await new Promise<void>((resolve) => early.whenSent(resolve));
    const collect = createUdpCollect(adoptingOpen(early, openNodeDatagramSocket));
    const answers = await firstValueFrom(
      collect({ protocol: 'upnp', datagrams: [{ message: bytes('other'), to: { address: HOST, port } }], windowMs: 5000, localAddress: HOST }).pipe(take(2), toArray()),
    );
    assert.deepEqual(answers.map((a) => text(a.message)).sort(), ['re:lead', 're:other']);
    assert.deepEqual(heard, ['lead', 'other']);
  });

  it('a collection bound elsewhere gets a socket of its own; later sockets are never the early one', async () => {
    const early = sendEarly([{ message: bytes('lead'), to: { address: HOST, port } }], { localAddress: HOST });
    await new Promise<void>((resolve) => early.whenSent(resolve));
    const opened: string[] = [];
    const open: OpenDatagramSocket = (type, options) => {
      opened.push(type);
      return openNodeDatagramSocket(type, options);
    };
    const collect = createUdpCollect(adoptingOpen(early, open));
    // Bound to any address, not the early socket's 127.0.0.1: a fresh socket sends "lead" itself.
    const first = await firstValueFrom(collect({ protocol: 'upnp', datagrams: [{ message: bytes('lead'), to: { address: HOST, port } }], windowMs: 5000 }).pipe(take(1), toArray()));
    assert.deepEqual(first.map((a) => text(a.message)), ['re:lead']);
    assert.deepEqual(opened, ['udp4']);
    assert.deepEqual(heard, ['lead', 'lead']);
    await firstValueFrom(collect({ protocol: 'upnp', datagrams: [{ message: bytes('again'), to: { address: HOST, port } }], windowMs: 5000, localAddress: HOST }).pipe(take(1)));
    assert.deepEqual(opened, ['udp4', 'udp4'], 'the second collection opens its own socket');
  });

  it('connected (a PCP/NAT-PMP probe): the exchange connects to the same peer, builds the same bytes from the same local address, and gets the early answer', async () => {
    const build = (local: { address: string; port: number }): Uint8Array => bytes(`probe from ${local.address}:${local.port}`);
    const early = sendEarly([{ message: build, to: { address: HOST, port } }], { localAddress: HOST, connect: true });
    await new Promise<void>((resolve) => early.whenSent(resolve));
    await waitFor(() => heard.length === 1);
    const exchange = createUdpExchange(adoptingOpen(early, openNodeDatagramSocket));
    const reply = await firstValueFrom(
      exchange({ protocol: 'pcp', host: HOST, port, message: build, accept: (m) => text(m).startsWith('re:probe'), timeoutMs: 5000, localAddress: HOST }),
    );
    assert.equal(text(reply.message), heard[0] && `re:${heard[0]}`);
    assert.equal(heard.length, 1, 'not sent again');
    assert.match(heard[0]!, new RegExp(`^probe from 127\\.0\\.0\\.1:${reply.local.port}$`), 'the socket the exchange reports is the one that sent');
  });

  it('connected to another peer: the exchange gets a socket of its own and sends itself', async () => {
    const early = sendEarly([{ message: bytes('probe'), to: { address: HOST, port: 9 } }], { localAddress: HOST, connect: true });
    await new Promise<void>((resolve) => early.whenSent(resolve));
    const exchange = createUdpExchange(adoptingOpen(early, openNodeDatagramSocket));
    const reply = await firstValueFrom(exchange({ protocol: 'pmp', host: HOST, port, message: bytes('probe'), accept: () => true, timeoutMs: 5000, localAddress: HOST }));
    assert.equal(text(reply.message), 're:probe');
    assert.deepEqual(heard, ['probe']);
  });

  it('nobody takes it: closed after abandonAfterMs, and then never offered', async () => {
    const early = sendEarly([{ message: bytes('lead'), to: { address: HOST, port } }], { localAddress: HOST, abandonAfterMs: 20 });
    await new Promise<void>((resolve) => early.whenSent(resolve));
    await new Promise((resolve) => setTimeout(resolve, 60));
    let fresh = 0;
    const taken = early.adopt(() => (fresh++, openNodeDatagramSocket('udp4')) as DatagramSocket);
    assert.equal(taken, undefined);
    assert.equal(fresh, 0);
  });

  it('a datagram that cannot be sent settles whenSent, and the socket is not offered', async () => {
    const early = sendEarly([{ message: bytes('lead'), to: { address: HOST, port } }], { localAddress: '192.0.2.254' }); // not ours: bind fails
    await new Promise<void>((resolve) => early.whenSent(resolve));
    assert.equal(early.adopt(() => openNodeDatagramSocket('udp4')), undefined);
  });
});
