/**
 * The option tables of the `rxnat` command-line tool, one per command, and the help texts
 * generated from them: the parser ({@link parseCliArgs}) accepts exactly the options of a
 * command's table, and `--help` lists exactly those, so the two cannot drift apart.
 *
 * Loaded by `--help` and usage errors: imports nothing but types.
 *
 * @packageDocumentation
 */

/**
 * The commands of `rxnat`.
 *
 * @example
 * ```ts
 * const command: CommandName = 'map';
 * ```
 */
export type CommandName = 'discover' | 'ip' | 'status' | 'map' | 'unmap' | 'list' | 'demo';

/**
 * One option of a command: its name, the placeholder of its value (none: a flag), its default
 * and what it does, as `--help` shows them.
 *
 * @example
 * ```ts
 * const lifetime: OptionSpec = { name: 'lifetime', value: 'SECONDS', default: '60', description: 'lease to ask for', example: '120' };
 * ```
 */
export interface OptionSpec {
  /** The long name, without `--`. */
  readonly name: string;
  /** A one-letter alias, without `-`. */
  readonly short?: string;
  /** The placeholder of the value (`N`, `SECONDS`, `SPEC`, …); absent for a flag. */
  readonly value?: string;
  /** May be given several times; every value is kept. */
  readonly multiple?: boolean;
  /** The default, as `--help` shows it. */
  readonly default?: string;
  /** What it does (wrapped by `--help`). */
  readonly description: string;
  /** Lines shown verbatim under the description (a list of choices). */
  readonly details?: readonly string[];
  /** A valid value, used in messages ("as in --nat any") and by the tests that parse every option. */
  readonly example?: string;
}

/**
 * A titled group of options in a command's help.
 *
 * @example
 * ```ts
 * const group: OptionGroup = { title: 'Options', options: [JSON_OPTION] };
 * ```
 */
export interface OptionGroup {
  readonly title: string;
  /** Listed in the usage line (`[--nat SPEC]`); testing options are not. */
  readonly inUsage: boolean;
  readonly options: readonly OptionSpec[];
}

/**
 * A command as `--help` shows it and the parser takes it.
 *
 * @example
 * ```ts
 * COMMAND_SPECS.map.positionals; // '<tcp|udp> <port>[:<external>] ...'
 * ```
 */
export interface CommandSpec {
  readonly name: CommandName;
  /** The positional arguments, as the usage line shows them ('' for none). */
  readonly positionals: string;
  /** Positional arguments that parse (for examples and tests). */
  readonly examplePositionals: readonly string[];
  /** One line for `rxnat --help`. */
  readonly summary: string;
  /** The paragraphs of `rxnat <command> --help` between the usage line and the options. */
  readonly description: string;
  /** The option table. */
  readonly groups: readonly OptionGroup[];
}

const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', description: 'show this help and exit' };

const NAT_OPTION: OptionSpec = {
  name: 'nat',
  value: 'SPEC',
  default: 'any',
  description: 'how to reach the gateway',
  details: [
    'any[:IP]             race PCP, NAT-PMP and UPnP discovery (at IP)',
    'upnp[:IP]            UPnP via SSDP (preferring the IGD at IP)',
    'upnp:<URL>           UPnP at that device description, no SSDP',
    'pmp[:IP]             NAT-PMP at IP (default: the default gateway)',
    'pcp[:IP]             PCP at IP (default: the default gateway)',
    'any6[:IPv6]          IPv6 firewall openings: PCP over IPv6 and UPnP pinholes raced',
    'pcp6[:IPv6]          PCP over IPv6 (default: the IPv6 default router)',
    'pinhole[:<URL>]      UPnP IPv6 pinholes (WANIPv6FirewallControl), also upnp6',
    'IPv6 addresses may be bracketed; a link-local one needs its zone: pcp:[fe80::1%eth0]',
    'extip:IP             no gateway: reachable on IP, ports forwarded by hand',
    'stun[:HOST[:PORT]]   no gateway: the address a STUN server sees, ports by hand',
    "go-ethereum's aliases work too: auto, on, natpmp, nat-pmp, ip:IP",
  ],
  example: 'pmp:192.168.1.1',
};

