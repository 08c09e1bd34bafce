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
import type { BenchResults } from '../../bench/lib/types.js';

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
    const chart = readFileSync(svg, 'utf8');
    assert.match(chart, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(chart, /<rect width="\d+" height="\d+" fill="#ffffff"\/>/);
    assert.match(chart, /failed: Error: Service not found/);
    assert.ok(chart.trimEnd().endsWith('</svg>'));
    assert.match(written.summary, /rxnat pmp\(\) within 1\.2x/);
  });

  it('takes each section from the newest file that ran it', () => {
    const newer: BenchResults = { ...fixture(), startedAt: '2026-03-01T00:00:00.000Z', latency: { ...fixture().latency!, skipped: 'no root', contestants: [] }, scale: null, footprint: null };
    writeFileSync(join(dir, '2026-03-01T00-00-00.000Z.json'), JSON.stringify(newer));
    const composed = composeLatest(dir)!;
    assert.equal(composed.sources.latency, '2026-01-01T00-00-00.000Z.json');
    assert.equal(composed.sources.scale, '2026-01-01T00-00-00.000Z.json');
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

  it('renders a skipped latency section without a chart', () => {
    const results: BenchResults = { ...fixture(), latency: { ...fixture().latency!, skipped: 'not root', contestants: [] } };
    const composed = { results, sources: { latency: 'x.json', scale: 'x.json', footprint: 'x.json' } };
    assert.match(renderMarkdown(composed), /Skipped: not root\./);
    assert.match(renderSvg(composed), /<svg/);
  });
});
