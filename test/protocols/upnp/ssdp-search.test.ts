import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { lastValueFrom, Subject, toArray } from 'rxjs';
import { ssdpSearch } from '../../../src/protocols/upnp/ssdp-search.js';
import { FakeNetwork } from '../../support/fake-network.js';
import { VirtualClock } from '../../support/virtual-clock.js';

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
    // When it completes (at the end of the window) is shown exactly in virtual time below.
    const answers = await lastValueFrom(
      ssdpSearch({ targets: [{ address: '127.0.0.1', port }], searchTargets: sts, windowMs: 300, repeatIntervalMs: 100 }).pipe(toArray()),
    );
    socket.close();
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
});

describe('ssdpSearch in virtual time', () => {
  const GATEWAY = { address: '192.168.77.1', port: 1900 };
  const GROUP = { address: '239.255.255.250', port: 1900 };
  const setup = (): { clock: VirtualClock; net: FakeNetwork } => {
    const clock = new VirtualClock();
    const net = new FakeNetwork(clock);
    net.udp(GATEWAY, ({ reply }) => reply(new TextEncoder().encode(ANSWER), 5));
    return { clock, net };
  };

  it('sends every ST to every target each round, every repeatIntervalMs, and completes exactly at the end of the window', () => {
    const { clock, net } = setup();
    const answers: string[] = [];
    let completedAt = -1;
    ssdpSearch({ targets: [GROUP, GATEWAY], searchTargets: ['ssdp:all', 'upnp:rootdevice'], windowMs: 300, repeatIntervalMs: 100 }, net.transport()).subscribe({
      next: ({ message, from }) => answers.push(`${clock.now()} ${from.address} ${message.location}`),
      complete: () => (completedAt = clock.now()),
    });
    clock.advance(299);
    assert.equal(completedAt, -1);
    clock.advance(1);
    assert.equal(completedAt, 300);
    assert.deepEqual(
      net.sent.map((d) => `${d.at} ${d.to.address} ${/\r\nST: (\S+)/.exec(new TextDecoder().decode(d.data))?.[1]}`),
      [0, 100, 200].flatMap((at) => [`${at} 239.255.255.250 ssdp:all`, `${at} 239.255.255.250 upnp:rootdevice`, `${at} 192.168.77.1 ssdp:all`, `${at} 192.168.77.1 upnp:rootdevice`]),
    );
    assert.equal(answers.length, 6, 'each search the gateway answered');
    assert.equal(answers[0], '5 192.168.77.1 http://127.0.0.1:1/d.xml');
    assert.equal(net.openSockets, 0);
  });

  it('the default round interval is windowMs / 4, at least 100 ms', () => {
    const rounds = (windowMs: number): number[] => {
      const { clock, net } = setup();
      ssdpSearch({ targets: [GATEWAY], searchTargets: ['ssdp:all'], windowMs }, net.transport()).subscribe();
      clock.advance(windowMs);
      return net.sent.map((d) => d.at);
    };
    assert.deepEqual(rounds(2000), [0, 500, 1000, 1500]);
    assert.deepEqual(rounds(300), [0, 100, 200]);
  });

  it('closes its socket on unsubscribe: no more rounds', () => {
    const { clock, net } = setup();
    const subscription = ssdpSearch({ targets: [GATEWAY], searchTargets: ['ssdp:all'], windowMs: 5000, repeatIntervalMs: 100 }, net.transport()).subscribe();
    clock.advance(150);
    assert.equal(net.sent.length, 2);
    subscription.unsubscribe();
    assert.equal(net.openSockets, 0);
    clock.advance(10_000);
    assert.equal(net.sent.length, 2, 'no more rounds after unsubscribe');
  });

  describe('with a lead', () => {
    const sent = (net: FakeNetwork): string[] => net.sent.map((d) => `${d.at} ${d.to.address} ${/\r\nST: (\S+)/.exec(new TextDecoder().decode(d.data))?.[1]}`);
    const lead = { targets: [GATEWAY], searchTargets: ['igd:1'] };

    it('sends the lead alone at once, then the rounds from widenAfterMs, and collects answers on both until the window ends', () => {
      const { clock, net } = setup();
      const answers: number[] = [];
      let completedAt = -1;
      ssdpSearch({ targets: [GROUP, GATEWAY], searchTargets: ['a', 'b'], windowMs: 400, repeatIntervalMs: 100, lead, widenAfterMs: 150 }, net.transport()).subscribe({
        next: () => answers.push(clock.now()),
        complete: () => (completedAt = clock.now()),
      });
      clock.advance(149);
      assert.deepEqual(sent(net), ['0 192.168.77.1 igd:1'], 'the lead only');
      clock.advance(1000);
      assert.deepEqual(
        sent(net),
        ['0 192.168.77.1 igd:1', ...[150, 250, 350].flatMap((at) => [`${at} 239.255.255.250 a`, `${at} 239.255.255.250 b`, `${at} 192.168.77.1 a`, `${at} 192.168.77.1 b`])],
      );
      assert.deepEqual(answers, [5, 155, 155, 255, 255, 355, 355]);
      assert.equal(completedAt, 400, 'the rounds end with the window, not windowMs after they started');
      assert.equal(net.openSockets, 0);
    });

    it('starts the rounds as soon as widen emits', () => {
      const { clock, net } = setup();
      const widen = new Subject<void>();
      ssdpSearch({ targets: [GATEWAY], searchTargets: ['a'], windowMs: 1000, repeatIntervalMs: 500, lead, widen }, net.transport()).subscribe();
      clock.advance(30);
      assert.deepEqual(sent(net), ['0 192.168.77.1 igd:1']);
      widen.next();
      widen.next();
      clock.advance(1000);
      assert.deepEqual(sent(net), ['0 192.168.77.1 igd:1', '30 192.168.77.1 a', '530 192.168.77.1 a'], 'widened once, at 30 ms; not again at widenAfterMs (500)');
    });

    it('unsubscribed before widenAfterMs: the rounds are never sent and every socket is closed', () => {
      const { clock, net } = setup();
      const subscription = ssdpSearch({ targets: [GROUP, GATEWAY], searchTargets: ['a', 'b', 'c'], windowMs: 2000, lead, widenAfterMs: 150 }, net.transport()).subscribe();
      clock.advance(60);
      subscription.unsubscribe();
      assert.equal(net.openSockets, 0);
      clock.advance(10_000);
      assert.deepEqual(sent(net), ['0 192.168.77.1 igd:1']);
    });
  });
});