const TIMEOUT_OPTION: OptionSpec = {
  name: 'timeout',
  value: 'MS',
  default: "3000 for any, the backend's own otherwise",
  description: 'discovery deadline',
  example: '250',
};

const JSON_OPTION: OptionSpec = { name: 'json', description: 'machine-readable output on stdout' };

const IPV6_OPTION: OptionSpec = {
  name: 'ipv6',
  description: "IPv6: open the router's IPv6 firewall for this host (PCP over IPv6, UPnP pinholes) instead of forwarding an IPv4 port; --nat any races both, pcp and upnp take their IPv6 form, pmp has none",
};

const TESTING_GROUP: OptionGroup = {
  title: 'Testing and lab options (point rxnat at a simulator or a lab router)',
  inUsage: false,
  options: [
    { name: 'gateway', value: 'IP', default: 'the default route\'s router', description: 'NAT-PMP/PCP gateway for specs without an address (any, pmp, pcp)', example: '127.0.0.1' },
    { name: 'pmp-port', value: 'N', default: '5351', description: 'NAT-PMP server port', example: '15351' },
    { name: 'pcp-port', value: 'N', default: '--pmp-port, else 5351', description: 'PCP server port', example: '15352' },
    { name: 'ssdp-target', value: 'IP:PORT', multiple: true, description: 'send UPnP M-SEARCH here instead of multicast (repeatable)', example: '127.0.0.1:1900' },
    { name: 'local-address', value: 'IP', description: 'bind every socket to this local address (with --ipv6: an IPv6 one binds the IPv6 sockets only)', example: '127.0.0.1' },
    { name: 'gateway6', value: 'IPv6', default: 'the IPv6 default route\'s router', description: 'with --ipv6: the router PCP over IPv6 asks', example: '::1' },
    { name: 'control-host', value: 'IPv6', description: "with --ipv6: send pinhole requests to the router at this IPv6 address (miniupnpd takes them over IPv6 only) when the IGD was found over IPv4", example: '::1' },
    { name: 'request-timeout', value: 'MS', default: "the backend's own", description: 'deadline of each request after discovery', example: '900' },
  ],
};

const gatewayGroup = (...options: OptionSpec[]): OptionGroup => ({ title: 'Gateway options', inUsage: true, options });
const helpGroup: OptionGroup = { title: 'Help', inUsage: false, options: [HELP_OPTION] };

/** The option groups of the commands that talk to a gateway through `--nat`. */
const NAT_GROUPS: readonly OptionGroup[] = [gatewayGroup(NAT_OPTION, IPV6_OPTION, TIMEOUT_OPTION, JSON_OPTION), TESTING_GROUP, helpGroup];

/**
 * Longest `--lifetime`: 7 days, IGDv2's maximum lease. (Longer leases would also put the renewal
 * timer, at a third of the lease, beyond what a JavaScript timer can hold.)
 */
export const MAX_CLI_LIFETIME_SECONDS = 604_800;

/** The lease `map --leave` asks for unless `--lifetime` says otherwise: RFC 6886's recommended 2 hours. */
export const LEAVE_LIFETIME_SECONDS = 7200;

/**
 * Every command's spec, in the order `rxnat --help` lists them.
 *
 * @example
 * ```ts
 * COMMAND_SPECS.status.groups.flatMap((g) => g.options).map((o) => o.name); // ['timeout', 'json', 'gateway', ...]
 * ```
 */
