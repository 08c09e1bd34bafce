/**
 * Loads a behaviour scenario from its Markdown file: the rows of the fenced `marbles` block
 * (`label: marble`) and the value legend (a table whose first column is the marble letter and
 * whose other columns are fields). Tests take their marbles and expected values from here, so a
 * changed diagram fails a test, and the pictures (scripts/render-marbles) are drawn from the same
 * rows.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TestScheduler } from 'rxjs/testing';
import assert from 'node:assert/strict';

export interface Scenario {
  readonly title: string;
  readonly rows: Readonly<Record<string, string>>;
  readonly legend: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** A row by label; throws when the diagram has none, so a renamed row fails loudly. */
  row(label: string): string;
}

export function parseScenario(markdown: string): Scenario {
  const title = /^#\s+(.+)$/m.exec(markdown)?.[1]?.trim() ?? '';
  const block = /```marbles\n([\s\S]*?)```/.exec(markdown)?.[1];
  if (block === undefined) throw new Error('no ```marbles block');
  const rows: Record<string, string> = {};
  for (const line of block.split('\n')) {
    const match = /^\s*([\w.$-]+):(.*)$/.exec(line);
    if (match) rows[match[1]!] = match[2]!.trimEnd();
  }
  const legend: Record<string, Record<string, unknown>> = {};
  const tableLines = markdown.split('\n').filter((l) => /^\|.*\|\s*$/.test(l.trim()));
  let header: string[] | undefined;
  for (const line of tableLines) {
    const cells = line.trim().slice(1, -1).split('|').map((c) => c.trim());
    if (cells.every((c) => /^:?-+:?$/.test(c))) continue;
    if (!header || cells[0] === 'value') {
      header = cells;
      continue;
    }
    const [key, ...rest] = cells;
    const entry: Record<string, unknown> = {};
    rest.forEach((cell, i) => {
      const field = header![i + 1];
      if (field) entry[field] = parseCell(cell);
    });
    legend[key!.replace(/`/g, '')] = entry;
  }
  return {
    title,
    rows,
    legend,
    row(label) {
      const value = rows[label];
      if (value === undefined) throw new Error(`the diagram has no row '${label}'`);
      return value;
    },
  };
}

function parseCell(cell: string): unknown {
  const text = cell.replace(/`/g, '');
  if (text === 'null') return null;
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}

/** Loads the scenario next to a test file: `scenario(import.meta.url)` reads `same-name.md`. */
export function scenario(testFileUrl: string): Scenario {
  const path = fileURLToPath(testFileUrl).replace(/\.test\.ts$/, '.md');
  return parseScenario(readFileSync(path, 'utf8'));
}

/** A TestScheduler that compares with node's deep strict equality. */
export function testScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => assert.deepStrictEqual(actual, expected));
}

/** The frames of the `^` marks of a row (for rows that show when calls were made, not subscriptions). */
export function callFrames(row: string): number[] {
  // Parsed inside run() so that a character is one frame (outside it is ten).
  return new TestScheduler(() => undefined).run(() =>
    TestScheduler.parseMarbles(row.replace(/\^/g, 'x'), undefined, undefined, undefined, true)
      .filter((message) => message.notification.kind === 'N')
      .map((message) => message.frame),
  );
}
