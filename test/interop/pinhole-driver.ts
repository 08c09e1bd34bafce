/**
 * Remote control for rxnat's UPnP pinholes inside the lab's lan namespace: started by
 * `lab.spawnNodeIn('lan', 'test/interop/pinhole-driver.ts')`, it reads one JSON command per
 * line on stdin and answers each with one JSON line `{ id, ok }` or `{ id, error }` on stdout;
 * mapping streams also emit `{ event: 'state' | 'complete' | 'error', key, ... }` lines.
 *
 * Commands:
 * - `{ op: 'nat', via: 'description', options }`: `upnpPinhole(options)`;
 *   `{ op: 'nat', via: 'igd', descriptionUrl, options }`: `upnp({ descriptionUrl })`, then
 *   `upnpPinholeVia(igd, options)`. Answers `{ name, kind, gateway, endpoint, internalClient, firewallStatus }`.
 * - `{ op: 'add', key, request, renew? }`, `{ op: 'delete', key }`: addMapping (with `renew`, the
 *   grant kept under `key` as `previous`) and deleteMapping.
 * - `{ op: 'mapPort', key, request }`, `{ op: 'stop', key }`: a mapping stream and its graceful stop.
 *
 * @packageDocumentation
 */
import { createInterface } from 'node:readline';
import { firstValueFrom, lastValueFrom, Subject, switchMap, toArray, type Subscription } from 'rxjs';
import { mapPort } from '../../src/core/map-port.js';
import type { MappingGrant, NatMappingRequest } from '../../src/core/nat.js';
import { upnp } from '../../src/protocols/upnp/client.js';
import { upnpPinhole, upnpPinholeVia, type UpnpPinholeNat, type UpnpPinholeOptions } from '../../src/protocols/upnp/firewall-client.js';
import { driverError, out } from './driver-wire.js';

interface Command {
  readonly id: number;
  readonly op: string;
  readonly via?: 'description' | 'igd';
  readonly descriptionUrl?: string;
  readonly options?: UpnpPinholeOptions;
  readonly key?: string;
  readonly request?: Omit<NatMappingRequest, 'previous'>;
  readonly renew?: boolean;
}



let nat: UpnpPinholeNat | undefined;
const grants = new Map<string, MappingGrant>();
const streams = new Map<string, { subscription: Subscription; stop: Subject<void> }>();

function requireNat(): UpnpPinholeNat {
  if (!nat) throw new Error('no nat yet: send { op: "nat" } first');
  return nat;
}

async function execute(command: Command): Promise<unknown> {
  const key = command.key ?? 'default';
  switch (command.op) {
    case 'nat': {
      const options = command.options ?? {};
      nat = await firstValueFrom(
        command.via === 'igd'
          ? upnp({ descriptionUrl: command.descriptionUrl! }).pipe(switchMap((igd) => upnpPinholeVia(igd, options)))
          : upnpPinhole(options),
      );
      return { name: nat.name, kind: nat.kind, gateway: nat.gateway, endpoint: nat.endpoint, internalClient: nat.internalClient, firewallStatus: nat.firewallStatus };
    }
    case 'add': {
      if (!command.request) throw new Error('add needs a request');
      const previous = command.renew ? grants.get(key) : undefined;
      if (command.renew && !previous) throw new Error(`no grant under ${key} to renew`);
      const grant = await firstValueFrom(requireNat().addMapping({ ...command.request, ...(previous ? { previous } : {}) }));
      grants.set(key, grant);
      return grant;
    }
    case 'delete': {
      const grant = grants.get(key);
      if (!grant) throw new Error(`no grant under ${key}`);
      await lastValueFrom(requireNat().deleteMapping(grant).pipe(toArray()));
      grants.delete(key);
      return null;
    }
    case 'mapPort': {
      if (!command.request) throw new Error('mapPort needs a request');
      const stop = new Subject<void>();
      const subscription = mapPort(requireNat(), command.request, { stop }).subscribe({
        next: (state) => out({ event: 'state', key, state: { ...state, error: state.error ? driverError(state.error) : null } }),
        error: (error: unknown) => out({ event: 'error', key, error: driverError(error) }),
        complete: () => out({ event: 'complete', key }),
      });
      streams.set(key, { subscription, stop });
      return 'subscribed';
    }
    case 'stop': {
      const stream = streams.get(key);
      if (!stream) throw new Error(`no stream ${key}`);
      stream.stop.next();
      return 'stopping';
    }
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  if (line.trim() === '') return;
  queue = queue.then(async () => {
    let command: Command;
    try {
      command = JSON.parse(line) as Command;
    } catch (error) {
      out({ id: null, error: driverError(error) });
      return;
    }
    try {
      out({ id: command.id, ok: (await execute(command)) ?? null });
    } catch (error) {
      out({ id: command.id, error: driverError(error) });
    }
  });
});
lines.on('close', () => {
  void queue.then(() => {
    if (streams.size === 0) process.exit(0);
    for (const stream of streams.values()) stream.subscription.unsubscribe();
    setTimeout(() => process.exit(0), 500);
  });
});
