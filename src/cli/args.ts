/**
 * Argument parsing of the `rxnat` command-line tool, driven by the option tables of
 * {@link COMMAND_SPECS}: strict (an unknown option or a missing value is a usage error, with
 * the nearest option or command suggested), values checked and converted here so that commands
 * receive typed, validated input. A value that looks like a negative number (`--lifetime -1`,
 * `map tcp -5`) is taken as a value and then checked, so its message is about its range.
 *
 * @packageDocumentation
 */
import { isIpAddress } from '../core/address.js';
import type { MappingProtocol } from '../core/nat.js';
import {
  COMMAND_SPECS,
  COMMANDS,
  commandOptions,
  helpText,
  MAX_CLI_LIFETIME_SECONDS,
  optionLabel,
  type CommandName,
  type OptionSpec,
} from './options.js';

export { COMMAND_SPECS, COMMANDS, helpText, type CommandName };

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
  /** `map --no-announcements`: NAT-PMP and PCP do not listen for the gateway's announcements. */
  readonly announcements?: false;
  /** `--ssdp-target host:port` (repeatable): where UPnP M-SEARCH goes instead of multicast. */
  readonly ssdpTargets: readonly { readonly address: string; readonly port: number }[];
  /** `--local-address`: local address to bind every socket to. */
  readonly localAddress: string | undefined;
  /** `--ipv6`: IPv6 firewall openings (PCP over IPv6, UPnP pinholes) instead of IPv4 port forwarding. */
  readonly ipv6?: boolean;
  /** `--gateway6`: the IPv6 router PCP over IPv6 asks (with `--ipv6`). */
  readonly gateway6?: string | undefined;
  /** `--control-host`: the router's IPv6 address, where pinhole requests go when the IGD was found over IPv4. */
  readonly controlHost?: string | undefined;
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
 * One mapping of `rxnat map`: `tcp 8080`, or `udp 4001:14001` with the external port to ask for.
 *
 * @example
 * ```ts
 * const spec: MappingSpec = { protocol: 'udp', internalPort: 4001, externalPort: 14001 };
 * ```
 */
