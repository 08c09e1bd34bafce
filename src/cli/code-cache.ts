/**
 * Loads a CommonJS bundle of the packaged `rxnat` command (scripts/build-cli.mjs) through a V8
 * code cache (Node 20 has no `module.enableCompileCache`): a run after the first skips parsing
 * and compiling most of the bundle, which is most of what `rxnat map` does before its first
 * request.
 *
 * The cache lives in a directory of the user's own: `$XDG_CACHE_HOME/rxnat`, else
 * `~/.cache/rxnat`, created mode 0700 and used only while it is a real directory owned by this
 * user that nobody else may write to. An entry is one file per bundle and Node version; its
 * header holds the key it was made for (rxnat's version, the bundle's build hash, Node's version
 * and architecture, the bundle's path, size and modification time); V8 checks its own version
 * and flags. A missing, foreign, unreadable or rejected entry means the bundle is compiled from
 * its source as if there were no cache, and a new entry is written once the command has run a
 * while (1 s, or at exit if sooner), so that it holds the functions start-up needs; writes go
 * through a temporary file and a rename. Any error of the cache itself is silent (it is logged
 * under `rxnat:cli`): the command runs the same with or without it. `RXNAT_NO_CODE_CACHE=1`
 * (or Node's `NODE_DISABLE_COMPILE_CACHE=1`) turns it off.
 *
 * @packageDocumentation
 */
import type { Logger } from '../core/logger.js';

/**
 * Where {@link loadBundle} keeps its cache, and what an entry must match.
 *
 * @example
 * ```ts
 * const cache: BundleCache = { dir: codeCacheDir(process.env), key: '0.1.0 3f2a9c', logger: debugLogger };
 * ```
 */
export interface BundleCache {
  /** The cache directory ({@link codeCacheDir}), or `null`: compile every time, write nothing. */
  readonly dir: string | null;
  /** What else an entry must match: rxnat's version and the bundle's build hash. */
  readonly key: string;
  readonly logger: Logger;
  /**
   * Calls `write` once the code a new entry should hold has run. Default: after 1 s (a timer
   * that keeps nothing alive) or at exit, whichever comes first.
   */
  readonly schedule?: (write: () => void) => void;
}

/** First line of an entry; the second is the key as JSON; then V8's cached data. */
const MAGIC = 'rxnat-code-cache 1\n';
/** How long a command runs before a new entry is written (or at exit, if sooner). */
const WRITE_DELAY_MS = 1000;
const ENTRY_SUFFIX = '.v8cache';
/** CommonJS's function wrapper (as Node's own loader puts it around a module). */
const WRAPPER_START = '(function (exports, require, module, __filename, __dirname) { ';
const WRAPPER_END = '\n});';

/**
 * The cache directory the environment names: `$XDG_CACHE_HOME/rxnat` (an absolute path only,
 * as the XDG spec says), else `$HOME/.cache/rxnat`; `null` when `RXNAT_NO_CODE_CACHE` or
 * `NODE_DISABLE_COMPILE_CACHE` is set (to anything but `0` or the empty string) or there is no
 * home directory.
 *
 * @example
 * ```ts
 * codeCacheDir({ HOME: '/home/ada' }); // '/home/ada/.cache/rxnat'
 * ```
 */
export function codeCacheDir(env: Readonly<Record<string, string | undefined>>): string | null {
  const off = (name: string): boolean => env[name] !== undefined && env[name] !== '' && env[name] !== '0';
  if (off('RXNAT_NO_CODE_CACHE') || off('NODE_DISABLE_COMPILE_CACHE')) return null;
  const xdg = env['XDG_CACHE_HOME'];
  if (xdg !== undefined && xdg.startsWith('/')) return `${xdg.replace(/\/+$/, '')}/rxnat`;
  const home = env['HOME'];
  if (home === undefined || !home.startsWith('/')) return null;
  return `${home.replace(/\/+$/, '')}/.cache/rxnat`;
}

/**
 * Runs the CommonJS bundle `file` (an absolute path) as `require` would, compiled with the
 * cache's entry for it when there is a valid one, and returns its `module.exports`. Throws only
 * what loading the bundle itself throws (a missing file, an error in its top-level code).
 *
 * @example
 * ```ts
 * const { runCommand } = loadBundle('/usr/lib/node_modules/rxnat/dist/cli/map.cjs', cache) as { runCommand: typeof RunCommand };
 * ```
 */
