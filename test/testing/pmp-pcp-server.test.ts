import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import fc from 'fast-check';
import { ProtocolError } from '../../src/errors.js';
import { decodePmpResponse, encodePmpRequest, type PmpMapResponse } from '../../src/protocols/pmp/codec.js';
import {
  decodePcpResponse,
  encodePcpRequest,
  nonceToHex,
  PcpResultCode,
  type PcpMapRequest,
  type PcpMapResponse,
  type PcpResponse,
} from '../../src/protocols/pcp/codec.js';
import { startPmpPcpServer, type PmpPcpServer } from '../../src/testing/pmp-pcp-server.js';
import { MappingTable } from '../../src/testing/table.js';

const HOST = '127.0.0.1';

/** Bytes no server reply can be: the sentinel {@link RawClient.ask} has the server send. */
const SENTINEL = Uint8Array.of(0xde, 0xad, 0xbe, 0xef, 0x5e, 0x47);
const isSentinel = (m: Uint8Array): boolean => m.length === SENTINEL.length && m.every((b, i) => b === SENTINEL[i]);
/** How long any one step may take before the test gives up: only a hung test ever waits this long. */
const GUARD_MS = 10_000;

/**
 * A raw loopback client. It never waits a fixed time for an answer: {@link ask} waits until the
 * server has read the request, then has the server send a sentinel to this client; whatever the
 * server sent in reply went out before the sentinel on the same socket, so the replies are exactly
 * what arrives before it — on a loaded machine too.
 */
