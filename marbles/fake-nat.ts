/**
 * A scripted NAT for marble tests: every backend call returns the cold Observable the test
 * gives, and the requests are recorded.
 */
import { type Observable } from 'rxjs';
import type { MappingGrant, Nat, NatMappingRequest } from '../src/core/nat.js';

export interface FakeNatScript {
  readonly name?: string;
  readonly add: (request: NatMappingRequest, call: number) => Observable<MappingGrant>;
  readonly remove?: (grant: MappingGrant, call: number) => Observable<void>;
  readonly ip: (call: number) => Observable<string>;
  readonly resets$?: Observable<unknown>;
  readonly maxConcurrentRequests?: number;
}

export interface FakeNat extends Nat {
  readonly adds: NatMappingRequest[];
  readonly deletes: MappingGrant[];
  readonly ipCalls: number;
}

export function fakeNat(script: FakeNatScript): FakeNat {
  const adds: NatMappingRequest[] = [];
  const deletes: MappingGrant[] = [];
  let ipCalls = 0;
  const nat: FakeNat = {
    name: script.name ?? 'fake(192.0.2.1)',
    kind: 'pmp',
    gateway: '192.0.2.1',
    maxConcurrentRequests: script.maxConcurrentRequests ?? 1,
    ...(script.resets$ ? { resets$: script.resets$ } : {}),
    adds,
    deletes,
    get ipCalls() {
      return ipCalls;
    },
    addMapping(request) {
      adds.push(request);
      return script.add(request, adds.length);
    },
    deleteMapping(grant) {
      deletes.push(grant);
      if (!script.remove) throw new Error('this scenario expects no delete');
      return script.remove(grant, deletes.length);
    },
    externalIp() {
      ipCalls++;
      return script.ip(ipCalls);
    },
  };
  return nat;
}

/** A grant as a backend would answer it. */
export function grant(externalPort: number, lifetimeSeconds = 60, protocol: 'tcp' | 'udp' = 'tcp', internalPort = 8080): MappingGrant {
  return { protocol, internalPort, externalPort, lifetimeSeconds };
}
