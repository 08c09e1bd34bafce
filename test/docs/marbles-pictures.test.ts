import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { checkMarblePictures, renderMarblePictures } from '../../scripts/render-marbles.js';
import { formatBreak, rowModel, scenarioModel } from '../../scripts/marble-layout.js';

test('docs/marbles pictures are in sync with marbles/*.md', () => {
  const problems = checkMarblePictures();
  assert.deepEqual(problems, [], `the marble pictures are out of date; run \`npm run marbles:render\`:\n  ${problems.join('\n  ')}`);
});

test('marble pictures are deterministic', () => {
  assert.deepEqual([...renderMarblePictures()], [...renderMarblePictures()]);
});

test('rows are read in run mode: one character per frame, time progressions in ms', () => {
  assert.deepEqual(rowModel('out', 'ab 20s c'), {
    kind: 'values',
    label: 'out',
    events: [
      { frame: 0, kind: 'N', value: 'a' },
      { frame: 1, kind: 'N', value: 'b' },
      { frame: 20002, kind: 'N', value: 'c' },
    ],
  });
  assert.deepEqual(rowModel('sub', '---^-----!'), { kind: 'subscription', label: 'sub', from: 3, to: 9 });
  assert.deepEqual(rowModel('sub', '^'), { kind: 'subscription', label: 'sub', from: 0, to: null });
  assert.deepEqual(rowModel('adds', '^ 9ms ^'), { kind: 'calls', label: 'adds', frames: [0, 10] });
  assert.deepEqual(rowModel('ipCalls', '^', new Set(['ipCalls'])), { kind: 'calls', label: 'ipCalls', frames: [0] });
});

test('every marbles block is drawn, and long waits are compressed with a labelled break', () => {
  const race = scenarioModel(readFileSync(new URL('../../marbles/10-discovery-race.md', import.meta.url), 'utf8'));
  assert.equal(race.blocks.length, 2);
  assert.match(race.blocks[1]?.caption ?? '', /^When nothing answers/);
  const svg = renderMarblePictures().get('docs/marbles/05-errors-degrade-then-unmap.svg') ?? '';
  assert.match(svg, />20 s</);
  assert.match(svg, />59 s</, 'the lease ends at 60 s less its one-second margin');
  assert.equal(formatBreak(8995), '≈9 s');
  assert.equal(formatBreak(250), '250 ms');
});
