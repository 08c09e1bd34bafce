#!/usr/bin/env node
// Re-check the mutants a StrykerJS run left alive against today's tests, without a whole new run.
//
//   node scripts/mutation-recheck.mjs --report reports/mutation/runs/core-merged.json \
//     --file src/core/address.ts [--status Survived,NoCoverage,Timeout] \
//     [--tests test/core/address.test.ts,marbles/03-x.test.ts] [--timeout 120] [--out log.tsv]
//
// Each selected mutant is applied to a private copy of the tree (so the working tree and other
// test runs never see it), then the test files run one by one, stopping at the first that fails.
// A failing file kills the mutant; a file that outlives --timeout seconds is a "hang" (Stryker's
// Timeout). Without --tests it runs every file Stryker runs (marbles/ and test/core/).
//
// When the file's source differs from the one the report mutated, lines are matched by a longest
// common subsequence: a mutant is re-checked at its new place when every line it spans is kept;
// the others are listed as "changed". The new or changed lines are printed as `--mutate` ranges
// for a Stryker run on them alone (`npm run mutate -- --mutate 'src/core/x.ts:10-20'`).
// `--status Killed` re-checks what the run killed, to see it still is.
// Valid only while tests are added, never weakened: a mutant the run killed stays killed.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { lineMap as computeLineMap, relocate as relocateIn } from './lib/line-map.mjs';

const { values } = parseArgs({
  options: {
    report: { type: 'string' },
    file: { type: 'string' },
    status: { type: 'string', default: 'Survived,NoCoverage,Timeout' },
    tests: { type: 'string' },
    timeout: { type: 'string', default: '120' },
    out: { type: 'string' },
    only: { type: 'string' },
  },
});
if (!values.report || !values.file) {
  console.error('usage: mutation-recheck.mjs --report R.json --file src/core/x.ts [--status …] [--tests a,b] [--timeout s] [--out f] [--only line:col,…]');
  process.exit(2);
}
const root = resolve(new URL('..', import.meta.url).pathname);
const report = JSON.parse(readFileSync(resolve(values.report), 'utf8'));
const entry = report.files[values.file];
if (!entry) {
  console.error(`${values.file} is not in ${values.report}`);
  process.exit(2);
}
const current = readFileSync(join(root, values.file), 'utf8');
const currentLines = current.split('\n');
const reportLines = entry.source.split('\n');
const lineMap = computeLineMap(reportLines, currentLines);
const relocate = (m) => relocateIn(lineMap, m.location);
if (current !== entry.source) {
  // The lines of today's source that no mutant of the run can stand for: Stryker must mutate them.
  const kept = new Set(lineMap.values());
  const ranges = [];
  for (let line = 1; line <= currentLines.length; line++) {
    if (kept.has(line) || currentLines[line - 1].trim() === '') continue;
    const last = ranges[ranges.length - 1];
    if (last && last[1] >= line - 2) last[1] = line;
    else ranges.push([line, line]);
  }
  console.error(`# ${values.file} changed since the run: mutants on changed lines are skipped ("changed"); new or changed lines: ${ranges.map(([a, b]) => `${values.file}:${a}-${b}`).join(',') || 'none'}`);
}
const statuses = new Set(values.status.split(','));
const only = values.only ? new Set(values.only.split(',')) : null;
const mutants = entry.mutants.filter(
  (m) => statuses.has(m.status) && (!only || only.has(`${m.location.start.line}:${m.location.start.column}`)),
);
const tests = values.tests
  ? values.tests.split(',')
  : ['marbles', 'test/core'].flatMap((dir) =>
      readdirSync(join(root, dir))
        .filter((n) => n.endsWith('.test.ts'))
        .sort()
        .map((n) => `${dir}/${n}`),
    );

const sandbox = mkdtempSync(join(tmpdir(), 'rxnat-recheck-'));
for (const part of ['src', 'test', 'marbles', 'scripts', 'package.json', 'tsconfig.json']) {
  cpSync(join(root, part), join(sandbox, part), { recursive: true });
}
symlinkSync(join(root, 'node_modules'), join(sandbox, 'node_modules'));
mkdirSync(join(sandbox, 'tmp'), { recursive: true });
process.on('exit', () => rmSync(sandbox, { recursive: true, force: true }));

/** Replace the text between two 1-based line/column positions. */
function apply(source, { start, end }, replacement) {
  const lines = source.split('\n');
  const offset = (pos) => lines.slice(0, pos.line - 1).reduce((n, l) => n + l.length + 1, 0) + pos.column - 1;
  return source.slice(0, offset(start)) + replacement + source.slice(offset(end));
}

const target = join(sandbox, values.file);
const tally = {};
const header = 'location\tmutator\treplacement\twas\tnow\tby\tseconds';
console.log(header);
if (values.out) writeFileSync(values.out, header + '\n');
for (const m of mutants) {
  const at = relocate(m);
  if (at === null) {
    const row = [`${values.file}:${m.location.start.line}:${m.location.start.column}`, m.mutatorName, JSON.stringify(m.replacement).slice(0, 80), m.status, 'changed', '', '0s'].join('\t');
    console.log(row);
    if (values.out) appendFileSync(values.out, row + '\n');
    tally.changed = (tally.changed ?? 0) + 1;
    continue;
  }
  writeFileSync(target, apply(current, at, m.replacement));
  const began = process.hrtime.bigint();
  let now = 'survived';
  let by = '';
  for (const file of tests) {
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=dot', file], {
      cwd: sandbox,
      timeout: Number(values.timeout) * 1000,
      encoding: 'utf8',
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    if (run.error?.code === 'ETIMEDOUT' || run.signal) {
      now = 'hang';
      by = file;
      break;
    }
    if (run.status !== 0) {
      now = 'killed';
      by = file;
      break;
    }
  }
  writeFileSync(target, current);
  const seconds = Math.round(Number(process.hrtime.bigint() - began) / 1e9);
  const row = [
    `${values.file}:${m.location.start.line}:${m.location.start.column}${at.start.line !== m.location.start.line ? `→${at.start.line}` : ''}`,
    m.mutatorName,
    JSON.stringify(m.replacement).slice(0, 80),
    m.status,
    now,
    by,
    `${seconds}s`,
  ].join('\t');
  console.log(row);
  if (values.out) appendFileSync(values.out, row + '\n');
  tally[now] = (tally[now] ?? 0) + 1;
}
console.log(`# ${mutants.length} mutants re-checked:`, JSON.stringify(tally));
