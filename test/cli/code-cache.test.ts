/**
 * The code cache of the packaged CLI's bundles (src/cli/code-cache.ts), on a small CommonJS
 * file in a temp directory: a first load writes an entry (0600, in a 0700 directory) that the
 * next load uses; an entry made for another key, a damaged one, an edited bundle, a directory
 * that is not private or cannot be made, and a cache turned off all mean the bundle is compiled
 * from its source and runs the same. The bundle/CLI wiring is in test/cli/startup.test.ts.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { codeCacheDir, loadBundle, type BundleCache } from '../../src/cli/code-cache.js';

let tmp = '';
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'rxnat-code-cache-'));
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

interface Bundle {
  readonly value: string;
  readonly dirname: string;
  readonly sum: (a: number, b: number) => number;
  readonly platform: () => string;
  readonly dynamic: () => Promise<string>;
}

/** A bundle such as scripts/build-cli.mjs writes: CommonJS, requires built-ins, one dynamic import. */
function writeBundle(value: string, name = 'cmd.cjs'): string {
  const file = join(tmp, 'dist', name);
  mkdirSync(join(tmp, 'dist'), { recursive: true });
  writeFileSync(
    file,
    [
      '"use strict";',
      `exports.value = ${JSON.stringify(value)};`,
      'exports.dirname = __dirname;',
      'exports.sum = (a, b) => a + b;',
      'exports.platform = () => require("node:os").platform();',
      'exports.dynamic = async () => (await import("node:path")).sep;',
      '',
    ].join('\n'),
  );
  return file;
}

/** A cache whose writes happen when the test says (`flush`), with what it logged. */
function cache(dir: string | null, key = '1.0.0 abc'): BundleCache & { readonly lines: string[]; flush(): void } {
  const lines: string[] = [];
  const pending: (() => void)[] = [];
  return {
    dir,
    key,
    logger: { debug: (_ns, message) => void lines.push(message) },
    schedule: (write) => void pending.push(write),
    lines,
    flush: () => pending.splice(0).forEach((write) => write()),
  };
}

async function check(bundle: Bundle, value: string, file: string): Promise<void> {
  assert.equal(bundle.value, value);
  assert.equal(bundle.dirname, join(file, '..'));
  assert.equal(bundle.sum(2, 3), 5);
  assert.equal(bundle.platform(), process.platform);
  assert.equal(await bundle.dynamic(), '/');
}

describe('codeCacheDir', () => {
  it('is $XDG_CACHE_HOME/rxnat (absolute only), else ~/.cache/rxnat; off when asked', () => {
    assert.equal(codeCacheDir({ HOME: '/home/ada' }), '/home/ada/.cache/rxnat');
    assert.equal(codeCacheDir({ HOME: '/home/ada/', XDG_CACHE_HOME: '/var/cache/ada/' }), '/var/cache/ada/rxnat');
    assert.equal(codeCacheDir({ HOME: '/home/ada', XDG_CACHE_HOME: 'relative/cache' }), '/home/ada/.cache/rxnat');
    assert.equal(codeCacheDir({ HOME: '/home/ada', XDG_CACHE_HOME: '' }), '/home/ada/.cache/rxnat');
    assert.equal(codeCacheDir({}), null);
    assert.equal(codeCacheDir({ HOME: 'nowhere' }), null);
    assert.equal(codeCacheDir({ HOME: '/home/ada', RXNAT_NO_CODE_CACHE: '1' }), null);
    assert.equal(codeCacheDir({ HOME: '/home/ada', NODE_DISABLE_COMPILE_CACHE: '1' }), null);
    assert.equal(codeCacheDir({ HOME: '/home/ada', RXNAT_NO_CODE_CACHE: '0' }), '/home/ada/.cache/rxnat');
    assert.equal(codeCacheDir({ HOME: '/home/ada', RXNAT_NO_CODE_CACHE: '' }), '/home/ada/.cache/rxnat');
  });
});

