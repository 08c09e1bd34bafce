/**
 * examples/dashboard: the mapping streams bound to a web page over server-sent events.
 *
 * The browser test drives the page in Debian's headless chromium (playwright-core): every
 * mapping shows `mapped`, then the simulator's new external address, then one mapping's button
 * makes it `unmapped` on the page and removes it from the simulator's table; at the end the
 * table is empty. With RXNAT_SCREENSHOT=1 it also writes docs/dashboard.png. Without /usr/bin/chromium it skips, or
 * fails when RXNAT_REQUIRE_BROWSER=1 (CI).
 *
 * Network safety: the dashboard binds 127.0.0.1 and maps through the loopback simulator only;
 * chromium runs with the closed-network flags (./chromium.ts) and opens only the dashboard.
 * No timing assertions: every wait is a generous bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { startDashboard, type MappingRow } from '../../examples/dashboard/server.js';
import { CHROMIUM_PATH, launchChromium, type HeadlessChromium } from './chromium.js';

const ROOT = resolve(import.meta.dirname, '../..');
// The README's picture is refreshed only when asked (RXNAT_SCREENSHOT=1), so a test run leaves the tree clean.
const SCREENSHOT = process.env['RXNAT_SCREENSHOT'] === '1' ? join(ROOT, 'docs', 'dashboard.png') : join(tmpdir(), `rxnat-dashboard-${process.pid}.png`);
const REQUIRE_BROWSER = process.env['RXNAT_REQUIRE_BROWSER'] === '1';
const HAVE_CHROMIUM = existsSync(CHROMIUM_PATH);
const SKIP_BROWSER =
  !HAVE_CHROMIUM && !REQUIRE_BROWSER
    ? `no Debian chromium at ${CHROMIUM_PATH} (apt-get install -y chromium); RXNAT_REQUIRE_BROWSER=1 makes this a failure`
    : false;
/** Bound on each step the page has to show. */
const STEP_MS = 60_000;

