/**
 * Remote control for rxnat inside the lab's lan namespace: started by
 * `lab.spawnNodeIn('lan', 'test/interop/rxnat-driver.ts')`, it reads one JSON command per line
 * on stdin and answers each with one JSON line `{ id, ok }` or `{ id, error }` on stdout.
 * Mapping streams also emit `{ event: 'state' | 'complete' | 'error', key, ... }` lines.
 *
 * Commands:
 * - `{ op: 'nat', backend: 'pmp' | 'pcp' | 'upnp' | 'discover', gateway?, options? }` finds the
 *   gateway and keeps the Nat; answers `{ name, kind, gateway, serviceType?, internalClient? }`.
 * - `{ op: 'externalIp' }`, `{ op: 'list' }`.
 * - `{ op: 'add', key, request, renew? }` adds (with `renew`, passes the grant kept under `key`
 *   as `previous`) and keeps the grant under `key`; `{ op: 'delete', key }` deletes it.
 * - `{ op: 'mapPort', key, request, options? }` subscribes `mapPort(nat, request)`;
 *   `{ op: 'stop', key }` stops it gracefully (delete, last state, complete);
 *   `{ op: 'unsubscribe', key }` unsubscribes.
 *
 * @packageDocumentation
 */
import { createInterface } from 'node:readline';
import { firstValueFrom, lastValueFrom, Subject, toArray } from 'rxjs';
import type { Observable, Subscription } from 'rxjs';
import { discoverNat, mapPort, pcp, pmp, upnp } from '../../src/index.js';
import type { MappingGrant, MappingRequest, MapPortOptions, Nat, NatMappingRequest } from '../../src/index.js';
import { driverError, out } from './driver-wire.js';

interface Command {
  readonly id: number;
  readonly op: string;
  readonly backend?: 'pmp' | 'pcp' | 'upnp' | 'discover';
  readonly gateway?: string;
  readonly options?: Record<string, unknown>;
  readonly key?: string;
  readonly request?: Omit<NatMappingRequest, 'previous'> & MappingRequest;
  readonly renew?: boolean;
}




let nat: Nat | undefined;
const grants = new Map<string, MappingGrant>();
const streams = new Map<string, { subscription: Subscription; stop: Subject<void> }>();

function requireNat(): Nat {
  if (!nat) throw new Error('no nat yet: send { op: "nat" } first');
  return nat;
}

function findNat(command: Command): Observable<Nat> {
  const options = command.options ?? {};
  switch (command.backend) {
    case 'pmp':
      return pmp(command.gateway, options);
    case 'pcp':
      return pcp(command.gateway, options);
    case 'upnp':
      return upnp(options);
    case 'discover':
      return discoverNat(options);
    default:
      throw new Error(`unknown backend ${String(command.backend)}`);
  }
}

async function execute(command: Command): Promise<unknown> {
  switch (command.op) {
    case 'nat': {
      nat = await firstValueFrom(findNat(command));
      const extra = nat as Nat & { service?: { serviceType?: string }; internalClient?: string };
      return { name: nat.name, kind: nat.kind, gateway: nat.gateway, serviceType: extra.service?.serviceType, internalClient: extra.internalClient };
    }
    case 'externalIp':
      return firstValueFrom(requireNat().externalIp());
    case 'list': {
      const current = requireNat();
      if (!current.listMappings) throw new Error(`${current.name} cannot list mappings`);
      return firstValueFrom(current.listMappings());
    }
    case 'add': {
      const key = command.key ?? 'default';
      const request = command.request;
      if (!request) throw new Error('add needs a request');
      const previous = command.renew ? grants.get(key) : undefined;
      if (command.renew && !previous) throw new Error(`no grant under ${key} to renew`);
      const grant = await firstValueFrom(requireNat().addMapping({ ...request, ...(previous ? { previous } : {}) }));
      grants.set(key, grant);
      return grant;
    }
    case 'delete': {
      const key = command.key ?? 'default';
      const grant = grants.get(key);
      if (!grant) throw new Error(`no grant under ${key}`);
      await lastValueFrom(requireNat().deleteMapping(grant).pipe(toArray()));
      grants.delete(key);
      return null;
    }
    case 'mapPort': {
      const key = command.key ?? 'default';
      if (!command.request) throw new Error('mapPort needs a request');
      const stop = new Subject<void>();
      const options: MapPortOptions = { ...(command.options ?? {}), stop };
      const subscription = mapPort(requireNat(), command.request, options).subscribe({
        next: (state) => out({ event: 'state', key, state: { ...state, error: state.error ? driverError(state.error) : null } }),
        error: (error: unknown) => out({ event: 'error', key, error: driverError(error) }),
        complete: () => out({ event: 'complete', key }),
      });
      streams.set(key, { subscription, stop });
      return 'subscribed';
    }
    case 'stop': {
      const stream = streams.get(command.key ?? 'default');
      if (!stream) throw new Error(`no stream ${command.key}`);
      stream.stop.next();
      return 'stopping';
    }
    case 'unsubscribe': {
      const stream = streams.get(command.key ?? 'default');
      if (!stream) throw new Error(`no stream ${command.key}`);
      stream.subscription.unsubscribe();
      streams.delete(command.key ?? 'default');
      return 'unsubscribed';
    }
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  if (line.trim() === '') return;
  // one command at a time, in order
  queue = queue.then(async () => {
    let command: Command;
    try {
      command = JSON.parse(line) as Command;
    } catch (error) {
      out({ id: null, error: driverError(error) });
      return;
    }
    const started = performance.now();
    try {
      const ok = await execute(command);
      out({ id: command.id, ok: ok ?? null, ms: Math.round(performance.now() - started) });
    } catch (error) {
      out({ id: command.id, error: driverError(error), ms: Math.round(performance.now() - started) });
    }
  });
});
lines.on('close', () => {
  void queue.then(() => {
    if (streams.size === 0) process.exit(0);
    for (const stream of streams.values()) stream.subscription.unsubscribe();
    // let the teardown deletes go out before exiting
    setTimeout(() => process.exit(0), 500);
  });
});
