/**
 * rxnat following the network, inside a lab's lan namespace: started by the two-gateway test
 * with `lab.spawnNodeInLan('test/interop/follow-network-driver.ts', [protocol, internalPort])`,
 * it maps the port with `mapPort(followNetwork((s) => discoverNat({ gateway: … })), …)`, all
 * defaults otherwise (the 2 s network watch, the 500 ms settle time, the three backends), and
 * writes one JSON line per event on stdout, each with `at` (Date.now(), the clock the test
 * shares): `{ event: 'discover', snapshot }` for each discovery, `{ event: 'nat', name, kind,
 * gateway }` for each NAT followed, `{ event: 'state', state }`, `{ event: 'complete' }`. The JSON
 * line `"stop"` on stdin stops the mapping gracefully (delete, then complete); the driver then exits.
 *
 * @packageDocumentation
 */
import { createInterface } from 'node:readline';
import { Subject, tap } from 'rxjs';
import { discoverNat, followNetwork, mapPort, type MappingProtocol } from '../../src/index.js';

const [protocol, port] = JSON.parse(process.env.RXNAT_LAB_ARGS ?? '[]') as [MappingProtocol, string];
const out = (message: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ at: Date.now(), ...message })}\n`);

const nat$ = followNetwork((snapshot) => {
  out({ event: 'discover', snapshot });
  return discoverNat({ gateway: snapshot.defaultGateway?.gateway });
}).pipe(tap((nat) => out({ event: 'nat', name: nat.name, kind: nat.kind, gateway: nat.gateway })));

const stop = new Subject<void>();
mapPort(nat$, { protocol, internalPort: Number(port), lifetimeSeconds: 120 }, { stop }).subscribe({
  next: (state) => out({ event: 'state', state: { ...state, error: state.error ? { name: state.error.name, message: state.error.message } : null } }),
  error: (error: unknown) => out({ event: 'error', error: String(error) }),
  complete: () => {
    out({ event: 'complete' });
    process.exit(0);
  },
});

createInterface({ input: process.stdin }).on('line', (line) => {
  // LabProcess.send writes JSON: the string "stop".
  if (line.trim() === '"stop"') stop.next();
});