class RawClient {
  private readonly waiters: Array<() => void> = [];
  private constructor(
    readonly socket: Socket,
    private readonly inbox: Uint8Array[],
  ) {
    socket.on('message', () => this.waiters.splice(0).forEach((wake) => wake()));
  }
  static async open(): Promise<RawClient> {
    const socket = createSocket('udp4');
    const inbox: Uint8Array[] = [];
    socket.on('message', (m) => inbox.push(new Uint8Array(m)));
    await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
    return new RawClient(socket, inbox);
  }
  get port(): number {
    return this.socket.address().port;
  }
  /** Resolves when `condition` holds, checked after each datagram received; rejects after {@link GUARD_MS}. */
  private async until(condition: () => boolean, what: string): Promise<void> {
    const deadline = performance.now() + GUARD_MS;
    while (!condition()) {
      if (performance.now() > deadline) throw new Error(`${what}: not within ${GUARD_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 5);
        this.waiters.push(() => (clearTimeout(timer), resolve()));
      });
    }
  }
  /** Sends `bytes` to `server`; resolves with the replies it sent while handling them. */
  async ask(bytes: Uint8Array, server: PmpPcpServer): Promise<Uint8Array[]> {
    await this.drain(server);
    const read = server.counters.total;
    await new Promise<void>((resolve, reject) => this.socket.send(bytes, server.port, HOST, (error) => (error ? reject(error) : resolve())));
    await this.until(() => server.counters.total > read, 'the server reads the request');
    return this.drain(server);
  }
  /** Has `server` send the sentinel; resolves with (and removes) everything received before it. */
  async drain(server: PmpPcpServer): Promise<Uint8Array[]> {
    await server.send(SENTINEL, { address: HOST, port: this.port });
    await this.until(() => this.inbox.some(isSentinel), 'the sentinel arrives');
    const upTo = this.inbox.findIndex(isSentinel);
    return this.inbox.splice(0, upTo + 1).slice(0, upTo);
  }
  /** The next datagram received, whenever it comes. */
  async next(): Promise<Uint8Array> {
    await this.until(() => this.inbox.length > 0, 'a datagram arrives');
    return this.inbox.shift() as Uint8Array;
  }
  async one(bytes: Uint8Array, server: PmpPcpServer): Promise<Uint8Array> {
    const replies = await this.ask(bytes, server);
    assert.equal(replies.length, 1, `expected one reply, got ${replies.length}`);
    return replies[0] as Uint8Array;
  }
  /** Sends to a port nobody answers on and collects for `ms`: a wait for silence can only pass. */
  async silentFor(bytes: Uint8Array, port: number, ms: number): Promise<Uint8Array[]> {
    this.inbox.length = 0;
    this.socket.send(bytes, port, HOST);
    await sleep(ms);
    return this.inbox.splice(0);
  }
  close(): void {
    this.socket.close();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const pcpOk = <T extends PcpResponse>(bytes: Uint8Array): T => {
  const decoded = decodePcpResponse(bytes);
  assert.ok(!(decoded instanceof ProtocolError), decoded instanceof ProtocolError ? decoded.message : '');
  return decoded as T;
};
const pmpMap = (bytes: Uint8Array): PmpMapResponse => {
  const decoded = decodePmpResponse(bytes);
  assert.ok(!(decoded instanceof ProtocolError) && decoded.op === 'map', String(decoded));
  return decoded;
};
const nonceA = Uint8Array.from({ length: 12 }, (_, i) => i + 1);
const nonceB = Uint8Array.from({ length: 12 }, (_, i) => 0xf0 + i);
const pcpMapBytes = (over: Partial<PcpMapRequest> = {}): Uint8Array =>
  encodePcpRequest({
    op: 'map',
    lifetimeSeconds: 600,
    clientIp: HOST,
    nonce: nonceA,
    protocol: 6,
    internalPort: 8080,
    suggestedExternalPort: 8080,
    suggestedExternalIp: '0.0.0.0',
    ...over,
  });

describe('simulator NAT-PMP + PCP server', () => {
  let clock = 1_000_000;
  const table = new MappingTable({ externalIp: '203.0.113.7', now: () => clock });
  let server: PmpPcpServer;
  let client: RawClient;

  before(async () => {
    clock += 3_600_000; // the gateway has been up for an hour
    server = await startPmpPcpServer(table, { address: HOST, port: 0, pcpMinLifetimeSeconds: 120, pcpMaxLifetimeSeconds: 3600 });
    client = await RawClient.open();
  });
  after(async () => {
    client.close();
    await server.close();
  });
  beforeEach(() => {
    table.clear();
    table.setExternalIp('203.0.113.7');
    server.resetCounters();
    Object.assign(server.faults, { refuse: undefined, drop: undefined, delayMs: 0, silent: false, tamper: undefined });
  });

  it('binds the loopback address on an ephemeral port', () => {
    assert.equal(server.address, HOST);
    assert.ok(server.port > 0 && server.port !== 5351, `port ${server.port}`);
  });

  describe('NAT-PMP', () => {
    it('answers the external address with the epoch, and counts by opcode', async () => {
      const reply = decodePmpResponse(await client.one(encodePmpRequest({ op: 'external-address' }), server));
      assert.deepEqual(reply, { op: 'external-address', resultCode: 0, epochSeconds: 3600, externalIp: '203.0.113.7' });
      assert.equal(server.counters.byKind['pmp.externalAddress'], 1);
      assert.equal(server.counters.total, 1);
      assert.equal(server.log[0]?.from.port, client.port);
    });

    it('maps (lifetime not clamped), renews, and deletes with lifetime 0', async () => {
      const map = { op: 'map' as const, protocol: 'udp' as const, internalPort: 4000, suggestedExternalPort: 4000, lifetimeSeconds: 5 };
      const granted = pmpMap(await client.one(encodePmpRequest(map), server));
      assert.deepEqual([granted.resultCode, granted.externalPort, granted.lifetimeSeconds], [0, 4000, 5]);
      const held = table.get('udp', 4000);
      assert.equal(held?.internalClient, HOST);
      assert.equal(held?.via, 'pmp');
      pmpMap(await client.one(encodePmpRequest({ ...map, lifetimeSeconds: 60 }), server));
      assert.equal(table.get('udp', 4000)?.lifetimeSeconds, 60);
      const deleted = pmpMap(await client.one(encodePmpRequest({ ...map, suggestedExternalPort: 0, lifetimeSeconds: 0 }), server));
      assert.deepEqual([deleted.resultCode, deleted.externalPort, deleted.lifetimeSeconds, deleted.internalPort], [0, 0, 0, 4000]);
      assert.equal(table.get('udp', 4000), undefined);
      assert.equal(server.counters.byKind['pmp.mapUdp'], 3);
    });

    it('internal port 0 with lifetime 0 deletes all of the client\'s mappings of that protocol', async () => {
      for (const port of [4001, 4002]) {
        await client.one(encodePmpRequest({ op: 'map', protocol: 'tcp', internalPort: port, suggestedExternalPort: port, lifetimeSeconds: 60 }), server);
      }
      table.add({ protocol: 'tcp', internalClient: '10.0.0.9', internalPort: 1, externalPort: 5000, lifetimeSeconds: 60, via: 'upnp' });
      await client.one(encodePmpRequest({ op: 'map', protocol: 'tcp', internalPort: 0, suggestedExternalPort: 0, lifetimeSeconds: 0 }), server);
      assert.deepEqual(table.list().map((m) => m.externalPort), [5000]);
    });

    it('moves to a free port when the suggested one is held by another client', async () => {
      table.add({ protocol: 'tcp', internalClient: '10.0.0.9', internalPort: 1, externalPort: 8080, lifetimeSeconds: 60, via: 'upnp' });
      const granted = pmpMap(await client.one(encodePmpRequest({ op: 'map', protocol: 'tcp', internalPort: 8080, suggestedExternalPort: 8080, lifetimeSeconds: 60 }), server));
      assert.notEqual(granted.externalPort, 8080);
      assert.equal(table.get('tcp', granted.externalPort)?.internalClient, HOST);
    });

    it('unknown opcode → UNSUPPORTED_OPCODE; responses and runts are ignored', async () => {
      assert.deepEqual(decodePmpResponse(await client.one(Uint8Array.of(0, 7), server)), { op: 'short', opcode: 135, resultCode: 5, epochSeconds: 3600 });
      assert.deepEqual(await client.ask(Uint8Array.of(0, 0x80), server), []);
      assert.deepEqual(await client.ask(Uint8Array.of(0), server), []);
      assert.deepEqual(await client.ask(Uint8Array.of(0, 1, 0, 0), server), []); // truncated map request
      assert.equal(server.counters.ignored, 2);
    });
  });

  describe('PCP', () => {
    it('ANNOUNCE → SUCCESS with the epoch', async () => {
      const reply = pcpOk(await client.one(encodePcpRequest({ op: 'announce', lifetimeSeconds: 0, clientIp: HOST }), server));
      assert.deepEqual(reply, { op: 'announce', opcode: 0, resultCode: 0, lifetimeSeconds: 0, epochSeconds: 3600, options: [] });
      assert.equal(server.counters.byKind['pcp.announce'], 1);
    });

    it('MAP creates a mapping owned by the nonce, with the external address', async () => {
      const reply = pcpOk<PcpMapResponse>(await client.one(pcpMapBytes(), server));
      assert.equal(reply.resultCode, 0);
      assert.equal(reply.externalPort, 8080);
      assert.equal(reply.externalIp, '203.0.113.7');
      assert.deepEqual(reply.nonce, nonceA);
      assert.equal(table.get('tcp', 8080)?.nonce, nonceToHex(nonceA));
      assert.equal(table.get('tcp', 8080)?.via, 'pcp');
    });

    it('clamps lifetimes to [min, max]', async () => {
      assert.equal(pcpOk<PcpMapResponse>(await client.one(pcpMapBytes({ lifetimeSeconds: 5 }), server)).lifetimeSeconds, 120);
      assert.equal(pcpOk<PcpMapResponse>(await client.one(pcpMapBytes({ lifetimeSeconds: 99999 }), server)).lifetimeSeconds, 3600);
    });

    it('renew and delete need the original nonce (else NOT_AUTHORIZED, mapping kept)', async () => {
      await client.one(pcpMapBytes(), server);
      const renewOther = pcpOk<PcpMapResponse>(await client.one(pcpMapBytes({ nonce: nonceB }), server));
      assert.equal(renewOther.resultCode, PcpResultCode.NOT_AUTHORIZED);
      assert.equal(renewOther.lifetimeSeconds, 30); // error lifetime
      assert.deepEqual(renewOther.nonce, nonceB); // the request's data is copied back
      const deleteOther = pcpOk<PcpMapResponse>(await client.one(pcpMapBytes({ nonce: nonceB, lifetimeSeconds: 0 }), server));
      assert.equal(deleteOther.resultCode, PcpResultCode.NOT_AUTHORIZED);
      assert.ok(table.get('tcp', 8080), 'still mapped');
      const deleted = pcpOk<PcpMapResponse>(await client.one(pcpMapBytes({ lifetimeSeconds: 0 }), server));
      assert.deepEqual([deleted.resultCode, deleted.lifetimeSeconds], [0, 0]);
      assert.equal(table.get('tcp', 8080), undefined);
    });

    it('refuses what it does not support, as RFC 6887 says', async () => {
      const code = async (bytes: Uint8Array): Promise<number> => pcpOk(await client.one(bytes, server)).resultCode as number;
      assert.equal(await code(pcpMapBytes({ clientIp: '10.9.9.9' })), PcpResultCode.ADDRESS_MISMATCH);
      assert.equal(await code(pcpMapBytes({ protocol: 132 })), PcpResultCode.UNSUPP_PROTOCOL);
      assert.equal(await code(pcpMapBytes({ internalPort: 0 })), PcpResultCode.MALFORMED_REQUEST);
      assert.equal(await code(pcpMapBytes({ options: [{ code: 1, data: new Uint8Array(16) }] })), PcpResultCode.UNSUPP_OPTION);
      assert.equal(await code(pcpMapBytes({ options: [{ code: 130, data: new Uint8Array(3) }] })), PcpResultCode.SUCCESS);
      const peer = pcpMapBytes();
      peer[1] = 2;
      assert.equal(await code(peer), PcpResultCode.UNSUPP_OPCODE);
      assert.equal(await code(Uint8Array.of(...pcpMapBytes(), 0, 0)), PcpResultCode.MALFORMED_REQUEST);
      assert.equal(await code(Uint8Array.of(...pcpMapBytes(), 2, 0, 0, 40)), PcpResultCode.MALFORMED_OPTION);
      const v1 = pcpMapBytes();
      v1[0] = 1;
      const reply = pcpOk(await client.one(v1, server));
      assert.deepEqual([reply.op, reply.resultCode], ['header', PcpResultCode.UNSUPP_VERSION]);
      const response = pcpMapBytes();
      response[1] = 0x81;
      assert.deepEqual(await client.ask(response, server), []);
    });

    it('a NAT-PMP request to a PCP-only server gets a PCP UNSUPP_VERSION header', async () => {
      const pcpOnly = await startPmpPcpServer(table, { protocols: { pmp: false } });
      try {
        const reply = pcpOk(await client.one(encodePmpRequest({ op: 'external-address' }), pcpOnly));
        assert.deepEqual(reply, { op: 'announce', opcode: 0, resultCode: 1, lifetimeSeconds: 30, epochSeconds: 3600, options: [] });
      } finally {
        await pcpOnly.close();
      }
    });

    it('a PCP request to a NAT-PMP-only server gets the 8-byte version-0 reply', async () => {
      const pmpOnly = await startPmpPcpServer(table, { protocols: { pcp: false } });
      try {
        assert.deepEqual(decodePcpResponse(await client.one(pcpMapBytes(), pmpOnly)), {
          op: 'pmp-unsupported-version',
          opcode: 128,
          resultCode: 1,
          epochSeconds: 3600,
        });
        assert.equal(table.list().length, 0);
      } finally {
        await pmpOnly.close();
      }
    });
  });

  describe('state from the table', () => {
    it('reboot resets the epoch and wipes mappings; external address changes', async () => {
      await client.one(pcpMapBytes(), server);
      table.reboot();
      table.setExternalIp('198.51.100.1');
      const reply = decodePmpResponse(await client.one(encodePmpRequest({ op: 'external-address' }), server));
      assert.deepEqual(reply, { op: 'external-address', resultCode: 0, epochSeconds: 0, externalIp: '198.51.100.1' });
      assert.equal(table.list().length, 0);
      clock += 3_600_000;
    });
  });

  describe('faults', () => {
    const ask = (): Promise<Uint8Array[]> => client.ask(encodePmpRequest({ op: 'external-address' }), server);

    it('refuse: the next N requests with a result code, then normal', async () => {
      server.faults.refuse = { resultCode: 3, count: 2 };
      const first = decodePmpResponse((await ask())[0] as Uint8Array);
      assert.deepEqual(first, { op: 'external-address', resultCode: 3, epochSeconds: 3600, externalIp: '0.0.0.0' });
      assert.equal(pcpOk<PcpMapResponse>(await client.one(pcpMapBytes(), server)).resultCode, 3);
      assert.equal(table.list().length, 0, 'a refused request changes nothing');
      const third = decodePmpResponse((await ask())[0] as Uint8Array);
      assert.ok(!(third instanceof ProtocolError) && third.resultCode === 0, 'third request answered normally');
    });

    it('refuse: always, for one protocol only, with a PCP error lifetime', async () => {
      server.faults.refuse = { resultCode: PcpResultCode.NO_RESOURCES, lifetimeSeconds: 77, protocol: 'pcp' };
      for (let i = 0; i < 3; i++) {
        const reply = pcpOk<PcpMapResponse>(await client.one(pcpMapBytes(), server));
        assert.deepEqual([reply.resultCode, reply.lifetimeSeconds], [8, 77]);
      }
      assert.equal((decodePmpResponse((await ask())[0] as Uint8Array) as { resultCode: number }).resultCode, 0);
    });

    it('refuse mappings only: the probes (external address, ANNOUNCE) succeed, every map request of both protocols is refused', async () => {
      server.faults.refuse = { resultCode: 2, count: 3, requests: 'mappings' };
      const probe = decodePmpResponse((await ask())[0] as Uint8Array);
      assert.deepEqual(probe, { op: 'external-address', resultCode: 0, epochSeconds: 3600, externalIp: '203.0.113.7' });
      const announce = pcpOk(await client.one(encodePcpRequest({ op: 'announce', lifetimeSeconds: 0, clientIp: HOST }), server));
      assert.equal(announce.resultCode, 0);
      const pmpRefused = pmpMap(await client.one(encodePmpRequest({ op: 'map', protocol: 'tcp', internalPort: 4000, suggestedExternalPort: 4000, lifetimeSeconds: 60 }), server));
      assert.deepEqual([pmpRefused.resultCode, pmpRefused.externalPort, pmpRefused.lifetimeSeconds], [2, 0, 0]);
      const pcpRefused = pcpOk<PcpMapResponse>(await client.one(pcpMapBytes(), server));
      assert.deepEqual([pcpRefused.resultCode, pcpRefused.lifetimeSeconds], [PcpResultCode.NOT_AUTHORIZED, 30]);
      const pmpDelete = pmpMap(await client.one(encodePmpRequest({ op: 'map', protocol: 'tcp', internalPort: 4000, suggestedExternalPort: 0, lifetimeSeconds: 0 }), server));
      assert.equal(pmpDelete.resultCode, 2, 'a delete is a map request too');
      assert.equal(table.list().length, 0, 'nothing mapped');
      assert.equal(server.faults.refuse?.count, 0, 'only the three map requests used up the count');
      assert.equal(pcpOk<PcpMapResponse>(await client.one(pcpMapBytes(), server)).resultCode, 0, 'count spent: mapped');
    });

    it('drop: the next N replies are lost but the requests are processed', async () => {
      server.faults.drop = { count: 2 };
      assert.deepEqual(await client.ask(pcpMapBytes(), server), []);
      assert.ok(table.get('tcp', 8080) !== undefined, 'processed');
      assert.deepEqual(await ask(), []);
      assert.equal((await ask()).length, 1);
      assert.equal(server.counters.dropped, 2);
      assert.equal(server.counters.replies, 1);
    });

    it('drop: all, or with a probability', async () => {
      server.faults.drop = {};
      assert.deepEqual(await ask(), []);
      server.faults.drop = { probability: 0 };
      assert.equal((await ask()).length, 1);
      server.faults.drop = { probability: 1 };
      assert.deepEqual(await ask(), []);
    });

    it('delay: replies come late', async () => {
      server.faults.delayMs = 80;
      const started = performance.now();
      assert.deepEqual(await client.ask(encodePmpRequest({ op: 'external-address' }), server), [], 'no reply while the request is handled');
      const late = decodePmpResponse(await client.next());
      assert.ok(!(late instanceof ProtocolError) && late.op === 'external-address' && late.resultCode === 0, 'the reply comes, later');
      // A lower bound only: a timer never fires early, and load can only make the reply later still.
      assert.ok(performance.now() - started >= 70, `came after ${Math.round(performance.now() - started)} ms`);
      assert.equal(server.counters.replies, 1);
    });

    it('silent: nothing is processed or answered', async () => {
      server.faults.silent = true;
      assert.deepEqual(await client.ask(pcpMapBytes(), server), []);
      assert.equal(table.list().length, 0);
      assert.equal(server.counters.byKind['pcp.map'], 1, 'still counted and logged');
      assert.equal(server.log.length, 1);
    });

    it('tamper: replace a reply with several datagrams', async () => {
      server.faults.tamper = (reply) => [Uint8Array.of(1, 2, 3), reply];
      const replies = await client.ask(encodePmpRequest({ op: 'external-address' }), server);
      assert.equal(replies.length, 2);
      assert.deepEqual([...(replies[0] as Uint8Array)], [1, 2, 3]);
    });

    it('send: injects raw bytes from the server socket', async () => {
      const received = new Promise<{ port: number }>((resolve) => client.socket.once('message', (_m, rinfo) => resolve(rinfo)));
      await server.send(Uint8Array.of(9), { address: HOST, port: client.port });
      assert.equal((await received).port, server.port);
    });
  });

  it('never crashes on any datagram', async () => {
    const datagrams = fc.sample(
      fc.uint8Array({ minLength: 0, maxLength: 80 }).chain((bytes) =>
        fc.constantFrom(0, 1, 2, 3, 255).map((version) => {
          if (bytes.length > 0) bytes[0] = version;
          return bytes;
        }),
      ),
      { numRuns: 400, seed: 42 },
    );
    const all = [...datagrams, new Uint8Array(1100).fill(2), new Uint8Array(1500).fill(0), Uint8Array.of(2, 1, ...new Array<number>(58).fill(0xff))];
    // Paced, so the loopback receive buffer does not overflow.
    for (const [i, datagram] of all.entries()) {
      await new Promise<void>((resolve) => client.socket.send(datagram, server.port, HOST, () => resolve()));
      if (i % 25 === 0) await sleep(1);
    }
    // Every datagram read (the sentinel follows the replies to the last one).
    const deadline = performance.now() + GUARD_MS;
    while (server.counters.total < all.length && performance.now() < deadline) await sleep(5);
    assert.equal(server.counters.total, all.length);
    assert.equal(server.counters.errors, 0);
    await client.drain(server); // the replies some of them drew
    const reply = decodePmpResponse(await client.one(encodePmpRequest({ op: 'external-address' }), server));
    assert.ok(!(reply instanceof ProtocolError) && reply.resultCode === 0, 'still answers');
  });

  it('close() is idempotent and frees the port', async () => {
    const other = await startPmpPcpServer(new MappingTable());
    await other.close();
    await other.close();
    assert.deepEqual(await client.silentFor(encodePmpRequest({ op: 'external-address' }), other.port, 40), []);
  });
});

describe('simulator announcements (announceTo)', () => {
  /** A loopback socket collecting what arrives, with the source. */
  const inbox = async (): Promise<{ socket: Socket; port: number; got: Array<{ bytes: Uint8Array; from: number }> }> => {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
    const got: Array<{ bytes: Uint8Array; from: number }> = [];
    socket.on('message', (data, rinfo) => got.push({ bytes: new Uint8Array(data), from: rinfo.port }));
    return { socket, port: socket.address().port, got };
  };
  const until = async (condition: () => boolean): Promise<void> => {
    const deadline = Date.now() + GUARD_MS;
    while (!condition()) {
      if (Date.now() > deadline) throw new Error('not within the guard');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  it('a reboot is announced in both forms, an address change in NAT-PMP form, from the server port, to loopback only', async () => {
    await assert.rejects(startPmpPcpServer(new MappingTable(), { announceTo: [{ address: '224.0.0.1', port: 5350 }] }), RangeError);
    const target = await inbox();
    const table = new MappingTable({ externalIp: '203.0.113.9' });
    const server = await startPmpPcpServer(table, { address: HOST, announceTo: [{ address: HOST, port: target.port }] });
    try {
      table.reboot();
      await until(() => target.got.length === 2);
      const [pmpForm, pcpForm] = target.got.map((g) => g.bytes);
      assert.deepEqual(decodePmpResponse(pmpForm ?? new Uint8Array()), { op: 'external-address', resultCode: 0, epochSeconds: 0, externalIp: '203.0.113.9' });
      const announce = decodePcpResponse(pcpForm ?? new Uint8Array());
      assert.ok(!(announce instanceof ProtocolError) && announce.op === 'announce' && announce.resultCode === 0 && announce.epochSeconds === 0);
      assert.deepEqual(target.got.map((g) => g.from), [server.port, server.port], 'from the gateway\'s port');
      table.setExternalIp('198.51.100.4');
      await until(() => target.got.length === 3);
      const changed = decodePmpResponse(target.got[2]?.bytes ?? new Uint8Array());
      assert.ok(!(changed instanceof ProtocolError) && changed.op === 'external-address' && changed.externalIp === '198.51.100.4');
      table.setExternalIp('198.51.100.4'); // no change: nothing announced
      server.faults.silent = true;
      table.reboot(); // a silent gateway announces nothing
      await server.announce(); // nor on demand
      assert.equal(server.counters.announcements, 3);
    } finally {
      await server.close();
      target.socket.close();
    }
  });
});