export interface MappingSpec {
  readonly protocol: MappingProtocol;
  readonly internalPort: number;
  /** The external port to ask for; `undefined`: the internal port. */
  readonly externalPort: number | undefined;
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
  /** Bare `rxnat`: the usage on stderr, exit 2. */
  | { readonly command: 'usage' }
  | { readonly command: 'version' }
  | ({ readonly command: 'discover' } & CommonArgs)
  | ({ readonly command: 'ip' } & CommonArgs)
  | ({ readonly command: 'status' } & CommonArgs)
  /** `pinholes`: `--pinholes`, the IPv6 pinholes instead of the port-mapping table. */
  | ({ readonly command: 'list'; readonly pinholes?: boolean } & CommonArgs)
  | ({
      readonly command: 'map';
      /** At least one; no protocol and internal port twice, no protocol and external port twice. */
      readonly mappings: readonly MappingSpec[];
      readonly lifetimeSeconds: number | undefined;
      readonly description: string | undefined;
      /** `--duration`: stop (and delete) after this many seconds; `undefined` runs until a signal. */
      readonly durationSeconds: number | undefined;
      /** `--keep-trying`: do not give up when a first mapping cannot be made. */
      readonly keepTrying: boolean;
      /** `--leave`: add, report, exit without deleting. */
      readonly leave: boolean;
      /** `--internal-address`: with `--ipv6`, which of this host's IPv6 addresses to open. */
      readonly internalAddress?: string | undefined;
    } & CommonArgs)
  | ({
      readonly command: 'unmap';
      readonly protocol: MappingProtocol;
      readonly externalPort: number;
      /** `--internal-port`: NAT-PMP/PCP delete by internal port; defaults to the external port. */
      readonly internalPort: number | undefined;
    } & CommonArgs)
  | { readonly command: 'demo' };

/**
 * Parses `rxnat`'s arguments (without `node` and the script). Throws {@link UsageError}.
 *
 * @example
 * ```ts
 * const args = parseCliArgs(['map', 'tcp', '8080', 'udp', '4001:14001', '--lifetime', '120', '--json']);
 * if (args.command === 'map') console.log(args.mappings.length, args.lifetimeSeconds); // 2 120
 * ```
 */
export function parseCliArgs(argv: readonly string[]): ParsedArgs {
  const [first, ...rest] = argv;
  if (first === undefined) return { command: 'usage' };
  if (first === '--help' || first === '-h') return { command: 'help', topic: undefined };
  if (first === '--version' || first === '-V') return { command: 'version' };
  if (first === 'help') {
    const topic = rest[0];
    if (topic === undefined) return { command: 'help', topic: undefined };
    return { command: 'help', topic: commandName(topic) };
  }
  const command = commandName(first);
  // --help wins over anything else on the line, right or wrong.
  if (rest.includes('--help') || rest.includes('-h')) return { command: 'help', topic: command };
  const { values, positionals } = tokenize(command, rest);

  const expectNoPositionals = (example: string): void => {
    if (positionals.length > 0) throw new UsageError(`${command}: unexpected argument "${positionals[0]}" (${command} takes none, as in: ${example})`, command);
  };

  switch (command) {
    case 'demo':
      expectNoPositionals('rxnat demo');
      return { command };
    case 'discover':
    case 'ip':
      expectNoPositionals(`rxnat ${command} --nat pmp:192.168.1.1`);
      return { command, ...commonArgs(command, values) };
    case 'list': {
      expectNoPositionals(`rxnat ${command} --nat pmp:192.168.1.1`);
      const pinholes = values.get('pinholes') === true;
      return { command, ...commonArgs(command, values), ...(pinholes ? { pinholes, ipv6: true } : {}) };
    }
    case 'status':
      expectNoPositionals('rxnat status --json');
      return { command, ...commonArgs(command, values) };
    case 'map': {
      const leave = values.get('leave') === true;
      const durationSeconds = optional(values.get('duration'), (v) => secondsArg(command, '--duration', v));
      const keepTrying = values.get('keep-trying') === true;
      if (leave && durationSeconds !== undefined) throw new UsageError('map: --leave adds the mappings and exits at once: --duration does not go with it', command);
      if (leave && keepTrying) throw new UsageError('map: --leave adds the mappings once and exits: --keep-trying does not go with it', command);
      const internalAddress = optional(values.get('internal-address'), (v) => ipv6AddressArg(command, '--internal-address', v));
      return {
        ...(internalAddress !== undefined ? { internalAddress } : {}),
        command,
        mappings: mappingSpecs(positionals, optional(values.get('external-port'), (v) => portArg(command, '--external-port', v))),
        lifetimeSeconds: optional(values.get('lifetime'), (v) => integerArg(command, '--lifetime', v, 0, MAX_CLI_LIFETIME_SECONDS)),
        description: stringValue(values.get('description')),
        durationSeconds,
        keepTrying,
        leave,
        ...commonArgs(command, values),
        ...(values.get('no-announcements') === true ? { announcements: false as const } : {}),
      };
    }
    case 'unmap': {
      if (positionals.length < 2) throw new UsageError('unmap needs a protocol and an external port, as in: rxnat unmap tcp 8080', command);
      if (positionals.length > 2) throw new UsageError(`unmap: unexpected argument "${positionals[2]}" (one mapping at a time, as in: rxnat unmap tcp 8080)`, command);
      return {
        command,
        protocol: protocolArg(command, positionals[0]!),
        externalPort: portArg(command, 'external port', positionals[1]!),
        internalPort: optional(values.get('internal-port'), (v) => portArg(command, '--internal-port', v)),
        ...commonArgs(command, values),
      };
    }
  }
}

type Value = string | true | string[];

/** `-5`, `-1.5`: a value, not an option. */
const NEGATIVE_NUMBER = /^-\d+(\.\d+)?$/;

/**
 * Splits `args` into option values and positionals along the command's option table: `--name
 * VALUE`, `--name=VALUE`, flags, `-h`, `--` (everything after it is positional). A value that
 * starts with a dash is taken only when it is a negative number (else it is the next option,
 * and the one before lacks its value).
 */
function tokenize(command: CommandName, args: readonly string[]): { values: Map<string, Value>; positionals: string[] } {
  const options = commandOptions(command);
  const values = new Map<string, Value>();
  const positionals: string[] = [];
  let onlyPositionals = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (onlyPositionals || arg === '-' || !arg.startsWith('-') || NEGATIVE_NUMBER.test(arg)) {
      positionals.push(arg);
      continue;
    }
    if (arg === '--') {
      onlyPositionals = true;
      continue;
    }
    const long = arg.startsWith('--');
    const equals = arg.indexOf('=');
    const name = long ? arg.slice(2, equals < 0 ? undefined : equals) : arg.slice(1);
    const inline = long && equals >= 0 ? arg.slice(equals + 1) : undefined;
    const option = long ? options.find((o) => o.name === name) : options.find((o) => o.short === name);
    if (option === undefined) throw unknownOption(command, long ? `--${name}` : arg, options);
    if (option.value === undefined) {
      if (inline !== undefined) throw new UsageError(`${command}: --${option.name} is a flag and takes no value (give --${option.name} alone, not "${arg}")`, command);
      values.set(option.name, true);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith('-') && next !== '-' && !NEGATIVE_NUMBER.test(next))) throw missingValue(command, option, next);
      value = next;
      i++;
    }
    if (option.multiple) {
      const previous = values.get(option.name);
      values.set(option.name, [...(Array.isArray(previous) ? previous : []), value]);
    } else {
      values.set(option.name, value);
    }
  }
  return { values, positionals };
}

