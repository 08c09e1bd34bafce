/** In-process tests of how the CLI reports failures and deletes the gateway did not confirm (no processes, no network). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NatOptions } from '../../src/cli/args.js';
import { describeFailure, errorJson, stateJson, unconfirmedDeleteLines } from '../../src/cli/format.js';
import { GatewayError, GatewayTimeoutError, UnconfirmedDeleteError, type UnconfirmedDelete } from '../../src/errors.js';

const options = (nat: string, extra: Partial<NatOptions> = {}): NatOptions => ({
  nat,
  timeoutMs: undefined,
  requestTimeoutMs: undefined,
  gateway: undefined,
  pmpPort: undefined,
  pcpPort: undefined,
  ssdpTargets: [],
  localAddress: undefined,
  ...extra,
});

const at = Date.UTC(2026, 11, 1, 20, 31, 4, 200); // rounded up to the second: 20:31:05Z

const entry = (patch: Partial<UnconfirmedDelete>): UnconfirmedDelete => ({
  protocol: 'tcp',
  internalPort: 8080,
  externalPort: 8080,
  gateway: 'pmp(192.168.1.1)',
  leaseEndsAtMs: at,
  error: new GatewayTimeoutError('pmp', '192.168.1.1', 10_000),
  ...patch,
});

test('one line per unconfirmed delete: the mapping, its lease end, and how to remove it', () => {
  const error = new UnconfirmedDeleteError([
    entry({}),
    entry({ protocol: 'udp', internalPort: 4001, externalPort: 14001 }),
    entry({ gateway: 'upnp(192.168.1.1)', leaseEndsAtMs: null, error: new GatewayError({ protocol: 'upnp', resultCode: 606, resultName: 'ActionNotAuthorized', gateway: 'http://192.168.1.1:5000/ctl' }) }),
    entry({ gateway: 'pcp(192.168.1.1)', externalPort: 18080 }),
  ]);
  assert.deepEqual(unconfirmedDeleteLines(error, options('any', { ssdpTargets: [{ address: '192.168.1.1', port: 1900 }] })), [
    'could not confirm the delete of tcp 8080 → 8080 on pmp(192.168.1.1): it may stay mapped until 2026-12-01T20:31:05Z; remove it sooner with: rxnat unmap tcp 8080 --nat pmp:192.168.1.1',
    'could not confirm the delete of udp 14001 → 4001 on pmp(192.168.1.1): it may stay mapped until 2026-12-01T20:31:05Z; remove it sooner with: rxnat unmap udp 14001 --internal-port 4001 --nat pmp:192.168.1.1',
    'could not confirm the delete of tcp 8080 → 8080 on upnp(192.168.1.1): it may stay mapped permanently; remove it with: rxnat unmap tcp 8080 --nat upnp --ssdp-target 192.168.1.1:1900',
    'could not confirm the delete of tcp 18080 → 8080 on pcp(192.168.1.1): it may stay mapped until 2026-12-01T20:31:05Z (PCP lets only the process that made a mapping delete it)',
  ]);
});

test('the unmap command keeps the spec and the options that found the gateway', () => {
  const error = new UnconfirmedDeleteError([entry({ gateway: 'pmp(127.0.0.1)' }), entry({ gateway: 'upnp(127.0.0.1)' })]);
  const lines = unconfirmedDeleteLines(
    error,
    options('upnp:http://127.0.0.1:5000/rootDesc.xml', { pmpPort: 15351, localAddress: '127.0.0.1', ssdpTargets: [{ address: '127.0.0.1', port: 1900 }] }),
  );
  assert.match(lines[0]!, /with: rxnat unmap tcp 8080 --nat pmp:127\.0\.0\.1 --pmp-port 15351 --local-address 127\.0\.0\.1$/);
  assert.match(lines[1]!, /with: rxnat unmap tcp 8080 --nat upnp:http:\/\/127\.0\.0\.1:5000\/rootDesc\.xml --local-address 127\.0\.0\.1$/);
  assert.match(unconfirmedDeleteLines(error, options('natpmp:127.0.0.1'))[0]!, /--nat natpmp:127\.0\.0\.1$/);
});

test('--json: the error of the last state lists its deletes with their fields', () => {
  const error = new UnconfirmedDeleteError([entry({}), entry({ leaseEndsAtMs: null })]);
  const json = errorJson(error);
  assert.equal(json.name, 'UnconfirmedDeleteError');
  assert.equal(json.code, 'ERR_DELETE_UNCONFIRMED');
  assert.equal(json.message, error.message);
  assert.deepEqual(json.deletes, [
    {
      protocol: 'tcp',
      internalPort: 8080,
      externalPort: 8080,
      gateway: 'pmp(192.168.1.1)',
      leaseEndsAtMs: at,
      leaseEndsAt: '2026-12-01T20:31:05Z',
      error: { name: 'GatewayTimeoutError', code: 'ERR_GATEWAY_TIMEOUT', message: 'pmp gateway 192.168.1.1 did not answer within 10000 ms' },
    },
    {
      protocol: 'tcp',
      internalPort: 8080,
      externalPort: 8080,
      gateway: 'pmp(192.168.1.1)',
      leaseEndsAtMs: null,
      leaseEndsAt: null,
      error: { name: 'GatewayTimeoutError', code: 'ERR_GATEWAY_TIMEOUT', message: 'pmp gateway 192.168.1.1 did not answer within 10000 ms' },
    },
  ]);
  const state = {
    status: 'unmapped',
    protocol: 'tcp',
    internalPort: 8080,
    externalPort: 0,
    externalIp: null,
    lifetimeSeconds: null,
    backend: 'pmp(192.168.1.1)',
    doubleNat: false,
    renewals: 0,
    error,
  } as const;
  assert.deepEqual((stateJson(state, 'unmapped', new Date(at)).error as { deletes: unknown }).deletes, json.deletes);
  // Other errors keep their three fields.
  assert.deepEqual(Object.keys(errorJson(new Error('x'))), ['name', 'code', 'message']);
});

test('PCP NOT_AUTHORIZED on an add names both causes: PCP off on the router, or another process\'s mapping', () => {
  const { message } = describeFailure(new GatewayError({ protocol: 'pcp', resultCode: 2, resultName: 'NOT_AUTHORIZED', gateway: '192.168.1.1' }));
  assert.match(message, /PCP is off for this client on the router \(try --nat pmp or --nat upnp\)/);
  assert.match(message, /another process/);
});
