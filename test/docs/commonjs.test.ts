/**
 * The package as a CommonJS user loads it: `require('rxnat')` from a .cjs file, through the
 * package's own `exports` (Node >= 20.19 loads ES modules with require()).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = resolve(import.meta.dirname, '../..');

test("require('rxnat') and require('rxnat/testing') work from CommonJS", () => {
  if (!existsSync(join(root, 'dist/index.js'))) {
    const build = spawnSync('npm', ['run', 'build'], { cwd: root, encoding: 'utf8' });
    assert.equal(build.status, 0, build.stderr);
  }
  mkdirSync(join(root, 'build'), { recursive: true });
  const dir = mkdtempSync(join(root, 'build', 'cjs-'));
  try {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(root, join(dir, 'node_modules', 'rxnat'), 'dir');
    symlinkSync(join(root, 'node_modules', 'rxjs'), join(dir, 'node_modules', 'rxjs'), 'dir');
    writeFileSync(
      join(dir, 'user.cjs'),
      [
        "const { extIp, mapPort, parseNat } = require('rxnat');",
        "const { startGatewaySimulator } = require('rxnat/testing');",
        "const { first } = require('rxjs');",
        "if (typeof parseNat !== 'function' || typeof startGatewaySimulator !== 'function') process.exit(3);",
        "mapPort(extIp('203.0.113.7'), { protocol: 'tcp', internalPort: 8080 })",
        "  .pipe(first((s) => s.status === 'mapped'))",
        "  .subscribe((s) => console.log(`${s.status} ${s.externalIp}:${s.externalPort}`));",
      ].join('\n'),
    );
    const run = spawnSync(process.execPath, ['user.cjs'], { cwd: dir, encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'mapped 203.0.113.7:8080');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
