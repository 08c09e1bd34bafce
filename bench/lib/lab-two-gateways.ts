/**
 * A LAN host between two routers, for tests of a machine that moves from one network to
 * another (Ethernet to Wi-Fi, one access point to another): two real gateways (miniupnpd, each
 * with its own NAT, STUN responder and "internet"), and a host with an interface on each LAN
 * whose default route is switched from one router to the other.
 *
 * ```
 *                          <gwa ns>                                 <wana ns>
 * <lan ns>          .----- gw-lan 192.168.77.1  gw-wan 10.77.0.2 --- wan0 10.77.0.1 (STUN)
 * lan0 192.168.77.10       miniupnpd A
 * lan1 192.168.78.10       <gwb ns>                                 <wanb ns>
 * default via A or B '---- gw-lan 192.168.78.1  gw-wan 10.78.0.2 --- wan0 10.78.0.1 (STUN)
 *                          miniupnpd B
 * ```
 *
 * Both LANs stay up after a switch (only the default route moves, `ip route replace`), so the
 * old router is still reachable through its own subnet: a client that follows the network can
 * delete its mapping there, and the test can check that it did.
 *
 * The namespaces are `rxnat-<pid>-<seq>-{lan,gwa,wana,gwb,wanb}`, cleaned after a crash by
 * `cleanStaleLabs()` like those of `startLab()`; the same isolation and safety rules apply
 * (see lab.ts): nothing in the root namespace, processes killed by PID after checking that they
 * are ours or live in the lab's namespaces.
 *
 * @packageDocumentation
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { cleanStaleLabs, Lab, LabProcess, labKit, parseNftRules, REPO_ROOT } from './lab.js';
import type { ExecOptions, ExecResult, LabRule, NodeScript, SpawnNodeOptions } from './lab.js';

const { exec, execChecked, waitFor, isAlive, inNamespace, killInNamespace, killOwnChild, destroyNamespacesSync, nftLayout, miniupnpdConfig, portBound } = labKit;

/** The two routers. */
export type GatewayName = 'a' | 'b';

/** A namespace of the two-gateway lab. */
export type TwoGatewayRole = 'lan' | 'gwa' | 'wana' | 'gwb' | 'wanb';

/** The addresses on each side (valid only inside the lab's namespaces). */
export const TWO_GATEWAY_ADDRESSES = {
  a: { lanInterface: 'lan0', lan: '192.168.77.10', gateway: '192.168.77.1', external: '10.77.0.2', internet: '10.77.0.1', lanSubnet: '192.168.77.0/24' },
  b: { lanInterface: 'lan1', lan: '192.168.78.10', gateway: '192.168.78.1', external: '10.78.0.2', internet: '10.78.0.1', lanSubnet: '192.168.78.0/24' },
} as const;

/** Options of {@link startTwoGatewayLab}. */
export interface TwoGatewayLabOptions {
  /** How long to wait for each gateway to be ready. Default 8000 ms. */
  readonly readyTimeoutMs?: number;
  /** Keep the run directory (configs, logs) after {@link TwoGatewayLab.stop}. Default: env `RXNAT_LAB_KEEP=1`. */
  readonly keepRunDir?: boolean;
}

const roles = (name: GatewayName): { readonly gw: TwoGatewayRole; readonly wan: TwoGatewayRole } =>
  name === 'a' ? { gw: 'gwa', wan: 'wana' } : { gw: 'gwb', wan: 'wanb' };

const liveLabs = new Set<TwoGatewayLab>();
process.on('exit', () => {
  for (const lab of liveLabs) lab.destroySync();
});