export const COMMAND_SPECS: Readonly<Record<CommandName, CommandSpec>> = {
  discover: {
    name: 'discover',
    positionals: '',
    examplePositionals: [],
    summary: 'the winning backend, gateway, external IP, time taken',
    description: `Finds the NAT gateway and prints the backend that answered first, the gateway's address,
its external IP and how long discovery took. With --json: one object with backend, name,
gateway, externalIp, doubleNat and elapsedMs.`,
    groups: NAT_GROUPS,
  },
  ip: {
    name: 'ip',
    positionals: '',
    examplePositionals: [],
    summary: 'the external address',
    description: `Prints the gateway's external IP address (with --json: {"externalIp", "backend", "gateway",
"doubleNat"}). A private or CGNAT address means another NAT sits upstream (double NAT).`,
    groups: NAT_GROUPS,
  },
  status: {
    name: 'status',
    positionals: '',
    examplePositionals: [],
    summary: 'every protocol probed: what each answered, external IP, double NAT',
    description: `Probes PCP, NAT-PMP and UPnP at once, each on its own (not a race), and prints what each
answered: found (with the gateway, its external IP and the time taken), error (the gateway
refused or is unreachable, with the code) or silent (no answer in time). Then the protocols
that can map ports, the external address and whether another NAT sits upstream (double NAT).
PCP is probed without its NAT-PMP fallback, so a NAT-PMP-only gateway shows as a PCP error.
Exit 0 when at least one protocol found a gateway, else 1. With --json: one object with
gateway, protocols (pcp, pmp, upnp: status, name, gateway, externalIp, elapsedMs, error),
portMapping, externalIp and doubleNat. With --ipv6 also an IPv6 line (ipv6 in JSON: status,
name, backend, gateway, elapsedMs, error): who opens the IPv6 firewall, PCP over IPv6 or UPnP
pinholes, whichever answers first.`,
    groups: [
      gatewayGroup(
        { ...TIMEOUT_OPTION, default: '3000', description: "deadline of each protocol's probe" },
        { name: 'ipv6', description: 'also probe IPv6 firewall openings (PCP over IPv6 and UPnP pinholes, raced) and print them as one more line' },
        JSON_OPTION,
      ),
      TESTING_GROUP,
      helpGroup,
    ],
  },
  map: {
    name: 'map',
    positionals: '<tcp|udp> <port>[:<external>] ...',
    examplePositionals: ['tcp', '8080'],
    summary: 'map and keep renewed; Ctrl-C deletes (--leave: add and exit)',
    description: `Maps one or more ports, given as pairs of protocol and internal port, each optionally with
the external port to ask for after a colon: rxnat map tcp 8080 udp 4001:14001 maps TCP 8080
(external 8080) and UDP 4001 (external 14001), at once. The mappings are kept alive (renewed
at a third of their lease, re-added when the external IP changes or the gateway reboots) and
every state change is printed. On Ctrl-C or SIGTERM, or after --duration, every mapping is
deleted and rxnat exits 0 once the gateway confirmed every delete. When it did not (refused,
or no answer), rxnat prints one line per mapping that may stay, with when its lease ends and
the rxnat unmap command that removes it, and exits 1. A second Ctrl-C exits at once (code
130) without waiting for the deletes. Unless --keep-trying, a mapping that cannot be made
stops them all (the ones made are deleted) and rxnat exits 1.

With --leave (like upnpc -a), rxnat adds the mappings, prints each lease it leaves (external
address and port, lifetime and when it ends) and how to remove it, and exits 0 without
deleting them. PCP lets only the process that made a mapping delete it: a PCP mapping left
behind cannot be removed by another process and stays until its lease ends (use --nat pmp
or --nat upnp for one you can remove).

Output: a live status line on a terminal, one line per change otherwise; with --json one
object per line: time, event (mapping, mapped, renewed, external-ip-changed, port-changed,
degraded, unmapped), status, protocol, internalPort, externalPort, externalIp,
lifetimeSeconds, backend, doubleNat, renewals, error (name, code, message; when the delete
was not confirmed also deletes: protocol, internalPort, externalPort, gateway, leaseEndsAtMs,
leaseEndsAt, error). With --leave --json: one object per mapping, event left (or failed),
with leaseEndsAtMs, leaseEndsAt, unmap (the command that removes it, null for PCP) and note.`,
    groups: [
      {
        title: 'Options',
        inUsage: true,
        options: [
          { name: 'lifetime', value: 'SECONDS', default: `60; ${LEAVE_LIFETIME_SECONDS} with --leave`, description: `lease to ask for, 0 to ${MAX_CLI_LIFETIME_SECONDS}; 0 asks UPnP for a permanent lease`, example: '120' },
          { name: 'description', value: 'TEXT', default: 'rxnat', description: "label in the router's table, UPnP only", example: 'my app' },
          { name: 'duration', value: 'SECONDS', description: 'delete the mappings and exit after this long', example: '1.5' },
          { name: 'leave', description: 'add the mappings, print their leases and how to remove them, exit without deleting' },
          { name: 'keep-trying', default: 'exit 1', description: 'keep retrying when a mapping cannot be made' },
          { name: 'no-announcements', default: 'listen on udp 5350', description: "do not listen for the gateway's NAT-PMP/PCP announcements (a router reboot is then noticed at the next reply, not at once)" },
          { name: 'external-port', value: 'N', default: 'the internal port', description: 'external port to ask for, with one mapping (same as tcp 8080:N); the gateway may grant another, which is printed', example: '14001' },
          { name: 'internal-address', value: 'IPv6', default: 'the address facing the router', description: 'which of this host\'s IPv6 addresses to open (global or unique-local; implies --ipv6)', example: '2001:db8::10' },
        ],
      },
      ...NAT_GROUPS,
    ],
  },
  unmap: {
    name: 'unmap',
    positionals: '<tcp|udp> <externalPort>',
    examplePositionals: ['tcp', '8080'],
    summary: 'delete a mapping (PCP: only the creating process can)',
    description: `Deletes a mapping.
  UPnP      DeletePortMapping by external port: works for any mapping of this host (a router
            in secure mode refuses to delete another host's mapping).
  NAT-PMP   a lifetime-0 request, which the protocol keys on the INTERNAL port of this host:
            --internal-port (default: the external port) must match the mapping's.
  PCP       needs the nonce of the process that created the mapping, which another process
            cannot know: deleting another process's PCP mapping fails (NOT_AUTHORIZED). Stop
            that process instead (rxnat map deletes on exit) or let the lease run out.`,
    groups: [
      {
        title: 'Options',
        inUsage: true,
        options: [{ name: 'internal-port', value: 'N', default: 'the external port', description: "the mapping's internal port, for NAT-PMP/PCP", example: '80' }],
      },
      ...NAT_GROUPS,
    ],
  },
  list: {
    name: 'list',
    positionals: '',
    examplePositionals: [],
    summary: "the router's table (through UPnP, also when PCP or NAT-PMP won discovery)",
    description: `Shows the gateway's port-mapping table and says on stderr where it comes from. Only UPnP
can list a router's table; NAT-PMP and PCP have no such request. With --nat any, when PCP or
NAT-PMP wins discovery, rxnat reads the table through UPnP instead; if no UPnP gateway
answers, or with --nat pmp or pcp, it shows only the mappings this process holds, which for
a fresh rxnat process is none. With --json: one object with source (router or process),
backend and gateway (where the table was read), discovered (the winner of discovery),
complete, note and mappings.

With --pinholes: the router's IPv6 firewall service instead (UPnP WANIPv6FirewallControl).
That service has no action that lists pinholes, so no tool can show the router's pinholes
through it: rxnat says whether the firewall is on and lets pinholes in (GetFirewallStatus) and
shows the pinholes this process holds (none for a fresh rxnat). With --json: source
(process), backend, gateway, firewallStatus (firewallEnabled, inboundPinholeAllowed),
complete (false), note and pinholes.`,
    groups: [
      {
        title: 'Options',
        inUsage: true,
        options: [{ name: 'pinholes', description: "the IPv6 firewall's pinholes (UPnP WANIPv6FirewallControl) instead of the port-mapping table" }],
      },
      ...NAT_GROUPS,
    ],
  },
  demo: {
    name: 'demo',
    positionals: '',
    examplePositionals: [],
    summary: 'everything above on the built-in simulator, on loopback',
    description: `Starts the gateway simulator on 127.0.0.1 (NAT-PMP, PCP and UPnP on ephemeral ports), then
maps a port through PCP, NAT-PMP and UPnP in turn, with a 3-second lease so that renewals
show, changes the simulator's external IP, stops, and prints the simulator's table before
and after. Nothing is sent off loopback. Takes about 10 seconds.`,
    groups: [helpGroup],
  },
};

