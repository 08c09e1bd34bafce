/**
 * Argument parsing of the `rxnat` command-line tool, over `node:util`'s `parseArgs`: one
 * option table per command, strict (an unknown option or a missing value is a usage error),
 * values checked and converted here so that commands receive typed, validated input.
 *
 * @packageDocumentation
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { isIpAddress } from '../core/address.js';
import type { MappingProtocol } from '../core/nat.js';

/**
 * The commands of `rxnat`.
 *
 * @example
 * ```ts
 * const command: CommandName = 'map';
 * ```
 */
export type CommandName = 'discover' | 'ip' | 'map' | 'unmap' | 'list' | 'demo';

/**
 * Every command, in the order `rxnat --help` lists them.
 *
 * @example
 * ```ts
 * COMMANDS.includes('demo'); // true
 * ```
 */
export const COMMANDS: readonly CommandName[] = ['discover', 'ip', 'map', 'unmap', 'list', 'demo'];

/**
 * A wrong command line: exit code 2, with a one-line message that says what to do.
 *
 * @example
 * ```ts
 * throw new UsageError('map needs a protocol and a port, as in: rxnat map tcp 8080', 'map');
 * ```
 */
export class UsageError extends Error {
  /** The command whose `--help` to point at, when known. */
  readonly command: CommandName | undefined;
  constructor(message: string, command?: CommandName) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/**
 * Where and how to find the gateway: `--nat` plus the testing/lab options.
 *
 * @example
 * ```ts
 * const args = parseCliArgs(['ip', '--nat', 'pmp:127.0.0.1', '--pmp-port', '15351']);
 * if (args.command === 'ip') console.log(args.nat, args.pmpPort); // pmp:127.0.0.1 15351
 * ```
 */
export interface NatOptions {
  /** The `parseNat` spec. Default `any`. */
  readonly nat: string;
  /** `--timeout`: discovery deadline in ms, when given. */
  readonly timeoutMs: number | undefined;
  /** `--request-timeout`: deadline of each request after discovery, in ms, when given. */
  readonly requestTimeoutMs: number | undefined;
  /** `--gateway`: the NAT-PMP/PCP gateway address for specs without one (`any`, `pmp`, `pcp`). */
  readonly gateway: string | undefined;
  /** `--pmp-port`: NAT-PMP server port. */
  readonly pmpPort: number | undefined;
  /** `--pcp-port`: PCP server port (defaults to `--pmp-port`: both share 5351 on real gateways). */
  readonly pcpPort: number | undefined;
  /** `--ssdp-target host:port` (repeatable): where UPnP M-SEARCH goes instead of multicast. */
  readonly ssdpTargets: readonly { readonly address: string; readonly port: number }[];
  /** `--local-address`: local address to bind every socket to. */
  readonly localAddress: string | undefined;
}

/**
 * Options every gateway command takes.
 *
 * @example
 * ```ts
 * const args = parseCliArgs(['list', '--json']);
 * if (args.command === 'list') console.log(args.json, args.nat); // true any
 * ```
 */
export interface CommonArgs extends NatOptions {
  readonly json: boolean;
}

/**
 * A parsed command line.
 *
 * @example
 * ```ts
 * const args: ParsedArgs = parseCliArgs(['unmap', 'udp', '4001']);
 * if (args.command === 'unmap') console.log(args.protocol, args.externalPort); // udp 4001
 * ```
 */
export type ParsedArgs =
  | { readonly command: 'help'; readonly topic: CommandName | undefined }
  | { readonly command: 'version' }
  | ({ readonly command: 'discover' } & CommonArgs)
  | ({ readonly command: 'ip' } & CommonArgs)
  | ({ readonly command: 'list' } & CommonArgs)
  | ({
      readonly command: 'map';
      readonly protocol: MappingProtocol;
      readonly internalPort: number;
      readonly externalPort: number | undefined;
      readonly lifetimeSeconds: number | undefined;
      readonly description: string | undefined;
      /** `--duration`: stop (and delete) after this many seconds; `undefined` runs until a signal. */
      readonly durationSeconds: number | undefined;
      /** `--keep-trying`: do not give up when the first mapping cannot be made. */
      readonly keepTrying: boolean;
    } & CommonArgs)
  | ({
      readonly command: 'unmap';
      readonly protocol: MappingProtocol;
      readonly externalPort: number;
      /** `--internal-port`: NAT-PMP/PCP delete by internal port; defaults to the external port. */
      readonly internalPort: number | undefined;
    } & CommonArgs)
  | { readonly command: 'demo' };

type OptionTable = NonNullable<ParseArgsConfig['options']>;

/**
 * Longest `--lifetime`: 7 days, IGDv2's maximum lease. (Longer leases would also put the renewal
 * timer, at a third of the lease, beyond what a JavaScript timer can hold.)
 */
const MAX_CLI_LIFETIME_SECONDS = 604_800;

const HELP: OptionTable = { help: { type: 'boolean', short: 'h' } };

const NAT_OPTIONS: OptionTable = {
  ...HELP,
  nat: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  'request-timeout': { type: 'string' },
  gateway: { type: 'string' },
  'pmp-port': { type: 'string' },
  'pcp-port': { type: 'string' },
  'ssdp-target': { type: 'string', multiple: true },
  'local-address': { type: 'string' },
};

const OPTIONS: Record<CommandName, OptionTable> = {
  discover: NAT_OPTIONS,
  ip: NAT_OPTIONS,
  list: NAT_OPTIONS,
  map: {
    ...NAT_OPTIONS,
    'external-port': { type: 'string' },
    lifetime: { type: 'string' },
    description: { type: 'string' },
    duration: { type: 'string' },
    'keep-trying': { type: 'boolean' },
  },
  unmap: { ...NAT_OPTIONS, 'internal-port': { type: 'string' } },
  demo: HELP,
};

/**
 * Parses `rxnat`'s arguments (without `node` and the script). Throws {@link UsageError}.
 *
 * @example
 * ```ts
 * const args = parseCliArgs(['map', 'tcp', '8080', '--lifetime', '120', '--json']);
 * if (args.command === 'map') console.log(args.internalPort, args.lifetimeSeconds); // 8080 120
 * ```
 */
export function parseCliArgs(argv: readonly string[]): ParsedArgs {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h') return { command: 'help', topic: undefined };
  if (first === '--version' || first === '-V') return { command: 'version' };
  if (first === 'help') {
    const topic = rest[0];
    if (topic === undefined) return { command: 'help', topic: undefined };
    return { command: 'help', topic: commandName(topic) };
  }
  const command = commandName(first);
  // --help wins over anything else on the line, right or wrong.
  if (rest.includes('--help') || rest.includes('-h')) return { command: 'help', topic: command };
  const { values, positionals } = parse(command, rest);

  const expectPositionals = (names: readonly string[], example: string): void => {
    if (positionals.length < names.length) {
      throw new UsageError(`${command} needs ${names.join(' and ')}, as in: ${example}`, command);
    }
    if (positionals.length > names.length) {
      throw new UsageError(`${command}: unexpected argument "${positionals[names.length]}"`, command);
    }
  };

  switch (command) {
    case 'demo':
      expectPositionals([], 'rxnat demo');
      return { command };
    case 'discover':
    case 'ip':
    case 'list':
      expectPositionals([], `rxnat ${command} --nat pmp:192.168.1.1`);
      return { command, ...commonArgs(command, values) };
    case 'map': {
      expectPositionals(['a protocol', 'an internal port'], 'rxnat map tcp 8080');
      return {
        command,
        protocol: protocolArg(command, positionals[0]!),
        internalPort: portArg(command, 'internal port', positionals[1]!),
        externalPort: optional(values['external-port'], (v) => portArg(command, '--external-port', v)),
        lifetimeSeconds: optional(values.lifetime, (v) => integerArg(command, '--lifetime', v, 0, MAX_CLI_LIFETIME_SECONDS)),
        description: stringValue(values.description),
        durationSeconds: optional(values.duration, (v) => secondsArg(command, '--duration', v)),
        keepTrying: values['keep-trying'] === true,
        ...commonArgs(command, values),
      };
    }
    case 'unmap': {
      expectPositionals(['a protocol', 'an external port'], 'rxnat unmap tcp 8080');
      return {
        command,
        protocol: protocolArg(command, positionals[0]!),
        externalPort: portArg(command, 'external port', positionals[1]!),
        internalPort: optional(values['internal-port'], (v) => portArg(command, '--internal-port', v)),
        ...commonArgs(command, values),
      };
    }
  }
}

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

function parse(command: CommandName, args: readonly string[]): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: [...args], options: OPTIONS[command], allowPositionals: true, strict: true });
    return { values: values as Values, positionals };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // node's messages are long and mention "positionals"; keep the first sentence, add the way out.
    throw new UsageError(`${command}: ${message.split(/\.\s|\n/)[0]!.replace(/^Unknown option/, 'unknown option')}`, command);
  }
}

