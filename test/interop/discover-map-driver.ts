/**
 * `mapPort(discoverNat(…), …)` inside a lab's lan namespace, as an application would write it:
 * started by `lab.spawnNodeIn('lan', 'test/interop/discover-map-driver.ts', [protocol,
 * internalPort, gateway])`, it maps the port through whatever `discoverNat({ gateway })` finds
 * (the three backends, all else default) and writes one JSON line per event on stdout, each
 * with `at` (Date.now(), the clock the test shares): `{ event: 'nat', name, kind, gateway }`
 * for each NAT the discovery emits, `{ event: 'state', state }` (errors as the drivers write
 * them: name, message, protocol, resultCode), `{ event: 'error', error }`, `{ event:
 * 'complete' }`. The JSON line `"stop"` on stdin stops the mapping gracefully (delete, last
 * state, complete); the driver then exits 0.
 *
 * @packageDocumentation
 */
import { createInterface } from 'node:readline';
import { Subject, tap } from 'rxjs';
import { discoverNat, mapPort, type MappingProtocol } from '../../src/index.js';
import { driverError } from './driver-wire.js';

const [protocol, port, gateway] = JSON.parse(process.env.RXNAT_LAB_ARGS ?? '[]') as [MappingProtocol, string, string];
const out = (message: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ at: Date.now(), ...message })}\n`);

const nat$ = discoverNat({ gateway }).pipe(tap((nat) => out({ event: 'nat', name: nat.name, kind: nat.kind, gateway: nat.gateway })));

const stop = new Subject<void>();
mapPort(nat$, { protocol, internalPort: Number(port), externalPort: Number(port), lifetimeSeconds: 120 }, { stop }).subscribe({
  next: (state) => out({ event: 'state', state: { ...state, error: state.error ? driverError(state.error) : null } }),
  error: (error: unknown) => out({ event: 'error', error: driverError(error) }),
  complete: () => {
    out({ event: 'complete' });
    process.exit(0);
  },
});

createInterface({ input: process.stdin }).on('line', (line) => {
  // LabProcess.send writes JSON: the string "stop".
  if (line.trim() === '"stop"') stop.next();
});
