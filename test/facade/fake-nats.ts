/**
 * Fake NATs for the facade tests: extip-like (synchronous answers, no I/O) with every add and
 * delete recorded, and a delete that a test can replace (refused, never answered).
 */
import { EMPTY, of, throwError, type Observable } from 'rxjs';
import type { MappingGrant, Nat, NatMappingRequest } from '../../src/core/nat.js';
import { GatewayError } from '../../src/errors.js';

export interface RecordingNat extends Nat {
  readonly adds: NatMappingRequest[];
  readonly deletes: MappingGrant[];
}

let serial = 0;

/**
 * A NAT on `ip` that grants every add at once. Each one has a name of its own, so that streams
 * of different tests never share a gateway context.
 */
export function recordingNat(ip = '203.0.113.7', deleteMapping: (grant: MappingGrant) => Observable<void> = () => EMPTY): RecordingNat {
  const adds: NatMappingRequest[] = [];
  const deletes: MappingGrant[] = [];
  serial++;
  return {
    name: `fake${serial}(${ip})`,
    kind: 'pmp',
    gateway: ip,
    endpoint: `${ip}#${serial}`,
    maxConcurrentRequests: Infinity,
    adds,
    deletes,
    addMapping(request) {
      adds.push(request);
      return of({ protocol: request.protocol, internalPort: request.internalPort, externalPort: request.externalPort, lifetimeSeconds: request.lifetimeSeconds });
    },
    deleteMapping(grant) {
      deletes.push(grant);
      return deleteMapping(grant);
    },
    externalIp: () => of(ip),
  };
}

/** A delete the gateway refuses. */
export const refusedDelete = (): Observable<never> =>
  throwError(() => new GatewayError({ protocol: 'pmp', resultCode: 2, resultName: 'NOT_AUTHORIZED', gateway: '203.0.113.7' }));

/** Collects every unhandled rejection while `fn` runs (and a few turns after), to assert there is none. */
export async function unhandledRejections(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const listener = (reason: unknown): void => void seen.push(reason);
  process.on('unhandledRejection', listener);
  try {
    await fn();
    // Unhandled rejections are reported after the microtask queue drains.
    for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
  } finally {
    process.off('unhandledRejection', listener);
  }
  return seen;
}