/**
 * Every command, in the order `rxnat --help` lists them.
 *
 * @example
 * ```ts
 * COMMANDS.includes('demo'); // true
 * ```
 */
export const COMMANDS: readonly CommandName[] = Object.keys(COMMAND_SPECS) as CommandName[];

/**
 * Every option of a command, in table order.
 *
 * @example
 * ```ts
 * commandOptions('demo').map((o) => o.name); // ['help']
 * ```
 */
export function commandOptions(command: CommandName): readonly OptionSpec[] {
  return COMMAND_SPECS[command].groups.flatMap((g) => g.options);
}

const WIDTH = 96;
const LABEL_WIDTH = 22;

const EXIT_HELP = `Exit codes: 0 success, 1 runtime failure (no gateway, refused), 2 usage error.
Debug log: DEBUG=rxnat:* rxnat ...`;

/** `--name VALUE`, or `-h, --help`. */
export function optionLabel(option: OptionSpec): string {
  return `${option.short ? `-${option.short}, ` : ''}--${option.name}${option.value ? ` ${option.value}` : ''}`;
}

/** Words of `text` wrapped to `width`, every line after the first indented by `indent`. */
function wrap(text: string, first: number, indent: number): string[] {
  const lines: string[] = [];
  let line = '';
  let room = WIDTH - first;
  for (const word of text.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > room) {
      lines.push(line);
      line = word;
      room = WIDTH - indent;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines.map((l, i) => (i === 0 ? l : `${' '.repeat(indent)}${l}`));
}

function optionLines(option: OptionSpec): string[] {
  const label = `  ${optionLabel(option)}`;
  const text = `${option.description}${option.default !== undefined ? ` (default: ${option.default})` : ''}${option.details ? ':' : ''}`;
  const column = 2 + LABEL_WIDTH + 2;
  const lines =
    label.length <= column - 2
      ? [`${label.padEnd(column)}${wrap(text, column, column).join('\n')}`]
      : [label, `${' '.repeat(column)}${wrap(text, column, column).join('\n')}`];
  for (const detail of option.details ?? []) lines.push(`${' '.repeat(column + 2)}${detail}`);
  return lines;
}

/** `rxnat map <tcp|udp> ... [--lifetime SECONDS] ...`, wrapped under its command. */
function usageLine(spec: CommandSpec, prefix: string): string {
  const head = `${prefix}rxnat ${spec.name}`;
  const words = [
    ...(spec.positionals ? [spec.positionals] : []),
    ...spec.groups.filter((g) => g.inUsage).flatMap((g) => g.options.map((o) => `[${optionLabel(o)}]`)),
  ];
  const indent = head.length + 1;
  const lines: string[] = [];
  let line = head;
  for (const word of words) {
    if (line.length + 1 + word.length > WIDTH && line.trim() !== head.trim()) {
      lines.push(line);
      line = `${' '.repeat(indent)}${word}`;
    } else {
      line = `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines.join('\n');
}

/**
 * The `--help` text of a command, or of `rxnat` itself, generated from the option tables.
 *
 * @example
 * ```ts
 * process.stdout.write(helpText('map'));
 * ```
 */
export function helpText(topic: CommandName | undefined): string {
  if (topic === undefined) {
    const commands = COMMANDS.map((name) => {
      const spec = COMMAND_SPECS[name];
      return `${usageLine(spec, '  ')}\n      ${spec.summary}`;
    });
    return `rxnat: open ports on NAT gateways (UPnP IGD, NAT-PMP, PCP)

Usage:
${commands.join('\n')}
  rxnat <command> --help | rxnat --version

${groupText(gatewayGroup(NAT_OPTION, TIMEOUT_OPTION, JSON_OPTION))}

${EXIT_HELP}
`;
  }
  const spec = COMMAND_SPECS[topic];
  const groups = spec.groups.map(groupText).join('\n\n');
  return `${usageLine(spec, 'Usage: ')}\n\n${spec.description}\n\n${groups}\n\n${EXIT_HELP}\n`;
}

function groupText(group: OptionGroup): string {
  return `${group.title}:\n${group.options.flatMap(optionLines).join('\n')}`;
}