function missingValue(command: CommandName, option: OptionSpec, next: string | undefined): UsageError {
  const example = option.example !== undefined ? `, as in --${option.name} ${option.example}` : '';
  // node's parseArgs hint, kept: a value that starts with a dash goes after "=".
  const hint = next !== undefined ? `; "${next}" is taken as an option: to give a value that starts with a dash, write --${option.name}=${next}` : '';
  return new UsageError(`${command}: --${option.name} needs a value (${option.value})${example}${hint}`, command);
}

function unknownOption(command: CommandName, given: string, options: readonly OptionSpec[]): UsageError {
  const name = given.replace(/^-+/, '');
  const nearest = nearestName(
    name,
    options.map((o) => o.name),
  );
  if (nearest !== undefined) return new UsageError(`${command}: unknown option '${given}': did you mean --${nearest}?`, command);
  const elsewhere = COMMANDS.filter((c) => c !== command && commandOptions(c).some((o) => o.name === name));
  if (elsewhere.length > 0) {
    const own = options.filter((o) => o.name !== 'help').map(optionLabel);
    return new UsageError(
      `${command}: unknown option '${given}': it is an option of ${listOf(elsewhere)}, not of ${command}${own.length > 0 ? '' : ` (${command} takes no options)`}`,
      command,
    );
  }
  return new UsageError(`${command}: unknown option '${given}'`, command);
}

