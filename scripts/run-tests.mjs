#!/usr/bin/env node
// Runs every test file under test/ and marbles/ with node's test runner (tsx compiles on the fly).
// Node 20's runner has no glob support, so the files are listed here. Extra arguments narrow the
// set: `node scripts/run-tests.mjs test/core` runs only the files below test/core.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const roots = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['test', 'marbles'];
const files = [];
const walk = (path) => {
  if (statSync(path).isDirectory()) {
    for (const entry of readdirSync(path).sort()) walk(join(path, entry));
  } else if (/\.test\.ts$/.test(path)) {
    files.push(path);
  }
};
for (const root of roots) walk(root);
if (files.length === 0) {
  console.error('no test files found under', roots.join(', '));
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
