/**
 * What the bench ran on, and the versions of everything it compared.
 *
 * @packageDocumentation
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import type { MachineInfo, Versions } from './types.js';

/** The repository root. */
export const ROOT = join(import.meta.dirname, '..', '..');

/** The JS peers compared (as installed in the repository's node_modules). */
export const PEERS = ['nat-upnp', 'nat-pmp', '@achingbrain/nat-port-mapper', '@silentbot1/nat-api', 'default-gateway'] as const;

/**
 * Variables that change what every Node.js start costs, unrelated to the code measured: this
 * sandbox sets NODE_EXTRA_CA_CERTS, which makes each `node` read and parse a CA bundle before
 * any JavaScript runs (~50 ms here, measured: `node -e 0` 0.10-0.11 s with it, 0.06 s without).
 * rxnat makes no TLS connection, and a user's machine rarely sets it.
 */
export const START_COST_VARIABLES = ['NODE_EXTRA_CA_CERTS', 'NODE_OPTIONS'] as const;

/**
 * Removes {@link START_COST_VARIABLES} from this process's environment, so that every contestant
 * (spawned with it, in the lab or the start-up namespace) starts as on a plain machine; returns
 * the names that were set. Call before anything is spawned.
 */
export function clearStartCostVariables(): string[] {
  const cleared = START_COST_VARIABLES.filter((name) => process.env[name] !== undefined && process.env[name] !== '');
  for (const name of START_COST_VARIABLES) delete process.env[name];
  return cleared;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    node: process.version,
    v8: process.versions.v8,
    os: { platform: os.platform(), release: os.release(), distro: distro(), arch: os.arch() },
    hostname: os.hostname(),
  };
}

function distro(): string {
  try {
    return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `version` of an installed package, or `missing`. */
export function packageVersion(name: string, root = ROOT): string {
  try {
    return (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'missing';
  }
}

function debVersion(name: string): string {
  const result = spawnSync('dpkg-query', ['-W', '-f=${Version}', name], { encoding: 'utf8' });
  return result.status === 0 && result.stdout.trim() !== '' ? result.stdout.trim() : 'missing';
}

function gitDescribe(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' });
  if (head.status !== 0) return 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' });
  return `${head.stdout.trim()}${dirty.stdout.trim() !== '' ? ' + uncommitted changes in src/' : ''}`;
}

export function versions(): Versions {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return {
    rxnat: pkg.version,
    git: gitDescribe(),
    rxjs: packageVersion('rxjs'),
    peers: Object.fromEntries(PEERS.map((name) => [name, packageVersion(name)])),
    tools: Object.fromEntries(['miniupnpd', 'miniupnpc', 'natpmpc'].map((name) => [name, debVersion(name)])),
  };
}