test(
  'dashboard page in headless chromium: mapped, then the new external address, then unmapped by its button',
  { skip: SKIP_BROWSER, timeout: 300_000 },
  async () => {
    assert.ok(HAVE_CHROMIUM, `RXNAT_REQUIRE_BROWSER=1 but ${CHROMIUM_PATH} is missing: apt-get install -y chromium (.ci/run installs it)`);
    const dashboard = await startDashboard();
    const { sim } = dashboard;
    const ids = dashboard.rows().map((row) => row.id);
    let chromium: HeadlessChromium | undefined;
    try {
      chromium = await launchChromium();
      const context = await chromium.browser.newContext({ viewport: { width: 1180, height: 720 } });
      const page = await context.newPage();
      page.setDefaultTimeout(STEP_MS);
      const row = (id: string, attributes = ''): ReturnType<typeof page.locator> => page.locator(`#mappings tr[data-id="${id}"]${attributes}`);
      const field = (id: string, name: string): ReturnType<typeof page.locator> => row(id).locator(`[data-field="${name}"]`);
      await page.goto(dashboard.url);

      // 1. every mapping is mapped, at the address its stream reports
      for (const id of ids) await row(id, '[data-status="mapped"]').waitFor();
      assert.equal(await page.locator('#mappings tbody tr').count(), ids.length);
      const before = sim.table.externalIp;
      for (const id of ids) {
        const text = (await field(id, 'address').textContent()) ?? '';
        assert.match(text, new RegExp(`^${before.replaceAll('.', '\\.')}:\\d+$`), `${id}: address cell ${JSON.stringify(text)}`);
        assert.equal(await field(id, 'status').textContent(), 'mapped');
      }
      assert.equal(sim.table.list().length, ids.length, 'one simulator entry per mapping');

      // 2. the external address changes (the page's button POSTs to the server): every row follows
      await page.click('#change-ip');
      await page.locator('#external-ip').filter({ hasNotText: before }).waitFor();
      const after = ((await page.locator('#external-ip').textContent()) ?? '').trim();
      assert.notEqual(after, before);
      assert.equal(sim.table.externalIp, after, 'the page shows the simulator\'s new address');
      for (const id of ids) {
        await row(id, '[data-status="mapped"]').locator('[data-field="address"]', { hasText: `${after}:` }).waitFor();
      }

      // 3. one mapping's button: that row becomes unmapped (the stream deleted it), the others stay
      const [gone, ...kept] = ids as [MappingRow['id'], ...MappingRow['id'][]];
      const goneRow = dashboard.rows().find((r) => r.id === gone)!;
      await field(gone, 'unmap').click();
      await row(gone, '[data-status="unmapped"][data-phase="stopped"]').waitFor();
      assert.equal(await field(gone, 'status').textContent(), 'unmapped');
      assert.equal(await field(gone, 'address').textContent(), '—');
      assert.equal(await field(gone, 'unmap').isDisabled(), true);
      const entries = sim.table.list();
      assert.equal(
        entries.some((m) => m.protocol === goneRow.protocol && m.internalPort === goneRow.internalPort),
        false,
        `the simulator still holds ${gone}: ${JSON.stringify(entries)}`,
      );
      assert.equal(entries.length, kept.length);
      for (const id of kept) assert.equal(await field(id, 'status').textContent(), 'mapped', `${id} still mapped`);
      // the page's gateway table follows the simulator (it is pushed every 500 ms when it changed)
      await page.waitForFunction(`document.querySelectorAll('#gateway-table tbody tr[data-via]').length === ${kept.length}`, undefined, { timeout: STEP_MS });

      // 4. the picture for the README (after the address change's highlight has faded)
      await page.waitForTimeout(1500);
      mkdirSync(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true, animations: 'disabled' });
      await context.close();
    } finally {
      const left = (await chromium?.close()) ?? [];
      await dashboard.close();
      assert.deepEqual(left, [], 'chromium processes outlived the browser');
    }
    assert.deepEqual(sim.table.list(), [], 'every mapping deleted on the simulator');
  },
);

test('npm run example:dashboard: prints its URL, serves the page, stops cleanly on SIGINT', { timeout: 120_000 }, async () => {
  // The script's command itself (not through npm), so that SIGINT goes to the server's PID.
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'examples/dashboard/main.ts')], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    const url = await until(() => /rxnat dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(stdout)?.[1], 'the URL line', () => stdout + stderr);
    const page = await (await fetch(url)).text();
    assert.match(page, /<table id="mappings">/);
    await until(
      async () => {
        const state = (await (await fetch(`${url}api/state`)).json()) as { mappings: MappingRow[] };
        return state.mappings.length === 3 && state.mappings.every((m) => m.state?.status === 'mapped') ? true : undefined;
      },
      'every mapping mapped',
      () => stdout + stderr,
    );
    // the POST endpoints refuse other origins and bad input
    const foreign = await fetch(`${url}api/external-ip`, { method: 'POST', headers: { origin: 'http://example.invalid' } });
    assert.equal(foreign.status, 403);
    const bad = await fetch(`${url}api/external-ip`, { method: 'POST', body: JSON.stringify({ ip: 'not-an-ip' }) });
    assert.equal(bad.status, 400);
    assert.equal((await fetch(`${url}api/mappings/nope/unmap`, { method: 'POST' })).status, 404);

    child.kill('SIGINT');
    const code = await Promise.race([exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 60_000).unref())]);
    assert.equal(code, 0, `exit ${code}\n${stdout}\n${stderr}`);
    assert.match(stdout, /dashboard closed; simulator table empty/);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  }
});

/** Polls `probe` (every 200 ms, for at most 60 s) until it returns a value. */
async function until<T>(probe: () => T | undefined | Promise<T | undefined>, what: string, output: () => string): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await Promise.resolve()
      .then(probe)
      .catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`no ${what} within 60 s\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