function listOf(words: readonly string[]): string {
  return words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words.at(-1)}`;
}

/**
 * The candidate nearest to `given`: the only one it is a prefix of (at least 2 letters), else
 * the one at the smallest edit distance (insertions, deletions, substitutions and swaps of
 * neighbours), when that distance is small for the word's length; `undefined` when none is near.
 *
 * @example
 * ```ts
 * nearestName('lifetim', ['lifetime', 'description']); // 'lifetime'
 * nearestName('bogus', ['lifetime', 'description']);   // undefined
 * ```
 */
export function nearestName(given: string, candidates: readonly string[]): string | undefined {
  const lower = given.toLowerCase();
  if (lower === '') return undefined;
  const prefixed = candidates.filter((c) => c.startsWith(lower));
  if (lower.length >= 2 && prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const allowed = Math.min(3, Math.max(1, Math.floor(lower.length / 3)));
  return bestDistance <= allowed ? best : undefined;
}

/** Optimal string alignment distance (Damerau-Levenshtein without repeated edits of a substring). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, d[i - 2]![j - 2]! + 1);
      d[i]![j] = value;
    }
  }
  return d[a.length]![b.length]!;
}

function commandName(text: string): CommandName {
  if ((COMMANDS as readonly string[]).includes(text)) return text as CommandName;
  if (text.startsWith('-')) throw new UsageError(`give a command before options (${COMMANDS.join(', ')}), as in: rxnat discover ${text}`);
  const nearest = nearestName(text, COMMANDS);
  throw new UsageError(`unknown command "${text}": ${nearest !== undefined ? `did you mean ${nearest}? ` : ''}use one of ${COMMANDS.join(', ')}`);
}

/** The pairs of `rxnat map`: protocol, then port or port:external. */
function mappingSpecs(positionals: readonly string[], externalPortOption: number | undefined): MappingSpec[] {
  const command = 'map';
  const example = 'rxnat map tcp 8080 udp 4001:14001';
  if (positionals.length < 2) throw new UsageError('map needs a protocol and an internal port, as in: rxnat map tcp 8080', command);
  const specs: MappingSpec[] = [];
  for (let i = 0; i < positionals.length; i += 2) {
    const protocolText = positionals[i]!;
    const portText = positionals[i + 1];
    if (!/^(tcp|udp)$/i.test(protocolText) && /^-?\d+(:-?\d*)?$/.test(protocolText)) {
      throw new UsageError(`map: "${protocolText}" has no protocol before it: give each mapping as a protocol and a port, as in: ${example}`, command);
    }
    const protocol = protocolArg(command, protocolText);
    if (portText === undefined) throw new UsageError(`map: ${protocolText} needs an internal port after it, as in: ${example}`, command);
    const colon = portText.indexOf(':');
    const internalPort = portArg(command, 'internal port', colon < 0 ? portText : portText.slice(0, colon));
    const externalPort = colon < 0 ? undefined : portArg(command, 'external port', portText.slice(colon + 1));
    specs.push({ protocol, internalPort, externalPort });
  }
  if (externalPortOption !== undefined) {
    if (specs.length > 1) {
      throw new UsageError(`map: --external-port applies to one mapping; with several, give each its external port after a colon, as in: ${example}`, command);
    }
    if (specs[0]!.externalPort !== undefined) {
      throw new UsageError(`map: the external port is given twice (${positionals[1]} and --external-port ${externalPortOption}): give one`, command);
    }
    specs[0] = { ...specs[0]!, externalPort: externalPortOption };
  }
  for (let i = 0; i < specs.length; i++) {
    for (let j = 0; j < i; j++) {
      const [a, b] = [specs[j]!, specs[i]!];
      if (a.protocol !== b.protocol) continue;
      if (a.internalPort === b.internalPort) {
        throw new UsageError(`map: ${b.protocol} ${b.internalPort} is given twice (one mapping per protocol and internal port: NAT-PMP and PCP key mappings on it)`, command);
      }
      if ((a.externalPort ?? a.internalPort) === (b.externalPort ?? b.internalPort)) {
        throw new UsageError(`map: external port ${b.protocol} ${b.externalPort ?? b.internalPort} is asked for twice (for ${a.internalPort} and ${b.internalPort}): give each mapping its own`, command);
      }
    }
  }
  return specs;
}

function commonArgs(command: CommandName, values: Map<string, Value>): CommonArgs {
  const nat = stringValue(values.get('nat')) ?? 'any';
  if (nat.trim() === '') throw new UsageError(`${command}: --nat needs a spec such as any, upnp, pmp:192.168.1.1 or pcp`, command);
  const pmpPort = optional(values.get('pmp-port'), (v) => portArg(command, '--pmp-port', v));
  const targets = values.get('ssdp-target');
  return {
    nat,
    json: values.get('json') === true,
    timeoutMs: optional(values.get('timeout'), (v) => integerArg(command, '--timeout', v, 1, 600_000)),
    requestTimeoutMs: optional(values.get('request-timeout'), (v) => integerArg(command, '--request-timeout', v, 1, 600_000)),
    gateway: optional(values.get('gateway'), (v) => ipArg(command, '--gateway', v)),
    pmpPort,
    pcpPort: optional(values.get('pcp-port'), (v) => portArg(command, '--pcp-port', v)) ?? pmpPort,
    ssdpTargets: (Array.isArray(targets) ? targets : []).map((t) => hostPortArg(command, '--ssdp-target', t)),
    localAddress: optional(values.get('local-address'), (v) => ipArg(command, '--local-address', v)),
    // --internal-address names an IPv6 address: it implies --ipv6.
    ...(values.get('ipv6') === true || values.has('internal-address') ? { ipv6: true } : {}),
    ...optionalEntry('gateway6', optional(values.get('gateway6'), (v) => ipv6RouterArg(command, '--gateway6', v))),
    ...optionalEntry('controlHost', optional(values.get('control-host'), (v) => ipv6AddressArg(command, '--control-host', v))),
  };
}

function optionalEntry<K extends string, T>(key: K, value: T | undefined): { [P in K]?: T } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: T };
}

/** An IPv6 router address (brackets allowed), with a zone when link-local (`fe80::1%eth0`). */
function ipv6RouterArg(command: CommandName, name: string, text: string): string {
  const bare = text.replace(/^\[(.*)\]$/, '$1');
  const [address = '', zone] = bare.split('%');
  if (!address.includes(':') || !isIpAddress(address) || (zone !== undefined && !/^[0-9A-Za-z._-]{1,64}$/.test(zone))) {
    throw new UsageError(`${command}: ${name} must be an IPv6 address (a link-local one with its zone, as in fe80::1%eth0), not "${text}"`, command);
  }
  return bare;
}

/** An IPv6 address (brackets allowed), without zone. */
function ipv6AddressArg(command: CommandName, name: string, text: string): string {
  const bare = text.replace(/^\[(.*)\]$/, '$1');
  if (!bare.includes(':') || !isIpAddress(bare)) throw new UsageError(`${command}: ${name} must be an IPv6 address, not "${text}"`, command);
  return bare;
}

function stringValue(value: Value | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function optional<T>(value: Value | undefined, convert: (text: string) => T): T | undefined {
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