/** A running two-gateway lab. Create with {@link startTwoGatewayLab}; always {@link TwoGatewayLab.stop} it. */
export class TwoGatewayLab {
  /** `rxnat-<pid>-<seq>`. */
  readonly id: string;
  readonly namespaces: Readonly<Record<TwoGatewayRole, string>>;
  /** Configs, pid files, leases and logs: `a/` and `b/`. */
  readonly runDir: string;
  readonly addresses = TWO_GATEWAY_ADDRESSES;
  /** How long the start took, in ms. */
  startupMs = 0;
  private readonly daemons: Partial<Record<GatewayName, { child: ChildProcess; pid?: number }>> = {};
  private readonly stuns: ChildProcess[] = [];
  private readonly children = new Set<ChildProcess>();
  private stopping: Promise<void> | undefined;

  private constructor(private readonly options: TwoGatewayLabOptions) {
    this.id = labKit.nextLabId();
    const ns = (role: TwoGatewayRole): string => `${this.id}-${role}`;
    this.namespaces = { lan: ns('lan'), gwa: ns('gwa'), wana: ns('wana'), gwb: ns('gwb'), wanb: ns('wanb') };
    this.runDir = mkdtempSync(join(tmpdir(), `${this.id}-`));
  }

  /** @internal use {@link startTwoGatewayLab}. */
  static async start(options: TwoGatewayLabOptions = {}): Promise<TwoGatewayLab> {
    const started = performance.now();
    const status = await Lab.available();
    if (!status.available) throw new Error(`gateway lab unavailable: ${status.reason}`);
    cleanStaleLabs();
    const lab = new TwoGatewayLab(options);
    liveLabs.add(lab);
    try {
      await lab.createTopology();
      await lab.waitLinksUp(options.readyTimeoutMs ?? 8000);
      await Promise.all((['a', 'b'] as const).map((name) => lab.startStun(name)));
      await Promise.all((['a', 'b'] as const).map((name) => lab.startDaemon(name)));
    } catch (error) {
      const logs = (['a', 'b'] as const).map((name) => `miniupnpd ${name}:\n${lab.daemonLog(name).split('\n').slice(-15).join('\n')}`).join('\n');
      await lab.stop();
      throw new Error(`lab ${lab.id} failed to start: ${(error as Error).message}\n${logs}`, { cause: error });
    }
    lab.startupMs = performance.now() - started;
    return lab;
  }

  /** A router's UPnP description URL (from the lan namespace). */
  descriptionUrl(name: GatewayName): string {
    return `http://${TWO_GATEWAY_ADDRESSES[name].gateway}:5000/rootDesc.xml`;
  }

  /**
   * Points the LAN host's default route at router `name` (`ip route replace default via … dev …`
   * in the lan namespace); both LANs stay up. Resolves once the route is in place.
   */
  async useGateway(name: GatewayName): Promise<ExecResult> {
    const side = TWO_GATEWAY_ADDRESSES[name];
    return execChecked('ip', ['-n', this.namespaces.lan, 'route', 'replace', 'default', 'via', side.gateway, 'dev', side.lanInterface]);
  }

  /** Runs a command inside one of the lab's namespaces. */
  execIn(role: TwoGatewayRole, cmd: string, args: readonly string[] = [], options: ExecOptions = {}): Promise<ExecResult> {
    if (this.stopping) return Promise.reject(new Error(`lab ${this.id} is stopped`));
    return exec('ip', ['netns', 'exec', this.namespaces[role], cmd, ...args], {
      ...options,
      onSpawn: (child) => {
        this.children.add(child);
        child.on('close', () => this.children.delete(child));
      },
    });
  }

  /** The port forwardings router `name` installed (the DNAT rules of its `prerouting_miniupnpd`). */
  async rules(name: GatewayName): Promise<LabRule[]> {
    const result = await this.execIn(roles(name).gw, 'nft', ['-j', 'list', 'chain', 'inet', 'filter', 'prerouting_miniupnpd']);
    if (result.code !== 0) throw new Error(`nft list failed on ${name}: ${result.stderr.trim()}`);
    return parseNftRules(result.stdout);
  }