describe('loadBundle', () => {
  it('runs the bundle as require would; the first load writes an entry that the next uses', async () => {
    const file = writeBundle('one');
    const dir = join(tmp, 'cache', 'rxnat');
    const first = cache(dir);
    await check(loadBundle(file, first) as Bundle, 'one', file);
    assert.deepEqual(first.lines, ['code cache: none yet']);
    assert.equal(existsSync(dir), false, 'nothing written before the command has run');
    first.flush();
    assert.deepEqual(first.lines.slice(1), ['code cache: written']);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    const entries = readdirSync(dir);
    assert.equal(entries.length, 1);
    assert.match(entries[0]!, /^cmd-[0-9a-f]{8}\.v8cache$/);
    assert.equal(statSync(join(dir, entries[0]!)).mode & 0o777, 0o600);

    const second = cache(dir);
    await check(loadBundle(file, second) as Bundle, 'one', file);
    second.flush();
    assert.deepEqual(second.lines, ['code cache: used']);
  });

  it('an entry made for another key (rxnat version, build hash) is not used, and is replaced', async () => {
    const file = writeBundle('one');
    const dir = join(tmp, 'cache');
    const old = cache(dir, '0.9.0 abc');
    loadBundle(file, old);
    old.flush();
    const next = cache(dir, '1.0.0 def');
    await check(loadBundle(file, next) as Bundle, 'one', file);
    next.flush();
    assert.deepEqual(next.lines, ['code cache: made for another build, or damaged', 'code cache: written']);
    const again = cache(dir, '1.0.0 def');
    loadBundle(file, again);
    assert.deepEqual(again.lines, ['code cache: used']);
    assert.equal(readdirSync(dir).length, 1, 'one entry per bundle');
  });

  it('an edited bundle is compiled from its new source, not from the entry of the old one', async () => {
    const file = writeBundle('old!');
    const dir = join(tmp, 'cache');
    const first = cache(dir);
    loadBundle(file, first);
    first.flush();
    // Same length (V8 checks only the length of the source), another modification time.
    writeBundle('new!');
    utimesSync(file, new Date(2_000_000_000_000), new Date(2_000_000_000_000));
    const edited = cache(dir);
    await check(loadBundle(file, edited) as Bundle, 'new!', file);
    assert.deepEqual(edited.lines, ['code cache: made for another build, or damaged']);
  });

  // (V8's own check of its data is in startup.test.ts: in one process, V8 answers a second
  // compilation of the same source from memory and never looks at the data given.)
  it('a damaged entry (header cut short, no V8 data, garbage, empty) is compiled anew and rewritten', async () => {
    const file = writeBundle('one');
    const dir = join(tmp, 'cache');
    const first = cache(dir);
    loadBundle(file, first);
    first.flush();
    const entry = join(dir, readdirSync(dir)[0]!);
    const good = readFileSync(entry);
    const header = good.indexOf('\n', good.indexOf('\n') + 1) + 1;
    const damaged: [string, Buffer, string][] = [
      ['no V8 data', good.subarray(0, header), 'code cache: made for another build, or damaged'],
      ['header cut short', good.subarray(0, 10), 'code cache: made for another build, or damaged'],
      ['garbage', Buffer.from('not a cache entry at all\n'.repeat(40)), 'code cache: made for another build, or damaged'],
      ['empty', Buffer.alloc(0), 'code cache: made for another build, or damaged'],
    ];
    for (const [what, bytes, line] of damaged) {
      writeFileSync(entry, bytes);
      const run = cache(dir);
      await check(loadBundle(file, run) as Bundle, 'one', file);
      run.flush();
      assert.deepEqual(run.lines, [line, 'code cache: written'], what);
      const next = cache(dir);
      loadBundle(file, next);
      assert.deepEqual(next.lines, ['code cache: used'], `${what}: rewritten`);
    }
  });

  it('a directory that cannot be made: the bundle runs, nothing is written, nothing thrown', async () => {
    const file = writeBundle('one');
    writeFileSync(join(tmp, 'not-a-dir'), '');
    const run = cache(join(tmp, 'not-a-dir', 'rxnat'));
    await check(loadBundle(file, run) as Bundle, 'one', file);
    run.flush();
    assert.equal(run.lines.length, 2);
    assert.match(run.lines[1]!, /^code cache: not written \(ENOTDIR/);
  });

  it('a directory that is not private (others may write, a symbolic link) is neither read nor written', async () => {
    const file = writeBundle('one');
    const dir = join(tmp, 'cache');
    const first = cache(dir);
    loadBundle(file, first);
    first.flush();
    const entry = readdirSync(dir)[0]!;
    chmodSync(dir, 0o777);
    const open = cache(dir);
    await check(loadBundle(file, open) as Bundle, 'one', file);
    open.flush();
    assert.deepEqual(open.lines, ['code cache: directory not private to this user: not used', 'code cache: directory not private to this user: nothing written']);
    assert.deepEqual(readdirSync(dir), [entry], 'nothing written there');
    chmodSync(dir, 0o700);
    const link = join(tmp, 'link');
    symlinkSync(dir, link, 'dir');
    const linked = cache(link);
    await check(loadBundle(file, linked) as Bundle, 'one', file);
    linked.flush();
    assert.deepEqual(linked.lines, ['code cache: directory not private to this user: not used', 'code cache: directory not private to this user: nothing written']);
  });

  it('turned off (no directory): compiled every time, nothing written', async () => {
    const file = writeBundle('one');
    const run = cache(null);
    await check(loadBundle(file, run) as Bundle, 'one', file);
    run.flush();
    assert.deepEqual(run.lines, []);
  });

  it('writing an entry removes the entries of bundles that are gone', () => {
    const dir = join(tmp, 'cache');
    const gone = writeBundle('one', 'gone.cjs');
    const a = cache(dir);
    loadBundle(gone, a);
    a.flush();
    rmSync(gone);
    writeFileSync(join(dir, 'unrelated.txt'), 'kept');
    const kept = writeBundle('two', 'kept.cjs');
    const b = cache(dir);
    loadBundle(kept, b);
    b.flush();
    assert.deepEqual(b.lines, ['code cache: none yet', 'code cache: written', 'code cache: removed (its bundle is gone)']);
    assert.deepEqual(readdirSync(dir).sort(), [readdirSync(dir).find((n) => n.startsWith('kept-'))!, 'unrelated.txt'].sort());
  });

  it('an error in the bundle itself is thrown, as require would', () => {
    const file = join(tmp, 'broken.cjs');
    writeFileSync(file, 'throw new Error("broken at load");\n');
    assert.throws(() => loadBundle(file, cache(join(tmp, 'cache'))), /broken at load/);
    assert.throws(() => loadBundle(join(tmp, 'missing.cjs'), cache(join(tmp, 'cache'))), { code: 'ENOENT' });
  });
});
