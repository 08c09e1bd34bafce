// Smoke test of the bench report generator on a fixture results file: it composes the latest
// results, writes the Markdown table and the SVG chart, and judges the targets. Behaviour only:
// nothing here measures speed.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { composeLatest, renderMarkdown, renderSvg, writeReport } from '../../bench/report.js';
import { evaluateTargets } from '../../bench/lib/targets.js';
import { summarize } from '../../bench/lib/stats.js';
import type { BenchResults, StartupContestantResult, StartupResults } from '../../bench/lib/types.js';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'results.json');
const fixture = (): BenchResults => JSON.parse(readFileSync(FIXTURE, 'utf8')) as BenchResults;

describe('bench report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rxnat-report-test-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(FIXTURE, join(dir, '2026-01-01T00-00-00.000Z.json'));
  // Files of other tools in the same directory are not results.
  writeFileSync(join(dir, 'soak-2026-02-01T00-00-00.000Z.json'), '{"not":"a bench result"}');

  it('writes the Markdown table and the SVG chart from the latest results', () => {
    const md = join(dir, 'latest.md');
    const svg = join(dir, 'chart.svg');
    const written = writeReport({ resultsDir: dir, md, svg });
    assert.equal(written.files.length, 2);
    const text = readFileSync(md, 'utf8');
    assert.match(text, /^# rxnat benchmark/);
    assert.match(text, /## Targets/);
    assert.match(text, /\| rxnat pmp\(\) \| IGDv2 \|/);
    assert.match(text, /nat-upnp 1\.1\.1 \| IGDv2 \| failed/);
    assert.match(text, /## Scale/);
    assert.match(text, /## Footprint/);
    assert.match(text, /## Bulk teardown/);
    assert.match(text, /\| mappings left on the gateway when all had completed \| 568 \|/);
    assert.match(text, /## Short-lease soak/);
    assert.match(text, /\| lies: max per sample \| 0 \| 0 \|/);
    const chart = readFileSync(svg, 'utf8');
    assert.match(chart, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(chart, /<rect width="\d+" height="\d+" fill="#ffffff"\/>/);
    assert.match(chart, /failed: Error: Service not found/);
    assert.ok(chart.trimEnd().endsWith('</svg>'));
    assert.match(written.summary, /rxnat pmp\(\) within 1\.2x/);
    assert.match(written.summary, /MISS {2}bulk teardown .*: mappings left on the gateway when every stream has completed = 0: 568 left/);
    // The fixture's gateway kept up (its table never fell): no lie was possible, so undecided.
    assert.match(written.summary, / {2}\? {2}short-lease soak \(upnp, .*no fault\): lies = 0 at every sample/);
  });

  it('takes each section from the newest file that ran it', () => {
    const newer: BenchResults = {
      ...fixture(),
      startedAt: '2026-03-01T00:00:00.000Z',
      latency: { ...fixture().latency!, skipped: 'no root', contestants: [] },
      scale: null,
      footprint: null,
      teardown: null,
    };
    writeFileSync(join(dir, '2026-03-01T00-00-00.000Z.json'), JSON.stringify(newer));
    const composed = composeLatest(dir)!;
    assert.equal(composed.sources.latency, '2026-01-01T00-00-00.000Z.json');
    assert.equal(composed.sources.scale, '2026-01-01T00-00-00.000Z.json');
    assert.equal(composed.sources.teardown, '2026-01-01T00-00-00.000Z.json');
    assert.equal(composed.sources.soakShort, '2026-03-01T00-00-00.000Z.json');
    assert.equal(composed.results.startedAt, '2026-03-01T00:00:00.000Z');
    assert.ok(composed.results.latency!.contestants.length > 0);
    rmSync(join(dir, '2026-03-01T00-00-00.000Z.json'));
  });

  it('judges ratio targets from medians and says when a side is missing', () => {
    const results = fixture();
    const pmp = results.latency!.contestants.find((c) => c.id === 'rxnat.pmp')!;
    const floor = results.latency!.contestants.find((c) => c.id === 'floor.pmp')!;
    pmp.summary = { ...pmp.summary!, median: 11 };
    floor.summary = { ...floor.summary!, median: 10 };
    const check = evaluateTargets(results).find((c) => c.target.startsWith('rxnat pmp()'))!;
    assert.equal(check.met, true);
    assert.ok(Math.abs(check.value! - 1.1) < 1e-9);
    floor.summary = null;
    assert.equal(evaluateTargets(results).find((c) => c.target.startsWith('rxnat pmp()'))!.met, null);
  });

  it('judges the teardown and short-lease soak targets', () => {
    const results = fixture();
    const checks = evaluateTargets(results);
    const left = checks.find((c) => c.section === 'teardown' && c.target.includes('left'))!;
    const time = checks.find((c) => c.section === 'teardown' && c.target.includes('serial time'))!;
    assert.equal(left.met, false);
    assert.equal(left.value, 568);
    assert.equal(time.met, true); // fast, but only because deletes were abandoned: the note says so
    assert.match(time.note, /abandoned/);
    results.teardown = { ...results.teardown!, leftAtCompletion: 0, completed: 999 };
    const incomplete = evaluateTargets(results).filter((c) => c.section === 'teardown');
    assert.deepEqual(incomplete.map((c) => c.met), [false, false]); // a stream that never completed misses both
    const soak = checks.filter((c) => c.section === 'soak-short');
    assert.deepEqual(soak.map((c) => c.met), [null, null]); // the router never lost a mapping: nothing to lie about
    assert.match(soak[0]!.note, /never lost a mapping/);
    // The router lost mappings and no stream said `mapped` for one: met.
    const soakShort = results.soakShort!;
    results.soakShort = { ...soakShort, runs: soakShort.runs.map((r) => ({ ...r, samples: r.samples.map((s, i) => (i === 1 ? { ...s, table: 400, mapped: 400, unmapped: 600 } : s)) })) };
    const lapsed = evaluateTargets(results).filter((c) => c.section === 'soak-short');
    assert.deepEqual(lapsed.map((c) => c.met), [true, true]);
    assert.match(lapsed[0]!.note, /router's table per sample min 400 .*unmapped per sample min 0 \/ max 600/);
    const run = results.soakShort!.runs[1]!;
    results.soakShort!.runs[1] = { ...run, lies: { ...run.lies, max: 3, samplesWithLies: 1, streams: 3, firstAtSeconds: 7 } };
    const lying = evaluateTargets(results).filter((c) => c.section === 'soak-short');
    assert.deepEqual(lying.map((c) => [c.met, c.value]), [[true, 0], [false, 3]]);
    assert.match(lying[1]!.measured, /first at 7 s/);
  });

  it('renders results written before the state sections existed', () => {
    const { teardown: _teardown, soakShort: _soakShort, ...old } = fixture();
    const text = renderMarkdown({ results: old, sources: { latency: 'x.json', startup: null, scale: 'x.json', footprint: 'x.json', teardown: null, soakShort: null } });
    assert.match(text, /## Bulk teardown[^\n]*\n\nNot run\./);
    assert.equal(evaluateTargets(old).filter((c) => c.section === 'teardown' || c.section === 'soak-short').length, 0);
  });

  it('renders a skipped latency section without a chart', () => {
    const results: BenchResults = { ...fixture(), latency: { ...fixture().latency!, skipped: 'not root', contestants: [] } };
    const composed = { results, sources: { latency: 'x.json', startup: null, scale: 'x.json', footprint: 'x.json', teardown: 'x.json', soakShort: 'x.json' } };
    assert.match(renderMarkdown(composed), /Skipped: not root\./);
    assert.match(renderSvg(composed), /<svg/);
  });
  it('judges start-up against node -e 0 + 30 ms and upnpc -i -a, and renders its tables', () => {
    const row = (id: string, label: string, until: 'request' | 'exit', samplesMs: number[]): StartupContestantResult => ({
      id,
      label,
      until,
      samplesMs,
      samplesRound: samplesMs.map((_, i) => i + 1),
      failures: [],
      firstRequest: until === 'exit' ? { exit: samplesMs.length } : { 'pcp:0': samplesMs.length },
      summary: summarize(samplesMs) ?? null,
    });
    const lab = fixture().latency!;
    const startup: StartupResults = {
      skipped: null,
      runsPerContestant: 3,
      cli: { command: ['node', 'main.js'], source: 'compiled', note: 'bundled' },
      spawn: [row('node.exit', 'node -e 0 (spawn to exit)', 'exit', [40, 42, 41]), row('rxnat.map', 'rxnat map tcp 41001', 'request', [65, 80, 66])],
      process: { ...lab, contestants: lab.contestants.filter((c) => c.kind === 'process') },
      durationMs: 1,
    };
    const results: BenchResults = { ...fixture(), startup };
    const checks = evaluateTargets(results).filter((c) => c.section === 'startup');
    const spawnCheck = checks.find((c) => c.unit === 'ms')!;
    assert.equal(spawnCheck.value, 25); // 66 - 41
    assert.equal(spawnCheck.met, true);
    assert.match(spawnCheck.note, /paired per round 25\.0 ms/);
    const text = renderMarkdown({ results, sources: { latency: 'x.json', startup: 'y.json', scale: 'x.json', footprint: 'x.json', teardown: null, soakShort: null } });
    assert.match(text, /## Start-up\n\nFrom `y\.json`/);
    assert.match(text, /\| rxnat map tcp 41001 \| 66\.0 ms \|/);
    assert.match(text, /`rxnat map` spawn to first request <= `node -e 0` \+ 30 ms \|[^\n]*\| 25\.0 ms \|[^\n]*\| 30\.0 ms \| \*\*met\*\*/);
    const slower = { ...startup, spawn: [startup.spawn[0]!, row('rxnat.map', 'rxnat map', 'request', [90, 95, 99])] };
    assert.equal(evaluateTargets({ ...results, startup: slower }).find((c) => c.unit === 'ms')!.met, false);
  });
});