  /** Starts node (with tsx by default) in the lan namespace, to talk to over JSON lines (see `Lab.spawnNodeIn`). */
  spawnNodeInLan(script: NodeScript, args: readonly string[] = [], options: SpawnNodeOptions = {}): LabProcess {
    if (this.stopping) throw new Error(`lab ${this.id} is stopped`);
    const nodeArgs = options.tsx === false ? [] : ['--import', labKit.TSX_IMPORT];
    if (typeof script === 'string') nodeArgs.push(resolve(REPO_ROOT, script));
    else nodeArgs.push('--input-type=module', '--eval', script.code);
    const child = spawn('ip', ['netns', 'exec', this.namespaces.lan, process.execPath, ...nodeArgs, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      cwd: REPO_ROOT,
      env: { ...process.env, ...options.env, RXNAT_LAB_ARGS: JSON.stringify(args) },
    });
    this.children.add(child);
    child.on('close', () => this.children.delete(child));
    return new LabProcess(child);
  }

  /** Router `name`'s miniupnpd output (`-d`: debug log). */
  daemonLog(name: GatewayName): string {
    try {
      return readFileSync(join(this.runDir, name, 'miniupnpd.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** Tears the lab down (processes by PID, namespaces, run directory). Idempotent, never throws. */
  stop(): Promise<void> {
    this.stopping ??= this.teardown();
    return this.stopping;
  }

  /** Synchronous last-resort cleanup for process exit. */
  destroySync(): void {
    for (const name of ['a', 'b'] as const) {
      const pid = this.daemons[name]?.pid;
      if (pid !== undefined) killInNamespace(pid, this.namespaces[roles(name).gw], 'SIGKILL');
    }
    for (const child of [...this.stuns, ...this.children]) killOwnChild(child, 'SIGKILL');
    destroyNamespacesSync(Object.values(this.namespaces));
    if (!this.keepRunDir()) rmSync(this.runDir, { recursive: true, force: true });
  }

  private keepRunDir(): boolean {
    return this.options.keepRunDir ?? process.env.RXNAT_LAB_KEEP === '1';
  }

  private async teardown(): Promise<void> {
    for (const name of ['a', 'b'] as const) {
      const daemon = this.daemons[name];
      delete this.daemons[name];
      const pid = daemon?.pid;
      if (pid === undefined || !isAlive(pid)) continue;
      if (killInNamespace(pid, this.namespaces[roles(name).gw], 'SIGTERM') && !(await waitFor(() => !isAlive(pid), 2000))) {
        killInNamespace(pid, this.namespaces[roles(name).gw], 'SIGKILL');
      }
    }
    for (const child of [...this.stuns.splice(0), ...this.children]) killOwnChild(child, 'SIGKILL');
    destroyNamespacesSync(Object.values(this.namespaces));
    liveLabs.delete(this);
    if (!this.keepRunDir()) rmSync(this.runDir, { recursive: true, force: true });
  }

  private async createTopology(): Promise<void> {
    const n = this.namespaces;
    // Each veth created directly inside its two namespaces, with distinct ifindexes (see lab.ts).
    const root = [
      ...(Object.values(n) as string[]).map((ns) => `netns add ${ns}`),
      `link add lan0 index 10 netns ${n.lan} type veth peer name gw-lan index 11 netns ${n.gwa}`,
      `link add gw-wan index 12 netns ${n.gwa} type veth peer name wan0 index 13 netns ${n.wana}`,
      `link add lan1 index 20 netns ${n.lan} type veth peer name gw-lan index 21 netns ${n.gwb}`,
      `link add gw-wan index 22 netns ${n.gwb} type veth peer name wan0 index 23 netns ${n.wanb}`,
    ];
    await execChecked('ip', ['-batch', '-'], { input: `${root.join('\n')}\n` });
    const { a, b } = TWO_GATEWAY_ADDRESSES;
    const gateway = (side: (typeof TWO_GATEWAY_ADDRESSES)[GatewayName]): string[] => [
      'link set lo up',
      `addr add ${side.gateway}/24 dev gw-lan`,
      `addr add ${side.external}/24 dev gw-wan`,
      'link set gw-lan up',
      'link set gw-wan up',
      `route add default via ${side.internet}`,
    ];
    const internet = (side: (typeof TWO_GATEWAY_ADDRESSES)[GatewayName]): string[] => ['link set lo up', `addr add ${side.internet}/24 dev wan0`, 'link set wan0 up'];
    const inside: Record<TwoGatewayRole, string[]> = {
      lan: [
        'link set lo up',
        `addr add ${a.lan}/24 dev ${a.lanInterface}`,
        `addr add ${b.lan}/24 dev ${b.lanInterface}`,
        `link set ${a.lanInterface} up`,
        `link set ${b.lanInterface} up`,
        `route add default via ${a.gateway} dev ${a.lanInterface}`,
      ],
      gwa: gateway(a),
      wana: internet(a),
      gwb: gateway(b),
      wanb: internet(b),
    };
    await Promise.all(
      (Object.keys(inside) as TwoGatewayRole[]).map((role) => execChecked('ip', ['-n', n[role], '-batch', '-'], { input: `${inside[role].join('\n')}\n` })),
    );
    await Promise.all(
      [n.gwa, n.gwb].flatMap((ns) => [
        execChecked('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']),
        execChecked('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: nftLayout() }),
      ]),
    );
  }

  private async waitLinksUp(timeoutMs: number): Promise<void> {
    const links: ReadonlyArray<[TwoGatewayRole, string]> = [
      ['lan', 'lan0'],
      ['lan', 'lan1'],
      ['gwa', 'gw-lan'],
      ['gwa', 'gw-wan'],
      ['wana', 'wan0'],
      ['gwb', 'gw-lan'],
      ['gwb', 'gw-wan'],
      ['wanb', 'wan0'],
    ];
    const up = async (): Promise<boolean> => {
      const states = new Map<TwoGatewayRole, string>();
      await Promise.all(
        (Object.keys(this.namespaces) as TwoGatewayRole[]).map(async (role) => {
          states.set(role, (await exec('ip', ['-n', this.namespaces[role], '-o', 'link', 'show'])).stdout);
        }),
      );
      return links.every(([role, ifname]) => new RegExp(`^\\d+: ${ifname}@.* state UP `, 'm').test(states.get(role) ?? ''));
    };
    if (!(await waitFor(up, timeoutMs, 25))) throw new Error(`lab links not operationally up within ${timeoutMs} ms`);
  }

  /** Spawns a long-running process in a namespace: fds > 2 closed, own session, output to a log. */
  private spawnDaemon(role: TwoGatewayRole, logPath: string, argv: readonly string[], stdout: 'pipe' | 'log'): ChildProcess {
    const log = openSync(logPath, 'a');
    try {
      const child = spawn('bash', ['-c', labKit.CLOSE_FDS_AND_EXEC, 'lab-exec', 'setsid', 'ip', 'netns', 'exec', this.namespaces[role], ...argv], {
        stdio: ['ignore', stdout === 'pipe' ? 'pipe' : log, log],
        cwd: REPO_ROOT,
      });
      child.on('error', () => undefined);
      child.unref();
      return child;
    } finally {
      closeSync(log);
    }
  }

  private async startStun(name: GatewayName): Promise<void> {
    const dir = join(this.runDir, name);
    mkdirSync(dir, { recursive: true });
    const child = this.spawnDaemon(roles(name).wan, join(dir, 'stun.log'), [process.execPath, labKit.STUN_SCRIPT, TWO_GATEWAY_ADDRESSES[name].internet, '3478'], 'pipe');
    this.stuns.push(child);
    const stdout = child.stdout;
    if (!stdout) throw new Error('stun responder has no stdout');
    await new Promise<void>((resolveReady, rejectReady) => {
      let buffer = '';
      const done = (error?: Error): void => {
        clearTimeout(timer);
        stdout.removeAllListeners('data');
        child.removeListener('exit', onExit);
        if (error) rejectReady(error);
        else resolveReady();
      };
      const timer = setTimeout(() => done(new Error(`STUN responder ${name} not ready after 10 s`)), 10_000);
      const onExit = (code: number | null): void => done(new Error(`STUN responder ${name} exited (${code})`));
      stdout.setEncoding('utf8').on('data', (chunk: string) => {
        buffer += chunk;
        if (buffer.includes('"ready":true')) done();
      });
      child.on('exit', onExit);
    });
    stdout.destroy();
  }

  private async startDaemon(name: GatewayName): Promise<void> {
    const side = TWO_GATEWAY_ADDRESSES[name];
    const gw = this.namespaces[roles(name).gw];
    const dir = join(this.runDir, name);
    mkdirSync(dir, { recursive: true });
    const conf = join(dir, 'miniupnpd.conf');
    const pidFile = join(dir, 'miniupnpd.pid');
    writeFileSync(conf, miniupnpdConfig({}, dir, { internet: side.internet, lanSubnet: side.lanSubnet }));
    const child = this.spawnDaemon(roles(name).gw, join(dir, 'miniupnpd.log'), ['miniupnpd', '-d', '-f', conf, '-P', pidFile], 'log');
    const daemon: { child: ChildProcess; pid?: number } = { child };
    this.daemons[name] = daemon;
    const timeoutMs = this.options.readyTimeoutMs ?? 8000;
    const deadline = performance.now() + timeoutMs;
    const exitedEarly = (): boolean => child.exitCode !== null || child.signalCode !== null;
    await waitFor(() => {
      if (exitedEarly()) return true;
      try {
        const pid = Number(readFileSync(pidFile, 'utf8').trim());
        if (pid > 0 && inNamespace(pid, gw)) {
          daemon.pid = pid;
          return true;
        }
      } catch {
        // not yet written
      }
      return false;
    }, timeoutMs);
    const pid = daemon.pid;
    if (exitedEarly()) throw new Error(`miniupnpd ${name} exited at startup (${child.exitCode ?? child.signalCode})`);
    if (pid === undefined) throw new Error(`miniupnpd ${name} wrote no pid file within ${timeoutMs} ms`);
    const bound = await waitFor(() => portBound(pid, 'udp', 5351) && portBound(pid, 'tcp', 5000), Math.max(0, deadline - performance.now()));
    if (!bound) throw new Error(`miniupnpd ${name} did not bind udp 5351 / tcp 5000 within ${timeoutMs} ms`);
    const described = await waitFor(
      async () => (await this.execIn('lan', 'curl', ['-sf', '-o', '/dev/null', '-m', '1', this.descriptionUrl(name)])).code === 0,
      Math.max(0, deadline - performance.now()),
      20,
    );
    if (!described) throw new Error(`${this.descriptionUrl(name)} not served from the lan namespace within ${timeoutMs} ms`);
  }
}

/**
 * Starts the two-gateway lab: five fresh namespaces, two gateways (nft layout, STUN responder,
 * miniupnpd each), the LAN host's default route via router A; waits until both routers serve
 * their description to the LAN. Throws if the lab is unavailable (`Lab.available()`) or a router
 * does not come up. (One-gateway labs: `startLab()` in lab.ts.)
 *
 * @example
 * ```ts
 * const lab = await startTwoGatewayLab();
 * try {
 *   await lab.useGateway('b');
 *   console.log(await lab.rules('b'));
 * } finally {
 *   await lab.stop();
 * }
 * ```
 */
export function startTwoGatewayLab(options: TwoGatewayLabOptions = {}): Promise<TwoGatewayLab> {
  return TwoGatewayLab.start(options);
}