function commandName(text: string): CommandName {
  if ((COMMANDS as readonly string[]).includes(text)) return text as CommandName;
  if (text.startsWith('-')) throw new UsageError(`give a command before options (${COMMANDS.join(', ')}), as in: rxnat discover ${text}`);
  throw new UsageError(`unknown command "${text}": use one of ${COMMANDS.join(', ')}`);
}

function commonArgs(command: CommandName, values: Values): CommonArgs {
  const nat = stringValue(values.nat) ?? 'any';
  if (nat.trim() === '') throw new UsageError(`${command}: --nat needs a spec such as any, upnp, pmp:192.168.1.1 or pcp`, command);
  const pmpPort = optional(values['pmp-port'], (v) => portArg(command, '--pmp-port', v));
  const targets = values['ssdp-target'];
  return {
    nat,
    json: values.json === true,
    timeoutMs: optional(values.timeout, (v) => integerArg(command, '--timeout', v, 1, 600_000)),
    requestTimeoutMs: optional(values['request-timeout'], (v) => integerArg(command, '--request-timeout', v, 1, 600_000)),
    gateway: optional(values.gateway, (v) => ipArg(command, '--gateway', v)),
    pmpPort,
    pcpPort: optional(values['pcp-port'], (v) => portArg(command, '--pcp-port', v)) ?? pmpPort,
    ssdpTargets: (Array.isArray(targets) ? targets : []).map((t) => hostPortArg(command, '--ssdp-target', String(t))),
    localAddress: optional(values['local-address'], (v) => ipArg(command, '--local-address', v)),
  };
}

