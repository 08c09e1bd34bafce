/**
 * A gateway's NAT-PMP and PCP that answer the discovery probes but refuse every mapping: the
 * project's simulator server (src/testing/pmp-pcp-server.ts) with the `refuse` fault limited
 * to mappings (`requests: 'mappings'`). Started in a lab's gw namespace, beside a miniupnpd
 * with NAT-PMP/PCP off, by `lab.spawnNodeIn('gw', 'test/interop/refusing-pmp-pcp-server.ts',
 * [address, port, externalIp, resultCode])`: PCP ANNOUNCE and the NAT-PMP external address
 * request succeed, every PCP MAP and NAT-PMP map request gets `resultCode` (default 2,
 * NOT_AUTHORIZED in both protocols).
 *
 * Wire (JSON lines): on stdout `{ ready: true, address, port }` once bound; each
 * `{ op: 'stats' }` on stdin is answered with `{ stats: { counters, requests } }` (`requests`:
 * every datagram received, `{ kind, atMs }`, oldest first, `atMs` = Date.now(), the clock the
 * test shares). Closing stdin (or SIGTERM) closes the socket and exits 0.
 *
 * @packageDocumentation
 */
import { createInterface } from 'node:readline';
import { startPmpPcpServer } from '../../src/testing/pmp-pcp-server.js';
import { MappingTable } from '../../src/testing/table.js';

const [address = '127.0.0.1', port = '5351', externalIp = '203.0.113.1', resultCode = '2'] = JSON.parse(process.env.RXNAT_LAB_ARGS ?? '[]') as string[];
const out = (message: unknown): void => void process.stdout.write(`${JSON.stringify(message)}\n`);

const server = await startPmpPcpServer(new MappingTable({ externalIp }), {
  address,
  port: Number(port),
  logSize: 10_000,
  faults: { refuse: { resultCode: Number(resultCode), requests: 'mappings' } },
});

let closing: Promise<void> | undefined;
const shutdown = (): void => {
  closing ??= server.close().then(() => process.exit(0));
};
process.on('SIGTERM', shutdown);

createInterface({ input: process.stdin })
  .on('line', (line) => {
    let command: { op?: string };
    try {
      command = JSON.parse(line) as { op?: string };
    } catch {
      return;
    }
    if (command.op === 'stats') out({ stats: { counters: server.counters, requests: server.log.map((r) => ({ kind: r.kind, atMs: r.atMs })) } });
  })
  .on('close', shutdown);

out({ ready: true, address: server.address, port: server.port });
