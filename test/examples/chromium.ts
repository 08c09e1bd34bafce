/**
 * Debian's chromium, headless, driven by playwright-core over the DevTools protocol.
 *
 * We start the browser ourselves rather than with `chromium.launch()`, so that its flags are
 * exactly ours (the machine's network is closed: without these flags chromium tries to reach
 * the internet) and so that we know its PID. Everything it writes goes to a fresh temporary
 * folder (profile, HOME for its crash handler, TMPDIR for its sockets), removed at the end.
 * The DevTools endpoint listens on 127.0.0.1 (an ephemeral port). Teardown asks the browser to
 * close, then kills its process group, by PID, if it is still there; every process it started
 * must be gone.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (`apt-get install chromium`). Never a downloaded browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/** The flags the closed network needs (and headless without a sandbox, as root in CI). */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-breakpad',
];

const START_TIMEOUT_MS = 60_000;
const EXIT_TIMEOUT_MS = 15_000;

/** A browser we started, and how to end it. */
export interface HeadlessChromium {
  readonly browser: Browser;
  readonly pid: number;
  /** Closes the browser (killing its process group if it does not exit) and removes its folder. Resolves with the PIDs that outlived it (should be none). */
  close(): Promise<number[]>;
}

export async function launchChromium(): Promise<HeadlessChromium> {
  const dir = mkdtempSync(join(tmpdir(), 'rxnat-chromium-'));
  const profile = join(dir, 'profile');
  mkdirSync(profile);
  const child = spawn(CHROMIUM_PATH, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--remote-debugging-port=0', 'about:blank'], {
    detached: true, // its own process group: the teardown kills that group, by our PID
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: join(dir, 'config'), XDG_CACHE_HOME: join(dir, 'cache'), TMPDIR: dir },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${CHROMIUM_PATH}`);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < 100_000) stderr += chunk;
  });

  const teardown = async (browser?: Browser): Promise<number[]> => {
    const family = ourProcesses(pid, dir);
    if (browser) {
      await withTimeout(
        (async () => {
          const session = await browser.newBrowserCDPSession();
          await session.send('Browser.close').catch(() => undefined);
        })().catch(() => undefined),
        5000,
      );
      await withTimeout(browser.close().catch(() => undefined), 5000);
    }
    if (!(await withTimeout(exited, EXIT_TIMEOUT_MS))) {
      signalGroup(child, 'SIGTERM');
      if (!(await withTimeout(exited, EXIT_TIMEOUT_MS))) {
        signalGroup(child, 'SIGKILL');
        await withTimeout(exited, EXIT_TIMEOUT_MS);
      }
    }
    // Its helpers (zygotes, renderers, the crash handler that re-parents itself) exit after it.
    const deadline = Date.now() + EXIT_TIMEOUT_MS;
    let left = family.filter(isAlive);
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      left = left.filter(isAlive);
    }
    for (const p of left) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
    return left;
  };

  try {
    const endpoint = await devToolsEndpoint(child, () => stderr);
    if (!endpoint.startsWith('ws://127.0.0.1:')) throw new Error(`DevTools endpoint not on loopback: ${endpoint}`);
    const browser = await chromium.connectOverCDP(endpoint, { timeout: START_TIMEOUT_MS });
    return { browser, pid, close: () => teardown(browser) };
  } catch (error) {
    await teardown();
    throw error;
  }
}

/** Waits for chromium's "DevTools listening on ws://..." line. */
function devToolsEndpoint(child: ChildProcess, stderr: () => string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`chromium printed no DevTools endpoint within ${START_TIMEOUT_MS} ms:\n${stderr().slice(-2000)}`)), START_TIMEOUT_MS);
    const onData = (): void => {
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(stderr());
      if (match) done(undefined, match[1]);
    };
    const onExit = (code: number | null, signal: string | null): void =>
      done(new Error(`chromium exited (${code ?? signal}) before it listened:\n${stderr().slice(-2000)}`));
    function done(error?: Error, endpoint?: string): void {
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(error);
      else resolve(endpoint!);
    }
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    onData();
  });
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal); // the group we created (detached), by our child's PID
  } catch {
    // already gone
  }
}

/**
 * `pid`, every process below it, and every process whose command line names our folder (the
 * crash handlers, which re-parent themselves to init, write below our HOME), from /proc.
 */
function ourProcesses(pid: number, dir: string): number[] {
  const parents = new Map<number, number>();
  const ours = new Set([pid]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) ours.add(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  let grew = true;
  while (grew) {
    grew = false;
    for (const [child, parent] of parents) {
      if (!ours.has(child) && ours.has(parent)) {
        ours.add(child);
        grew = true;
      }
    }
  }
  return [...ours];
}

function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z'; // a zombie has exited
  } catch {
    return false;
  }
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