function stringValue(value: Values[string]): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function optional<T>(value: Values[string], convert: (text: string) => T): T | undefined {
  return typeof value === 'string' ? convert(value) : undefined;
}

function protocolArg(command: CommandName, text: string): MappingProtocol {
  const lower = text.toLowerCase();
  if (lower === 'tcp' || lower === 'udp') return lower;
  throw new UsageError(`${command}: the protocol must be tcp or udp, not "${text}"`, command);
}

function integerArg(command: CommandName, name: string, text: string, min: number, max: number): number {
  const value = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(value >= min && value <= max)) throw new UsageError(`${command}: ${name} must be a whole number from ${min} to ${max}, not "${text}"`, command);
  return value;
}

function portArg(command: CommandName, name: string, text: string): number {
  return integerArg(command, name, text, 1, 65535);
}

/** Longest `--duration`: what one Node.js timer can wait (2^31 - 1 ms, about 24.8 days). */
const MAX_DURATION_SECONDS = 2_147_483;

function secondsArg(command: CommandName, name: string, text: string): number {
  const value = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!(value > 0 && value <= MAX_DURATION_SECONDS)) {
    throw new UsageError(`${command}: ${name} must be a number of seconds above 0 and up to ${MAX_DURATION_SECONDS}, not "${text}"`, command);
  }
  return value;
}

function ipArg(command: CommandName, name: string, text: string): string {
  if (!isIpAddress(text)) throw new UsageError(`${command}: ${name} must be an IP address, not "${text}"`, command);
  return text;
}

function hostPortArg(command: CommandName, name: string, text: string): { address: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(text);
  const address = match?.[1]?.replace(/^\[(.*)\]$/, '$1');
  const port = match ? Number(match[2]) : NaN;
  if (!address || !isIpAddress(address) || !(port >= 1 && port <= 65535)) {
    throw new UsageError(`${command}: ${name} must be IP:PORT, as in 127.0.0.1:1900, not "${text}"`, command);
  }
  return { address, port };
}

const NAT_HELP = `Gateway options:
  --nat SPEC              how to reach the gateway (default: any)
                            any                  race PCP, NAT-PMP and UPnP discovery
                            upnp                 UPnP via SSDP
                            upnp:<URL>           UPnP at that device description, no SSDP
                            pmp[:IP]             NAT-PMP at IP (default: the default gateway)
                            pcp[:IP]             PCP at IP (default: the default gateway)
                            extip:IP             no gateway: reachable on IP, ports forwarded by hand
                          go-ethereum's aliases work too: auto, on, natpmp, nat-pmp, ip:IP
  --timeout MS            discovery deadline (default: 3000 for any, the backend's own otherwise)
  --json                  machine-readable output on stdout`;

const TESTING_HELP = `Testing and lab options (point rxnat at a simulator or a lab router):
  --gateway IP            NAT-PMP/PCP gateway for specs without an address (any, pmp, pcp)
  --pmp-port N            NAT-PMP server port (default 5351)
  --pcp-port N            PCP server port (default: --pmp-port, else 5351)
  --ssdp-target IP:PORT   send UPnP M-SEARCH here instead of multicast (repeatable)
  --local-address IP      bind every socket to this local address
  --request-timeout MS    deadline of each request after discovery`;

const EXIT_HELP = `Exit codes: 0 success, 1 runtime failure (no gateway, refused), 2 usage error.
Debug log: DEBUG=rxnat:* rxnat ...`;

