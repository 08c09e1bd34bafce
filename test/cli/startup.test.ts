/**
 * What `rxnat` loads before it answers: `--help` and usage errors must not load rxjs, the
 * protocol stacks or any command (main.ts imports a command only to run it). Checked by the
 * modules a child process loads (no timing: the machine may be busy).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RECORDER = join(ROOT, 'test', 'cli', 'support', 'load-recorder.mjs');

/** Runs `rxnat <args>` (no network: help, usage errors, --nat none) and lists the modules it loaded. */
async function loadedBy(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string; modules: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'rxnat-load-'));
  const log = join(dir, 'modules.txt');
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', RECORDER, join(ROOT, 'src', 'cli', 'main.ts'), ...args], {
      cwd: ROOT,
      env: { ...process.env, DEBUG: '', RXNAT_LOAD_LOG: log },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 137)));
    clearTimeout(timer);
    let modules: string[] = [];
    try {
      modules = readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
    } catch {
      // nothing loaded through the hooks
    }
    return { code, stdout, stderr, modules };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const heavy = (modules: readonly string[]): string[] =>
  modules.filter((m) => /\/node_modules\/rxjs\/|\/src\/protocols\/|\/src\/transport\/|\/src\/cli\/commands\/|\/src\/core\/map-port|\/src\/parse-nat|\/src\/discover/.test(m));

describe('rxnat start-up', { concurrency: 2 }, () => {
  it('--help, a command\'s --help, bare rxnat and usage errors load neither rxjs nor a backend nor a command', async () => {
    const cases: [string[], number][] = [
      [['--help'], 0],
      [['map', 'tcp', '8080', '--help'], 0],
      [['status', '--help'], 0],
      [[], 2],
      [['map', 'tcp', '-5'], 2],
      [['map', 'tcp', '8080', '--lifetim', '5'], 2],
      [['frob'], 2],
    ];
    for (const [args, code] of cases) {
      const r = await loadedBy(args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.modules.some((m) => m.endsWith('/src/cli/main.ts')), `the recorder saw main.ts: ${r.modules.join(', ')}`);
      assert.deepEqual(heavy(r.modules), [], `rxnat ${args.join(' ')} loaded only what it needs`);
    }
  });

  it('a command loads what it needs (the recorder sees rxjs and the backends then)', async () => {
    // --nat none is refused by the command itself, after it was imported: no network.
    const r = await loadedBy(['list', '--nat', 'none']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--nat none turns NAT traversal off/);
    const loaded = heavy(r.modules);
    assert.ok(loaded.some((m) => m.includes('/src/cli/commands/list.ts')), loaded.join(', '));
    assert.ok(loaded.some((m) => m.includes('/node_modules/rxjs/')), loaded.join(', '));
    assert.ok(loaded.some((m) => m.includes('/src/protocols/')), loaded.join(', '));
  });
});
