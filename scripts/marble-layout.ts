/**
 * Draws the behaviour contract: turns a scenario's Markdown (marbles/NN-name.md) into one SVG
 * picture. Pure and deterministic (text in, text out; no clock, no file system), so the
 * pictures in docs/marbles can be checked for being in sync with the diagrams.
 *
 * Rows come from `parseScenario` (the same parser the marble tests use) and frames from rxjs's
 * own marble parser, run inside `TestScheduler.run` where one character is one frame. Time is
 * drawn to scale for short stretches only: a long stretch without events (a 20 s lease timer
 * between 1 ms steps) is drawn as a fixed-width shaded break, marked ⫽ and labelled ("20 s").
 */
import { TestScheduler } from 'rxjs/testing';
import { parseScenario } from '../marbles/contract.js';

/** One notification of a value row: `a` (N), `#` (E) or `|` (C) at a frame. */
export interface MarbleEvent {
  readonly frame: number;
  readonly kind: 'N' | 'E' | 'C';
  /** The marble letter for N; empty for E and C. */
  readonly value: string;
}

/** A row of a diagram, as drawn: a stream of values, a subscription span, or call ticks. */
export type RowModel =
  | { readonly kind: 'values'; readonly label: string; readonly events: readonly MarbleEvent[] }
  | { readonly kind: 'subscription'; readonly label: string; readonly from: number; readonly to: number | null }
  | { readonly kind: 'calls'; readonly label: string; readonly frames: readonly number[] };

/** One fenced `marbles` block; `caption` is the paragraph before it (for every block after the first). */
export interface BlockModel {
  readonly caption: string | null;
  readonly rows: readonly RowModel[];
}