const COMMAND_HELP: Record<CommandName, string> = {
  discover: `Usage: rxnat discover [--nat SPEC] [--timeout MS] [--json]

Finds the NAT gateway and prints the backend that answered first, the gateway's address,
its external IP and how long discovery took. With --json: one object with backend, name,
gateway, externalIp, doubleNat and elapsedMs.`,
  ip: `Usage: rxnat ip [--nat SPEC] [--json]

Prints the gateway's external IP address (with --json: {"externalIp", "backend", "gateway",
"doubleNat"}). A private or CGNAT address means another NAT sits upstream (double NAT).`,
  map: `Usage: rxnat map <tcp|udp> <internalPort> [--external-port N] [--lifetime SECONDS]
                 [--description TEXT] [--duration SECONDS] [--nat SPEC] [--json]

Maps a port, keeps the mapping alive (renewed at a third of its lease, re-added when the
external IP changes or the gateway reboots) and prints every state change. On Ctrl-C or
SIGTERM, or after --duration, the mapping is deleted and rxnat exits 0 once the gateway
confirmed the delete. When it did not (refused, or no answer), rxnat prints one line per
mapping that may stay, with when its lease ends and the rxnat unmap command that removes it,
and exits 1. A second Ctrl-C exits at once (code 130) without waiting for the delete.

  --external-port N       external port to ask for (default: the internal port; the gateway
                          may grant another, which is printed)
  --lifetime SECONDS      lease to ask for, up to 604800 (default 60; 0 asks UPnP for a
                          permanent lease)
  --description TEXT      label in the router's table (UPnP; default "rxnat")
  --duration SECONDS      delete the mapping and exit after this long
  --keep-trying           keep retrying when the first mapping fails (default: exit 1)

Output: a live status line on a terminal, one line per change otherwise; with --json one
object per line: time, event (mapping, mapped, renewed, external-ip-changed, port-changed,
degraded, unmapped), status, protocol, internalPort, externalPort, externalIp,
lifetimeSeconds, backend, doubleNat, renewals, error (name, code, message; when the delete
was not confirmed also deletes: protocol, internalPort, externalPort, gateway, leaseEndsAtMs,
leaseEndsAt, error).`,
  unmap: `Usage: rxnat unmap <tcp|udp> <externalPort> [--internal-port N] [--nat SPEC]

Deletes a mapping.
  UPnP      DeletePortMapping by external port: works for any mapping of this host (a router
            in secure mode refuses to delete another host's mapping).
  NAT-PMP   a lifetime-0 request, which the protocol keys on the INTERNAL port of this host:
            --internal-port (default: the external port) must match the mapping's.
  PCP       needs the nonce of the process that created the mapping, which another process
            cannot know: deleting another process's PCP mapping fails (NOT_AUTHORIZED). Stop
            that process instead (rxnat map deletes on exit) or let the lease run out.

  --internal-port N       the mapping's internal port, for NAT-PMP/PCP (default: externalPort)`,
  list: `Usage: rxnat list [--nat SPEC] [--json]

Shows the gateway's port-mapping table. Only UPnP can list a router's table; NAT-PMP and PCP
have no such request, so with them this shows only the mappings this process holds, which
for a fresh rxnat process is none. Use --nat upnp (or upnp:<URL>) to see the router's table.`,
  demo: `Usage: rxnat demo

Starts the gateway simulator on 127.0.0.1 (NAT-PMP, PCP and UPnP on ephemeral ports), then
maps a port through PCP, NAT-PMP and UPnP in turn, with a 3-second lease so that renewals
show, changes the simulator's external IP, stops, and prints the simulator's table before
and after. Nothing is sent off loopback. Takes about 10 seconds.`,
};

/**
 * The `--help` text of a command, or of `rxnat` itself.
 *
 * @example
 * ```ts
 * process.stdout.write(helpText('map'));
 * ```
 */
export function helpText(topic: CommandName | undefined): string {
  if (topic === undefined) {
    return `rxnat: open ports on NAT gateways (UPnP IGD, NAT-PMP, PCP)

Usage:
  rxnat discover [--nat SPEC] [--timeout MS] [--json]
  rxnat ip       [--nat SPEC] [--json]
  rxnat map <tcp|udp> <internalPort> [--external-port N] [--lifetime SECONDS]
            [--description TEXT] [--duration SECONDS] [--nat SPEC] [--json]
  rxnat unmap <tcp|udp> <externalPort> [--nat SPEC]
  rxnat list     [--nat SPEC] [--json]
  rxnat demo
  rxnat <command> --help | rxnat --version

${NAT_HELP}

${EXIT_HELP}
`;
  }
  const natHelp = topic === 'demo' ? '' : `\n\n${NAT_HELP}\n\n${TESTING_HELP}`;
  return `${COMMAND_HELP[topic]}${natHelp}\n\n${EXIT_HELP}\n`;
}
