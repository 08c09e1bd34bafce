#!/usr/bin/env node
// The mutation score of src/core today, from several partial passes (see docs/mutation.md):
//
//   node scripts/mutation-score.mjs --base reports/mutation/runs/core-merged.json \
//     [--fresh reports/mutation/runs/gateway-context-run5.json,…] \
//     [--ranges reports/mutation/runs/ranges-run6.json,…] [--rechecks 'reports/mutation/runs/recheck-*.tsv']
//
// Per file: the mutants of the freshest whole-file run (`--fresh`, else `--base`) that still
// stand on kept lines of today's source (matched by a longest common subsequence, as
// mutation-recheck.mjs does), with the outcome a re-check TSV gave them; plus every mutant of the
// `--ranges` runs (Stryker on the new or changed lines only). Detected = Killed, or Timeout that
// no re-check found surviving, or a re-check's "killed"/"hang". Score = detected / (all − compile
// errors). It prints one row per file and the total, and the survivors still alive.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { lineMap, relocate } from './lib/line-map.mjs';

const { values } = parseArgs({
  options: {
    base: { type: 'string' },
    fresh: { type: 'string', default: '' },
    ranges: { type: 'string', default: '' },
    rechecks: { type: 'string', default: '' },
    survivors: { type: 'boolean', default: false },
  },
});
const root = resolve(new URL('..', import.meta.url).pathname);
const list = (text) => text.split(',').filter(Boolean).map((p) => resolve(p));
const read = (path) => JSON.parse(readFileSync(path, 'utf8'));
const base = read(resolve(values.base));
const fresh = list(values.fresh).map(read);
const ranges = list(values.ranges).map(read);

/** Every re-check row, by `file:line:col mutator replacement` in the coordinates of its report. */
const rechecks = new Map();
for (const pattern of list(values.rechecks)) {
  const dir = dirname(pattern);
  const re = new RegExp(`^${basename(pattern).replace(/[.+]/g, '\\$&').replace(/\*/g, '.*')}$`);
  for (const name of readdirSync(dir).filter((n) => re.test(n)).sort()) {
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n').slice(1)) {
      const [location, mutator, replacement, , now] = line.split('\t');
      if (!now || now === 'changed') continue;
      // Tests are only ever added: a kill seen by any re-check stands over an earlier "survived".
      const k = `${location.replace(/→\d+$/, '')}\t${mutator}\t${replacement}`;
      if (rechecks.get(k) !== 'killed' && rechecks.get(k) !== 'hang') rechecks.set(k, now);
    }
  }
}

const key = (file, m) => `${file}:${m.location.start.line}:${m.location.start.column}\t${m.mutatorName}\t${JSON.stringify(m.replacement).slice(0, 80)}`;
const outcome = (file, m) => {
  const again = rechecks.get(key(file, m));
  if (m.status === 'CompileError') return 'compile';
  if (m.status === 'Killed') return 'killed';
  if (again === 'killed' || again === 'hang') return again;
  if (again === 'survived') return 'survived';
  return m.status === 'Timeout' ? 'timeout' : 'survived';
};

const files = new Set([...Object.keys(base.files), ...fresh.flatMap((r) => Object.keys(r.files))]);
const rows = [];
const alive = [];
let total = { detected: 0, valid: 0 };
for (const file of [...files].sort()) {
  const current = readFileSync(join(root, file), 'utf8').split('\n');
  const whole = fresh.find((r) => r.files[file]) ?? base;
  const entry = whole.files[file];
  const map = lineMap(entry.source.split('\n'), current);
  const counts = { detected: 0, valid: 0, dropped: 0, ranged: 0 };
  const count = (file, m, label) => {
    const o = outcome(file, m);
    if (o === 'compile') return;
    counts.valid++;
    if (o === 'survived') alive.push(`${label} ${file}:${m.location.start.line}:${m.location.start.column} ${m.mutatorName} ${JSON.stringify(m.replacement).slice(0, 60)}`);
    else counts.detected++;
  };
  for (const m of entry.mutants) {
    if (relocate(map, m.location) === null) {
      counts.dropped++;
      continue;
    }
    count(file, m, whole === base ? 'base' : 'fresh');
  }
  for (const r of ranges) {
    for (const m of r.files[file]?.mutants ?? []) {
      counts.ranged++;
      count(file, m, 'range');
    }
  }
  total = { detected: total.detected + counts.detected, valid: total.valid + counts.valid };
  rows.push(`| ${file} | ${whole === base ? 'merged runs 1-4' : 'fresh run'} | ${counts.dropped} | ${counts.ranged} | ${counts.detected}/${counts.valid} | ${((counts.detected / Math.max(1, counts.valid)) * 100).toFixed(1)} |`);
}
console.log('| file | whole-file run | its mutants on changed lines (dropped) | mutants of the changed-lines runs | detected / valid | score % |');
console.log('|---|---|---:|---:|---:|---:|');
for (const row of rows) console.log(row);
console.log(`| **src/core** | | | | **${total.detected}/${total.valid}** | **${((total.detected / total.valid) * 100).toFixed(1)}** |`);
if (values.survivors) for (const line of alive) console.log(line);
