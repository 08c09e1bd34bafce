/**
 * Runs inside the gateway lab's lan namespace (spawned by `miniupnpd-faults.test.ts` through
 * `Lab.spawnNodeIn`): maps one port per backend on the lab router with real `mapPort` streams
 * and reports every state as a JSON line. Reads JSON lines on stdin: `{ "op": "stop" }` (or
 * stdin closing) stops every stream gracefully; once all completed it prints `{ "kind": "done" }`
 * and exits by itself (nothing may keep the event loop alive).
 *
 * Arguments: the backends to map, for example `pmp pcp upnp`. Only the lab's own addresses are
 * used: the router 192.168.77.1 and its description URL (no SSDP, no multicast).
 */
import { createInterface } from 'node:readline';
import { Subject, type Observable } from 'rxjs';
import { mapPort, type MappingState } from '../../src/core/map-port.js';
import type { Nat } from '../../src/core/nat.js';
import { pcp } from '../../src/protocols/pcp/client.js';
import { pmp } from '../../src/protocols/pmp/client.js';
import { upnp } from '../../src/protocols/upnp/client.js';

const GATEWAY = '192.168.77.1';
const DESCRIPTION_URL = `http://${GATEWAY}:5000/rootDesc.xml`;

/** The internal (and requested external) port of each backend's mapping. */
export const LAB_DRIVER_PORTS = { pmp: 41001, pcp: 41002, upnp: 41003 } as const;
export type LabBackend = keyof typeof LAB_DRIVER_PORTS;

/** A state as the driver prints it: the error flattened to its name and code. */
export interface LabState {
  readonly kind: 'state';
  readonly backend: LabBackend;
  readonly status: MappingState['status'];
  readonly externalPort: number;
  readonly externalIp: string | null;
  readonly lifetimeSeconds: number | null;
  readonly renewals: number;
  readonly error: { readonly name: string; readonly resultCode?: number; readonly message: string } | null;
}

function source(backend: LabBackend): Observable<Nat> {
  // 500 ms by default: the "daemon killed" scenario needs deadlines well inside its 4 s leases.
  // A scenario about *what* the router answers, not when, passes RXNAT_LAB_UDP_TIMEOUT_MS.
  const deadline = Number(process.env.RXNAT_LAB_UDP_TIMEOUT_MS ?? 500);
  const udp = { probeTimeoutMs: deadline, timeoutMs: deadline, initialRetransmitMs: 50 };
  switch (backend) {
    case 'pmp':
      return pmp(GATEWAY, udp);
    case 'pcp':
      return pcp(GATEWAY, { ...udp, maxRetransmitMs: 200, fallbackToPmp: false });
    case 'upnp':
      return upnp({ descriptionUrl: DESCRIPTION_URL, requestTimeoutMs: 1000 });
  }
}

const print = (message: unknown): void => void process.stdout.write(`${JSON.stringify(message)}\n`);

if (process.env.RXNAT_LAB_ARGS !== undefined) {
  const backends = process.argv.slice(2).filter((b): b is LabBackend => b in LAB_DRIVER_PORTS);
  const lifetimeSeconds = Number(process.env.RXNAT_LAB_LIFETIME ?? 4);
  const stop$ = new Subject<void>();
  let open = backends.length;
  for (const backend of backends) {
    const port = LAB_DRIVER_PORTS[backend];
    mapPort(source(backend), { protocol: backend === 'upnp' ? 'tcp' : 'udp', internalPort: port, externalPort: port, lifetimeSeconds, description: `rxnat fault ${backend}` }, {
      stop: stop$,
      retry: { initialDelayMs: 50, maxDelayMs: 500 },
      externalIpCacheMs: 250,
      teardownTimeoutMs: 1000,
    }).subscribe({
      next: (s) => {
        const error = s.error as (Error & { resultCode?: number }) | null;
        const state: LabState = {
          kind: 'state',
          backend,
          status: s.status,
          externalPort: s.externalPort,
          externalIp: s.externalIp,
          lifetimeSeconds: s.lifetimeSeconds,
          renewals: s.renewals,
          error: error ? { name: error.name, message: error.message, ...(error.resultCode !== undefined ? { resultCode: error.resultCode } : {}) } : null,
        };
        print(state);
      },
      error: (error: unknown) => print({ kind: 'error', backend, message: String(error) }),
      complete: () => {
        open -= 1;
        if (open === 0) print({ kind: 'done' });
      },
    });
  }
  const input = createInterface({ input: process.stdin });
  const stop = (): void => {
    stop$.next();
    input.close();
  };
  input.on('line', (line) => {
    if (line.includes('"stop"')) stop();
  });
  input.on('close', () => stop$.next());
}