export interface ScenarioModel {
  readonly title: string;
  readonly blocks: readonly BlockModel[];
  readonly legend: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

export interface ModelOptions {
  /**
   * Labels of rows that show when calls were made (read with `callFrames` by the test): drawn
   * as ticks even when they hold a single `^`, which would otherwise be read as a subscription.
   */
  readonly callRows?: ReadonlySet<string>;
}

const FENCE = '```marbles\n';

/** Parses every `marbles` block of a scenario file and classifies its rows. */
export function scenarioModel(markdown: string, options: ModelOptions = {}): ScenarioModel {
  const whole = parseScenario(markdown);
  const blocks: BlockModel[] = [];
  let from = 0;
  let previousEnd = -1;
  for (;;) {
    const start = markdown.indexOf(FENCE, from);
    if (start === -1) break;
    const end = markdown.indexOf('```', start + FENCE.length);
    if (end === -1) throw new Error('unterminated ```marbles block');
    const { rows } = parseScenario(markdown.slice(start));
    blocks.push({
      caption: previousEnd === -1 ? null : captionBefore(markdown.slice(previousEnd + 3, start)),
      rows: Object.entries(rows).map(([label, row]) => rowModel(label, row, options.callRows)),
    });
    previousEnd = end;
    from = end + 3;
  }
  if (blocks.length === 0) throw new Error('no ```marbles block');
  return { title: whole.title, blocks, legend: whole.legend };
}

/** The last plain paragraph of a stretch of Markdown (no bullets, tables or headings), unformatted. */
function captionBefore(text: string): string | null {
  const paragraphs = text
    .split(/\n\s*\n/)
    .map((p) => p.trim())
    .filter((p) => p !== '' && !/^[-*|#]/.test(p));
  const last = paragraphs[paragraphs.length - 1];
  return last === undefined ? null : last.replace(/\s+/g, ' ').replace(/[`*_]/g, '');
}

/** Frames are only one per character inside `run`; outside it a character is ten frames. */
function inRunMode<T>(work: () => T): T {
  return new TestScheduler(() => undefined).run(work);
}

/** What is left of a row once frames (`-`), spaces and time progressions are taken out. */
function marksOf(row: string): string {
  return row.replace(/(^|\s)\d+(?:\.\d+)?(?:ms|s|m)(?=\s)/g, ' ').replace(/[\s-]/g, '');
}

export function rowModel(label: string, row: string, callRows: ReadonlySet<string> = new Set()): RowModel {
  const marks = marksOf(row);
  if (/^[\^!]+$/.test(marks)) {
    const carets = marks.replace(/!/g, '').length;
    if (callRows.has(label) || (carets > 1 && !marks.includes('!'))) {
      const frames = inRunMode(() =>
        TestScheduler.parseMarbles(row.replace(/\^/g, 'x').replace(/!/g, '-'), undefined, undefined, undefined, true)
          .filter((message) => message.notification.kind === 'N')
          .map((message) => message.frame),
      );
      return { kind: 'calls', label, frames };
    }
    const log = inRunMode(() => TestScheduler.parseMarblesAsSubscriptions(row, true));
    return {
      kind: 'subscription',
      label,
      from: log.subscribedFrame,
      to: log.unsubscribedFrame === Infinity ? null : log.unsubscribedFrame,
    };
  }
  const events = inRunMode(() =>
    TestScheduler.parseMarbles(row, undefined, undefined, undefined, true).map((message): MarbleEvent => {
      const { notification } = message;
      if (notification.kind === 'N') return { frame: message.frame, kind: 'N', value: String(notification.value) };
      return { frame: message.frame, kind: notification.kind, value: '' };
    }),
  );
  return { kind: 'values', label, events };
}

// ---------------------------------------------------------------------------------------------
// Drawing

const UNIT = 26; // px per frame drawn to scale
const MAX_SCALED_GAP = 12; // empty frames drawn to scale; longer stretches become breaks
const BREAK = 76; // px of a break, whatever time it stands for
const MIN_FRAMES = 8; // a diagram is drawn at least this long, so a lone mark still has a line
const ROW = 36; // px per row
const PAD = 20;
const R = 10; // value circle radius
const MONO = "ui-monospace, SFMono-Regular, Menlo, Consolas, 'DejaVu Sans Mono', monospace";
const SANS = "-apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, 'DejaVu Sans', sans-serif";
const MONO_CHAR = 0.61; // em, width of a monospace character
const SANS_CHAR = 0.56; // em, a generous average for proportional text

const INK = '#1f2937';
const MUTED = '#6b7280';
const FAINT = '#e5e7eb';
const BAND = '#f3f4f6';
const SUBSCRIBED = '#2563eb';
const CALL = '#7c3aed';
const ERROR = '#b91c1c';

/** Legend `status` colours: the lifecycle reads grey → green, amber when degraded, red when lost. */
const STATUS: Readonly<Record<string, string>> = {
  mapping: '#6b7280',
  mapped: '#15803d',
  degraded: '#b45309',
  unmapped: '#dc2626',
};
/** Values without a status: told apart, not ranked. */
const PALETTE = ['#2563eb', '#0f766e', '#9333ea', '#c2410c', '#be185d', '#4338ca', '#0369a1', '#4d7c0f'];

interface Break {
  readonly x0: number;
  readonly x1: number;
  /** Time the break stands for: from the frame before it to `to`. */
  readonly ms: number;
  /** The first frame after the break. */
  readonly to: number;
}

interface Timeline {
  /** Centre of the `index`th mark drawn at `frame` (sync groups put several at one frame). */
  x(frame: number, index?: number): number;
  readonly start: number;
  readonly end: number;
  readonly keys: readonly number[];
  readonly breaks: readonly Break[];
}

/** How many marks each row draws at each frame; the widest row sets the frame's width. */
function marksPerFrame(row: RowModel): Map<number, number> {
  const counts = new Map<number, number>();
  const add = (frame: number): void => void counts.set(frame, (counts.get(frame) ?? 0) + 1);
  if (row.kind === 'values') row.events.forEach((e) => add(e.frame));
  else if (row.kind === 'calls') row.frames.forEach(add);
  else {
    add(row.from);
    if (row.to !== null) add(row.to);
  }
  return counts;
}

function timeline(rows: readonly RowModel[], start: number): Timeline {
  const width = new Map<number, number>([[0, 1]]);
  for (const row of rows) {
    for (const [frame, count] of marksPerFrame(row)) width.set(frame, Math.max(width.get(frame) ?? 1, count));
  }
  const keys = [...width.keys()].sort((a, b) => a - b);
  const slot = new Map<number, number>();
  const breaks: Break[] = [];
  let x = start;
  keys.forEach((key, i) => {
    slot.set(key, x);
    x += (width.get(key) ?? 1) * UNIT;
    const next = keys[i + 1];
    if (next === undefined) return;
    const empty = next - key - 1;
    if (empty <= MAX_SCALED_GAP) {
      x += empty * UNIT;
    } else {
      breaks.push({ x0: x + 6, x1: x + BREAK - 6, ms: next - key, to: next });
      x += BREAK;
    }
  });
  return {
    x: (frame, index = 0) => (slot.get(frame) ?? start) + (index + 0.5) * UNIT,
    start,
    end: Math.max(x + UNIT, start + MIN_FRAMES * UNIT),
    keys,
    breaks,
  };
}

/** 20000 → "20 s", 20001 → "20.001 s", 13 → "13 ms". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  return `${(ms / 1000).toFixed(3).replace(/\.?0+$/, '')} s`;
}

/**
 * The label of a break: exact when round, else to a tenth of a second ("≈9 s" for 8995 ms). The
 * odd milliseconds come from one-frame marks next to the break; the axis below gives exact times.
 */
export function formatBreak(ms: number): string {
  if (ms < 1000 || ms % 1000 === 0) return formatDuration(ms);
  return `≈${(Math.round(ms / 100) / 10).toFixed(1).replace(/\.0$/, '')} s`;
}

function n(value: number): string {
  return String(Math.round(value * 100) / 100);
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function textWidth(text: string, size: number, mono: boolean): number {
  return text.length * size * (mono ? MONO_CHAR : SANS_CHAR);
}

/** Greedy word wrap to a pixel width (estimated, so deterministic). */
function wrap(text: string, size: number, maxWidth: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    const candidate = line === '' ? word : `${line} ${word}`;
    if (line !== '' && textWidth(candidate, size, false) > maxWidth) {
      lines.push(line);
      line = word;
    } else {
      line = candidate;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/** Colour per marble letter: the legend's status when it has one, else a palette in order of appearance. */
function colours(model: ScenarioModel): Map<string, string> {
  const letters: string[] = [];
  for (const block of model.blocks) {
    for (const row of block.rows) {
      if (row.kind !== 'values') continue;
      for (const e of row.events) if (e.kind === 'N' && !letters.includes(e.value)) letters.push(e.value);
    }
  }
  for (const letter of Object.keys(model.legend)) if (!letters.includes(letter)) letters.push(letter);
  const out = new Map<string, string>();
  let next = 0;
  for (const letter of letters) {
    const status = model.legend[letter]?.['status'];
    const fixed = typeof status === 'string' ? STATUS[status] : undefined;
    out.set(letter, fixed ?? PALETTE[next++ % PALETTE.length]!);
  }
  return out;
}

// Marks, each centred on (x, y).

function valueMark(x: number, y: number, letter: string, fill: string): string {
  return (
    `<circle cx="${n(x)}" cy="${n(y)}" r="${R}" fill="${fill}" stroke="#ffffff" stroke-width="1.5"/>` +
    `<text x="${n(x)}" y="${n(y + 4.5)}" text-anchor="middle" font-family="${MONO}" font-size="13" font-weight="700" fill="#ffffff">${esc(letter)}</text>`
  );
}

function errorMark(x: number, y: number): string {
  const d = 6.5;
  return `<path d="M${n(x - d)} ${n(y - d)}L${n(x + d)} ${n(y + d)}M${n(x + d)} ${n(y - d)}L${n(x - d)} ${n(y + d)}" stroke="${ERROR}" stroke-width="3" stroke-linecap="round"/>`;
}

function completeMark(x: number, y: number): string {
  return `<path d="M${n(x)} ${n(y - 11)}V${n(y + 11)}" stroke="${INK}" stroke-width="3" stroke-linecap="round"/>`;
}

function bracket(x: number, y: number, side: 'open' | 'close'): string {
  const arm = side === 'open' ? 5 : -5;
  return `<path d="M${n(x + arm)} ${n(y - 11)}H${n(x)}V${n(y + 11)}H${n(x + arm)}" fill="none" stroke="${SUBSCRIBED}" stroke-width="2.5"/>`;
}

function callTick(x: number, y: number): string {
  return (
    `<path d="M${n(x)} ${n(y - 11)}V${n(y + 5)}" stroke="${CALL}" stroke-width="3" stroke-linecap="round"/>` +
    `<path d="M${n(x - 5)} ${n(y + 11)}L${n(x)} ${n(y + 4)}L${n(x + 5)} ${n(y + 11)}Z" fill="${CALL}"/>`
  );
}

function arrowHead(x: number, y: number, colour: string): string {
  return `<path d="M${n(x - 8)} ${n(y - 5)}L${n(x)} ${n(y)}L${n(x - 8)} ${n(y + 5)}Z" fill="${colour}"/>`;
}

/** ⫽ across a line: the line is cut and two slanted strokes stand in the gap. */
function breakMark(x: number, y: number): string {
  return (
    `<rect x="${n(x - 5)}" y="${n(y - 4)}" width="10" height="8" fill="${BAND}"/>` +
    `<path d="M${n(x - 7)} ${n(y + 8)}L${n(x - 1)} ${n(y - 8)}M${n(x + 1)} ${n(y + 8)}L${n(x + 7)} ${n(y - 8)}" stroke="${MUTED}" stroke-width="1.5"/>`
  );
}

function line(x0: number, x1: number, y: number, colour: string, width: number, dashed = false): string {
  const dash = dashed ? ' stroke-dasharray="3 4"' : '';
  return `<path d="M${n(x0)} ${n(y)}H${n(x1)}" stroke="${colour}" stroke-width="${width}"${dash}/>`;
}

/** Draws one row; returns the SVG and the right end of its line (for break marks). */
function drawRow(row: RowModel, y: number, t: Timeline, colour: Map<string, string>): { svg: string; reach: number } {
  const parts: string[] = [];
  if (row.kind === 'values') {
    const terminal = row.events.find((e) => e.kind !== 'N');
    const indexAt = indexer();
    const placed = row.events.map((e) => ({ e, x: t.x(e.frame, indexAt(e.frame)) }));
    const reach = terminal ? placed.find((p) => p.e === terminal)!.x : t.end;
    parts.push(line(t.start, reach, y, INK, 1.5));
    parts.push(groups(row.events.map((e) => e.frame), y, t));
    if (!terminal) parts.push(arrowHead(t.end, y, INK));
    for (const { e, x } of placed) {
      if (e.kind === 'N') parts.push(valueMark(x, y, e.value, colour.get(e.value) ?? PALETTE[0]!));
      else if (e.kind === 'E') parts.push(errorMark(x, y));
      else parts.push(completeMark(x, y));
    }
    return { svg: parts.join(''), reach };
  }
  parts.push(line(t.start, t.end, y, '#9ca3af', 1, true));
  if (row.kind === 'calls') {
    parts.push(groups(row.frames, y, t));
    const indexAt = indexer();
    for (const frame of row.frames) parts.push(callTick(t.x(frame, indexAt(frame)), y));
    return { svg: parts.join(''), reach: t.end };
  }
  const x0 = t.x(row.from);
  const x1 = row.to === null ? t.end : t.x(row.to, row.to === row.from ? 1 : 0);
  parts.push(`<rect x="${n(x0)}" y="${n(y - 5)}" width="${n(x1 - x0)}" height="10" fill="#dbeafe"/>`);
  parts.push(line(x0, x1, y, SUBSCRIBED, 2));
  parts.push(bracket(x0, y, 'open'));
  parts.push(row.to === null ? arrowHead(t.end, y, SUBSCRIBED) : bracket(x1, y, 'close'));
  return { svg: parts.join(''), reach: t.end };
}

/** A rounded outline around marks that share a frame, as `(ab)` groups them in the marble. */
function groups(frames: readonly number[], y: number, t: Timeline): string {
  const counts = new Map<number, number>();
  for (const frame of frames) counts.set(frame, (counts.get(frame) ?? 0) + 1);
  const parts: string[] = [];
  for (const [frame, count] of counts) {
    if (count < 2) continue;
    const x0 = t.x(frame, 0) - R - 3;
    const x1 = t.x(frame, count - 1) + R + 3;
    parts.push(
      `<rect x="${n(x0)}" y="${n(y - R - 3)}" width="${n(x1 - x0)}" height="${2 * R + 6}" rx="${R + 3}" fill="#ffffff" stroke="#9ca3af" stroke-width="1.25"/>`,
    );
  }
  return parts.join('');
}

/** Counts marks already placed at a frame, so a sync group's marks sit side by side. */
function indexer(): (frame: number) => number {
  const seen = new Map<number, number>();
  return (frame) => {
    const index = seen.get(frame) ?? 0;
    seen.set(frame, index + 1);
    return index;
  };
}

interface Drawn {
  readonly svg: string;
  readonly width: number;
  readonly height: number;
}

function drawBlock(block: BlockModel, top: number, labelWidth: number, colour: Map<string, string>, captionWidth: number): Drawn {
  const parts: string[] = [];
  let y = top;
  if (block.caption !== null) {
    for (const text of wrap(block.caption, 13, captionWidth)) {
      y += 18;
      parts.push(`<text x="${PAD}" y="${n(y)}" font-family="${SANS}" font-size="13" font-style="italic" fill="${INK}">${esc(text)}</text>`);
    }
    y += 8;
  }
  const t = timeline(block.rows, PAD + labelWidth + 12);
  const axis = t.breaks.length > 0 ? y + 14 : y - 2; // break labels sit on this baseline
  const firstRow = axis + 12 + ROW / 2;
  const rowsEnd = firstRow + (block.rows.length - 1) * ROW + ROW / 2;
  // Under a diagram with breaks, the exact time at 0 and after each break.
  const bottom = t.breaks.length > 0 ? rowsEnd + 18 : rowsEnd;
  // Shaded breaks and faint guides behind everything, so aligned marks read as simultaneous.
  for (const b of t.breaks) {
    parts.push(`<rect x="${n(b.x0)}" y="${n(axis + 4)}" width="${n(b.x1 - b.x0)}" height="${n(bottom - axis - 4)}" fill="${BAND}"/>`);
    parts.push(
      `<text x="${n((b.x0 + b.x1) / 2)}" y="${n(axis)}" text-anchor="middle" font-family="${SANS}" font-size="11" fill="${MUTED}">${esc(formatBreak(b.ms))}</text>`,
    );
  }
  for (const key of t.keys) {
    parts.push(`<path d="M${n(t.x(key))} ${n(axis + 4)}V${n(rowsEnd)}" stroke="${FAINT}" stroke-width="1" stroke-dasharray="2 3"/>`);
  }
  if (t.breaks.length > 0) {
    for (const frame of [0, ...t.breaks.map((b) => b.to)]) {
      parts.push(
        `<text x="${n(t.x(frame))}" y="${n(rowsEnd + 12)}" text-anchor="middle" font-family="${SANS}" font-size="10.5" fill="${MUTED}">${esc(frame === 0 ? '0' : formatDuration(frame))}</text>`,
      );
    }
  }
  block.rows.forEach((row, i) => {
    const rowY = firstRow + i * ROW;
    parts.push(
      `<text x="${n(PAD + labelWidth)}" y="${n(rowY + 4)}" text-anchor="end" font-family="${MONO}" font-size="12" fill="${INK}">${esc(row.label)}</text>`,
    );
    const { svg, reach } = drawRow(row, rowY, t, colour);
    parts.push(svg);
    for (const b of t.breaks) {
      const middle = (b.x0 + b.x1) / 2;
      if (middle < reach) parts.push(breakMark(middle, rowY));
    }
  });
  return { svg: parts.join('\n'), width: t.end + 12 + PAD, height: bottom - top };
}

/** The legend table under the diagram: a value's mark, then its fields in aligned columns. */
function drawLegend(model: ScenarioModel, top: number, colour: Map<string, string>): Drawn {
  const letters = Object.keys(model.legend);
  if (letters.length === 0) return { svg: '', width: 0, height: 0 };
  const fields: string[] = [];
  for (const letter of letters) for (const field of Object.keys(model.legend[letter]!)) if (!fields.includes(field)) fields.push(field);
  const cell = (letter: string, field: string): string => {
    const value = model.legend[letter]![field];
    return value === undefined ? '' : String(value);
  };
  const size = 12;
  const columnX: number[] = [];
  let x = PAD + 2 * R + 14;
  for (const field of fields) {
    columnX.push(x);
    const widest = Math.max(field.length, ...letters.map((l) => cell(l, field).length));
    x += widest * size * MONO_CHAR + 18;
  }
  const parts: string[] = [];
  const lineHeight = 26;
  let y = top + 16;
  fields.forEach((field, i) => {
    parts.push(`<text x="${n(columnX[i]!)}" y="${n(y)}" font-family="${MONO}" font-size="${size}" font-weight="700" fill="${MUTED}">${esc(field)}</text>`);
  });
  for (const letter of letters) {
    y += lineHeight;
    parts.push(valueMark(PAD + R, y - 4, letter, colour.get(letter) ?? PALETTE[0]!));
    fields.forEach((field, i) => {
      parts.push(`<text x="${n(columnX[i]!)}" y="${n(y)}" font-family="${MONO}" font-size="${size}" fill="${INK}">${esc(cell(letter, field))}</text>`);
    });
  }
  return { svg: parts.join('\n'), width: x + PAD, height: y - top + 10 };
}

/** A one-line key to the marks this picture uses. */
function drawKey(model: ScenarioModel, top: number): Drawn {
  const rows = model.blocks.flatMap((b) => b.rows);
  const events = rows.flatMap((r) => (r.kind === 'values' ? r.events : []));
  const hasBreaks = model.blocks.some((b) => timeline(b.rows, 0).breaks.length > 0);
  const y = top + 16;
  const entries: { readonly mark: (x: number) => string; readonly text: string; readonly used: boolean }[] = [
    { mark: (x) => `<circle cx="${n(x)}" cy="${n(y)}" r="${R}" fill="#ffffff" stroke="${INK}" stroke-width="1.5"/>`, text: 'value', used: events.some((e) => e.kind === 'N') },
    { mark: (x) => errorMark(x, y), text: 'error', used: events.some((e) => e.kind === 'E') },
    { mark: (x) => completeMark(x, y), text: 'complete', used: events.some((e) => e.kind === 'C') },
    {
      mark: (x) => bracket(x - 6, y, 'open') + line(x - 6, x + 6, y, SUBSCRIBED, 2) + bracket(x + 6, y, 'close'),
      text: 'subscribed … unsubscribed',
      used: rows.some((r) => r.kind === 'subscription'),
    },
    { mark: (x) => callTick(x, y), text: 'call made', used: rows.some((r) => r.kind === 'calls') },
    {
      mark: (x) => `<rect x="${n(x - 10)}" y="${n(y - 11)}" width="20" height="22" fill="${BAND}"/>` + line(x - 10, x + 10, y, INK, 1.5) + breakMark(x, y),
      text: 'time compressed',
      used: hasBreaks,
    },
  ];
  const parts: string[] = [];
  let x = PAD + 12;
  for (const entry of entries.filter((e) => e.used)) {
    parts.push(entry.mark(x));
    parts.push(`<text x="${n(x + 18)}" y="${n(y + 4)}" font-family="${SANS}" font-size="12" fill="${MUTED}">${esc(entry.text)}</text>`);
    x += 18 + textWidth(entry.text, 12, false) + 28;
  }
  return { svg: parts.join('\n'), width: x + PAD, height: 30 };
}

/** The whole picture of one scenario file. */
export function renderScenarioSvg(model: ScenarioModel): string {
  const colour = colours(model);
  const labels = model.blocks.flatMap((b) => b.rows.map((r) => r.label));
  const labelWidth = Math.max(...labels.map((l) => textWidth(l, 12, true)));
  // First pass for the width the diagrams need; the title and captions wrap inside it.
  const probeWidth = Math.max(
    640,
    ...model.blocks.map((b) => drawBlock({ ...b, caption: null }, 0, labelWidth, colour, 0).width),
    drawLegend(model, 0, colour).width,
    drawKey(model, 0).width,
  );
  const width = Math.ceil(probeWidth);
  const titleLines = wrap(model.title, 16, width - 2 * PAD);
  const body: string[] = [];
  let y = PAD - 4;
  for (const text of titleLines) {
    y += 22;
    body.push(`<text x="${PAD}" y="${n(y)}" font-family="${SANS}" font-size="16" font-weight="700" fill="${INK}">${esc(text)}</text>`);
  }
  y += 14;
  for (const block of model.blocks) {
    const drawn = drawBlock(block, y, labelWidth, colour, width - 2 * PAD);
    body.push(drawn.svg);
    y += drawn.height + 10;
  }
  const legend = drawLegend(model, y, colour);
  if (legend.svg !== '') {
    body.push(`<path d="M${PAD} ${n(y)}H${width - PAD}" stroke="${FAINT}" stroke-width="1"/>`);
    body.push(legend.svg);
    y += legend.height;
  }
  body.push(`<path d="M${PAD} ${n(y)}H${width - PAD}" stroke="${FAINT}" stroke-width="1"/>`);
  const key = drawKey(model, y);
  body.push(key.svg);
  y += key.height;
  const height = Math.ceil(y + 8);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(model.title)}">`,
    `<title>${esc(model.title)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
