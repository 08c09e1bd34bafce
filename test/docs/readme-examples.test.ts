/**
 * Runs every README example marked `<!-- run -->` as a user would: the block is written to a
 * temporary module with `from 'rxnat'` pointed at this checkout's source, executed with tsx,
 * and must exit 0 within its time limit. Blocks may print anything; `// prints: <text>` lines in
 * a block are checked against what it printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = resolve(import.meta.dirname, '../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/<!-- run(?::\s*([\w-]+))? -->\s*\n```ts\n([\s\S]*?)```/g)];

test('the README has runnable examples', () => {
  assert.ok(blocks.length >= 2, `found ${blocks.length} <!-- run --> blocks`);
});

for (const [index, block] of blocks.entries()) {
  const name = block[1] ?? `example ${index + 1}`;
  const code = block[2]!;
  test(`README example runs as written: ${name}`, () => {
    // Inside the checkout (build/ is git-ignored) so that rxjs resolves as it does for a user.
    mkdirSync(join(root, 'build'), { recursive: true });
    const dir = mkdtempSync(join(root, 'build', 'readme-'));
    try {
      const file = join(dir, 'example.mts');
      const source = code
        .replace(/from 'rxnat\/testing'/g, `from ${JSON.stringify(join(root, 'src/testing/index.ts'))}`)
        .replace(/from 'rxnat'/g, `from ${JSON.stringify(join(root, 'src/index.ts'))}`);
      writeFileSync(file, source);
      const result = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', timeout: 20_000 });
      assert.equal(result.status, 0, `exit ${result.status}\n${result.stdout}\n${result.stderr}`);
      for (const expected of code.matchAll(/\/\/ prints: (.+)$/gm)) {
        assert.ok(result.stdout.includes(expected[1]!.trim()), `expected output to include ${expected[1]}\n${result.stdout}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