export function loadBundle(file: string, cache: BundleCache): unknown {
  const fs = process.getBuiltinModule('node:fs');
  const vm = process.getBuiltinModule('node:vm');
  const { createRequire } = process.getBuiltinModule('node:module');
  // The key (size, modification time) is taken before the source is read: a bundle edited in
  // between gets an entry under its old key, which the next run does not match.
  const entry = cache.dir === null ? null : entryOf(file, cache);
  const source = fs.readFileSync(file, 'utf8');
  const cachedData = entry === null ? undefined : readEntry(entry, cache.logger);
  const script = new vm.Script(`${WRAPPER_START}${source}${WRAPPER_END}`, {
    filename: file,
    ...(cachedData !== undefined ? { cachedData } : {}),
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (cachedData !== undefined && script.cachedDataRejected !== true) log(cache.logger, 'used', entry!.path);
  if (entry !== null && (cachedData === undefined || script.cachedDataRejected === true)) {
    if (cachedData !== undefined) log(cache.logger, 'rejected by V8', entry.path);
    let written = false;
    (cache.schedule ?? writeLater)(() => {
      if (written) return;
      written = true;
      writeEntry(entry, () => script.createCachedData(), cache.logger);
    });
  }
  const module = { exports: {} as unknown, filename: file, id: file, loaded: false };
  const run = script.runInThisContext() as (exports: unknown, require: NodeJS.Require, module: unknown, filename: string, dirname: string) => void;
  run.call(module.exports, module.exports, createRequire(file), module, file, file.slice(0, file.lastIndexOf('/')));
  module.loaded = true;
  return module.exports;
}

/** A cache entry: where it lives and the key its header must hold. */
interface Entry {
  readonly dir: string;
  readonly path: string;
  readonly key: string;
}

/** The entry for `file`, or `null` when the file cannot be read (stat). */
function entryOf(file: string, cache: BundleCache): Entry | null {
  try {
    const stat = process.getBuiltinModule('node:fs').statSync(file);
    const stable = `${file}\n${process.version}\n${process.arch}`;
    const name = `${file.slice(file.lastIndexOf('/') + 1).replace(/\.c?js$/, '')}-${fnv1a(stable)}${ENTRY_SUFFIX}`;
    const key = JSON.stringify([cache.key, process.version, process.arch, file, stat.size, stat.mtimeMs]);
    return { dir: cache.dir!, path: `${cache.dir!}/${name}`, key };
  } catch {
    return null;
  }
}

/** The V8 data of an entry, if the directory is safe and its header holds the key. */
function readEntry(entry: Entry, logger: Logger): Buffer | undefined {
  const dir = dirState(entry.dir);
  if (dir === 'unsafe') {
    log(logger, 'directory not private to this user: not used', entry.dir);
    return undefined;
  }
  let data: Buffer;
  try {
    if (dir === 'missing') throw new Error('no directory');
    data = process.getBuiltinModule('node:fs').readFileSync(entry.path);
  } catch {
    log(logger, 'none yet', entry.path);
    return undefined;
  }
  const header = `${MAGIC}${entry.key}\n`;
  if (data.length <= header.length || data.toString('latin1', 0, header.length) !== header) {
    log(logger, 'made for another build, or damaged', entry.path);
    return undefined;
  }
  return data.subarray(header.length);
}

/**
 * `safe`: `dir` is a real directory (not a symbolic link) owned by this user that no one else
 * may write to; `missing`: there is nothing there; `unsafe`: anything else.
 */
function dirState(dir: string): 'safe' | 'missing' | 'unsafe' {
  try {
    const stat = process.getBuiltinModule('node:fs').lstatSync(dir);
    return stat.isDirectory() && (process.getuid === undefined || stat.uid === process.getuid()) && (stat.mode & 0o022) === 0 ? 'safe' : 'unsafe';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unsafe';
  }
}

/** Writes a new entry (temporary file, then rename), and drops the entries of bundles that are gone. */
function writeEntry(entry: Entry, data: () => Buffer, logger: Logger): void {
  const fs = process.getBuiltinModule('node:fs');
  const temporary = `${entry.path}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(entry.dir, { recursive: true, mode: 0o700 });
    if (dirState(entry.dir) !== 'safe') {
      log(logger, 'directory not private to this user: nothing written', entry.dir);
      return;
    }
    const fd = fs.openSync(temporary, 'wx', 0o600);
    try {
      fs.writeSync(fd, `${MAGIC}${entry.key}\n`, null, 'latin1');
      fs.writeSync(fd, data());
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(temporary, entry.path);
    log(logger, 'written', entry.path);
  } catch (error) {
    try {
      fs.unlinkSync(temporary);
    } catch {
      // never created
    }
    log(logger, `not written (${(error as Error).message})`, entry.path);
    return;
  }
  pruneEntries(entry, logger);
}

/** Removes entries whose bundle no longer exists (an uninstalled copy, a removed build directory). */
function pruneEntries(current: Entry, logger: Logger): void {
  const fs = process.getBuiltinModule('node:fs');
  try {
    for (const name of fs.readdirSync(current.dir)) {
      const path = `${current.dir}/${name}`;
      if (!name.endsWith(ENTRY_SUFFIX) || path === current.path) continue;
      const file = bundleOfEntry(path);
      if (file !== undefined && !fs.existsSync(file)) {
        fs.unlinkSync(path);
        log(logger, 'removed (its bundle is gone)', path);
      }
    }
  } catch {
    // pruning is housekeeping: never worth an error
  }
}

/** The bundle path recorded in an entry's header, if it reads as one. */
function bundleOfEntry(path: string): string | undefined {
  const fs = process.getBuiltinModule('node:fs');
  const head = Buffer.alloc(4096);
  const fd = fs.openSync(path, 'r');
  let length: number;
  try {
    length = fs.readSync(fd, head, 0, head.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  const text = head.toString('latin1', 0, length);
  if (!text.startsWith(MAGIC)) return undefined;
  const end = text.indexOf('\n', MAGIC.length);
  if (end < 0) return undefined;
  try {
    const key = JSON.parse(text.slice(MAGIC.length, end)) as unknown;
    return Array.isArray(key) && typeof key[3] === 'string' ? key[3] : undefined;
  } catch {
    return undefined;
  }
}

/** Default {@link BundleCache.schedule}: after {@link WRITE_DELAY_MS}, or at exit if sooner. */
function writeLater(write: () => void): void {
  const timer = setTimeout(() => {
    process.off('exit', write);
    write();
  }, WRITE_DELAY_MS);
  timer.unref();
  process.once('exit', write);
}

function log(logger: Logger, what: string, path: string): void {
  logger.debug('rxnat:cli', `code cache: ${what}`, { path });
}

/** FNV-1a of a short string, as 8 hex digits (names entries; not a content check). */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, '0');
}
