/** In-process tests of the CLI's argument parser and help texts (no processes, no network). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMMAND_SPECS, COMMANDS, editDistance, helpText, nearestName, parseCliArgs, UsageError, type NatOptions } from '../../src/cli/args.js';
import { natSourceOptions } from '../../src/cli/commands/common.js';
import { silentLogger } from '../../src/core/logger.js';
import { describeFailure } from '../../src/cli/format.js';
import { commandOptions, optionLabel } from '../../src/cli/options.js';

test('map: positionals and options are typed and checked', () => {
  const args = parseCliArgs([
    'map', 'UDP', '4001', '--external-port', '14001', '--lifetime', '120', '--description', 'my app', '--duration', '1.5',
    '--nat', 'pmp:127.0.0.1', '--pmp-port', '15351', '--json', '--keep-trying',
  ]);
  assert.deepEqual(args, {
    command: 'map', mappings: [{ protocol: 'udp', internalPort: 4001, externalPort: 14001 }], lifetimeSeconds: 120, description: 'my app',
    durationSeconds: 1.5, keepTrying: true, leave: false, nat: 'pmp:127.0.0.1', json: true, timeoutMs: undefined, requestTimeoutMs: undefined,
    gateway: undefined, pmpPort: 15351, pcpPort: 15351, ssdpTargets: [], localAddress: undefined,
  });
});

test('map --no-announcements: NAT-PMP and PCP are given announcements: false; without it they listen (the default)', () => {
  const args = parseCliArgs(['map', 'tcp', '8080', '--no-announcements', '--nat', 'pmp:127.0.0.1']);
  assert.ok(args.command === 'map' && args.announcements === false);
  const off = natSourceOptions(args, silentLogger);
  assert.equal(off.pmp?.announcements, false);
  assert.equal(off.pcp?.announcements, false);
  const on = natSourceOptions(parseCliArgs(['map', 'tcp', '8080']) as NatOptions, silentLogger);
  assert.ok(!('announcements' in (on.pmp ?? {})) && !('announcements' in (on.pcp ?? {})), 'left to the backend default');
  assert.throws(() => parseCliArgs(['ip', '--no-announcements']), UsageError, 'a map option only');
});

test('map: several mappings as protocol-port pairs, each with an optional :external port', () => {
  const args = parseCliArgs(['map', 'tcp', '8080', 'udp', '4001:14001', 'TCP', '8443', '--leave', '--lifetime', '300']);
  assert.equal(args.command, 'map');
  if (args.command !== 'map') return;
  assert.deepEqual(args.mappings, [
    { protocol: 'tcp', internalPort: 8080, externalPort: undefined },
    { protocol: 'udp', internalPort: 4001, externalPort: 14001 },
    { protocol: 'tcp', internalPort: 8443, externalPort: undefined },
  ]);
  assert.equal(args.leave, true);
  assert.equal(args.lifetimeSeconds, 300);
  // The same protocol may map the same internal port number under the other protocol.
  const both = parseCliArgs(['map', 'tcp', '53', 'udp', '53']);
  assert.ok(both.command === 'map' && both.mappings.length === 2);
  // Options may come anywhere, and "--" ends them.
  const late = parseCliArgs(['map', '--json', 'tcp', '--lifetime=30', '8080', '--', 'udp', '9']);
  assert.ok(late.command === 'map' && late.json && late.lifetimeSeconds === 30 && late.mappings.length === 2);
});

test('status: the testing options, no --nat', () => {
  const args = parseCliArgs(['status', '--gateway', '127.0.0.1', '--pmp-port', '15351', '--ssdp-target', '127.0.0.1:1900', '--timeout', '500', '--json']);
  assert.equal(args.command, 'status');
  if (args.command !== 'status') return;
  assert.deepEqual([args.gateway, args.pmpPort, args.pcpPort, args.ssdpTargets, args.timeoutMs, args.json], ['127.0.0.1', 15351, 15351, [{ address: '127.0.0.1', port: 1900 }], 500, true]);
});

test('bare rxnat is a usage error (usage on stderr, exit 2), not help', () => {
  assert.deepEqual(parseCliArgs([]), { command: 'usage' });
});

test('every option of every table appears in its help and parses, with an effect', () => {
  for (const command of COMMANDS) {
    const spec = COMMAND_SPECS[command];
    const help = helpText(command);
    const flat = help.replace(/\s+/g, ' '); // wrapped lines joined
    const base = [command, ...spec.examplePositionals];
    const plain = parseCliArgs(base);
    for (const option of commandOptions(command)) {
      assert.ok(help.includes(`  ${optionLabel(option)}`), `${command} --help lists ${optionLabel(option)}`);
      if (option.default !== undefined) assert.ok(flat.includes(`(default: ${option.default})`), `${command} --help shows the default of --${option.name}`);
      if (option.value !== undefined) assert.ok(option.example !== undefined, `--${option.name} has an example value`);
      const given = option.value === undefined ? [`--${option.name}`] : [`--${option.name}`, option.example!];
      const parsed = parseCliArgs([...base, ...given]);
      assert.notDeepEqual(parsed, plain, `${command} --${option.name} changes the parsed result`);
      if (option.value !== undefined) assert.deepEqual(parseCliArgs([...base, `--${option.name}=${option.example!}`]), parsed, `--${option.name}=VALUE`);
      if (option.short !== undefined) assert.deepEqual(parseCliArgs([...base, `-${option.short}`]), parsed, `-${option.short}`);
    }
    // And nothing parses that the table does not list.
    assert.throws(() => parseCliArgs([...base, '--not-in-any-table']), UsageError);
  }
  // The usage lines of rxnat --help come from the same tables.
  const top = helpText(undefined);
  for (const command of COMMANDS) assert.ok(top.includes(`rxnat ${command}`) && top.includes(COMMAND_SPECS[command].summary), command);
  assert.match(helpText('map'), /^Usage: rxnat map <tcp\|udp> <port>\[:<external>\] \.\.\. \[--lifetime SECONDS\]/);
});

test('nearest names: prefixes, typos, swapped letters; nothing when nothing is near', () => {
  assert.equal(editDistance('nta', 'nat'), 1);
  assert.equal(editDistance('lifetime', 'lifetime'), 0);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(nearestName('lifetim', ['lifetime', 'description']), 'lifetime');
  assert.equal(nearestName('extrnal-port', ['external-port', 'lifetime']), 'external-port');
  assert.equal(nearestName('ext', ['external-port', 'lifetime']), 'external-port');
  assert.equal(nearestName('stauts', ['status', 'map']), 'status');
  assert.equal(nearestName('mpa', ['map', 'ip', 'demo']), 'map');
  assert.equal(nearestName('bogus', ['json', 'nat', 'gateway']), undefined);
  assert.equal(nearestName('x', ['ip']), undefined);
});

test('defaults: --nat any, no testing overrides', () => {
  const args = parseCliArgs(['discover']);
  assert.equal(args.command, 'discover');
  if (args.command !== 'discover') return;
  assert.equal(args.nat, 'any');
  assert.equal(args.json, false);
  assert.deepEqual(args.ssdpTargets, []);
  assert.equal(args.gateway, undefined);
});

test('testing options: repeatable --ssdp-target, --pcp-port apart from --pmp-port', () => {
  const args = parseCliArgs(['list', '--ssdp-target', '127.0.0.1:1900', '--ssdp-target', '127.0.0.2:41900', '--pmp-port', '1', '--pcp-port', '2', '--gateway', '127.0.0.1', '--local-address', '127.0.0.1', '--timeout', '250', '--request-timeout', '900']);
  assert.equal(args.command, 'list');
  if (args.command !== 'list') return;
  assert.deepEqual(args.ssdpTargets, [{ address: '127.0.0.1', port: 1900 }, { address: '127.0.0.2', port: 41900 }]);
  assert.equal(args.pmpPort, 1);
  assert.equal(args.pcpPort, 2);
  assert.equal(args.timeoutMs, 250);
  assert.equal(args.requestTimeoutMs, 900);
});

test('help, version and --help on every command', () => {
  assert.deepEqual(parseCliArgs(['-h']), { command: 'help', topic: undefined });
  assert.deepEqual(parseCliArgs(['--version']), { command: 'version' });
  assert.deepEqual(parseCliArgs(['help', 'list']), { command: 'help', topic: 'list' });
  for (const command of COMMANDS) {
    assert.deepEqual(parseCliArgs([command, '--help']), { command: 'help', topic: command });
    // --help wins over missing or wrong arguments
    assert.deepEqual(parseCliArgs([command, '-h', '--nat', '']), { command: 'help', topic: command });
    const text = helpText(command);
    assert.match(text, new RegExp(`^Usage: rxnat ${command}`));
    assert.match(text, /Exit codes: 0 success, 1 runtime failure \(no gateway, refused\), 2 usage error/);
    if (command !== 'demo') assert.match(text, /Testing and lab options[\s\S]*--gateway[\s\S]*--pmp-port[\s\S]*--pcp-port[\s\S]*--ssdp-target[\s\S]*--local-address/);
  }
  const top = helpText(undefined);
  for (const command of COMMANDS) assert.match(top, new RegExp(`rxnat ${command}`));
  assert.match(helpText('unmap'), /PCP\s+needs the nonce of the process that created the mapping/);
  assert.match(helpText('list'), /NAT-PMP and PCP\s+have no such request/);
});

test('usage errors: one line that says what to do, exit code 2', () => {
  const cases: [string[], RegExp][] = [
    [['frob'], /unknown command "frob"/],
    [['--json'], /give a command before options/],
    [['map'], /map needs a protocol and an internal port, as in: rxnat map tcp 8080/],
    [['map', 'tcp'], /map needs a protocol and an internal port/],
    [['map', 'sctp', '80'], /the protocol must be tcp or udp, not "sctp"/],
    [['map', 'tcp', '0'], /internal port must be a whole number from 1 to 65535, not "0"/],
    [['map', 'tcp', '70000'], /internal port must be a whole number from 1 to 65535/],
    [['map', 'tcp', '8080', '9090'], /"9090" has no protocol before it: give each mapping as a protocol and a port, as in: rxnat map tcp 8080 udp 4001:14001/],
    [['map', 'tcp', '8080', 'udp'], /map: udp needs an internal port after it/],
    [['map', 'tcp', '8080', 'sctp', '9'], /the protocol must be tcp or udp, not "sctp"/],
    [['map', 'tcp', '8080:0'], /external port must be a whole number from 1 to 65535, not "0"/],
    [['map', 'tcp', '8080:'], /external port must be a whole number from 1 to 65535, not ""/],
    [['map', 'tcp', '8080', 'tcp', '8080:9090'], /tcp 8080 is given twice/],
    [['map', 'tcp', '8080', 'tcp', '8081:8080'], /external port tcp 8080 is asked for twice/],
    [['map', 'tcp', '8080', 'udp', '9', '--external-port', '1'], /--external-port applies to one mapping; with several, give each its external port after a colon/],
    [['map', 'tcp', '8080:1', '--external-port', '2'], /the external port is given twice/],
    [['map', 'tcp', '8080', '--leave', '--duration', '5'], /--leave adds the mappings and exits at once: --duration does not go with it/],
    [['map', 'tcp', '8080', '--leave', '--keep-trying'], /--keep-trying does not go with it/],
    // Negative numbers are values, checked for their range (not "ambiguous" nor "unknown option").
    [['map', 'tcp', '8080', '--lifetime', '-1'], /^map: --lifetime must be a whole number from 0 to 604800, not "-1"$/],
    [['map', 'tcp', '-5'], /^map: internal port must be a whole number from 1 to 65535, not "-5"$/],
    [['map', 'tcp', '8080', '--duration', '-2.5'], /--duration must be a number of seconds above 0/],
    [['unmap', 'tcp', '-1'], /external port must be a whole number from 1 to 65535, not "-1"/],
    [['discover', '--timeout', '-100'], /--timeout must be a whole number from 1 to 600000, not "-100"/],
    // A missing value names the option and what it needs; node's hint about "=" is kept.
    [['discover', '--nat'], /^discover: --nat needs a value \(SPEC\), as in --nat pmp:192\.168\.1\.1$/],
    [['discover', '--nat', '--json'], /^discover: --nat needs a value \(SPEC\), as in --nat pmp:192\.168\.1\.1; "--json" is taken as an option: to give a value that starts with a dash, write --nat=--json$/],
    [['map', 'tcp', '8080', '--lifetime'], /--lifetime needs a value \(SECONDS\), as in --lifetime 120/],
    [['ip', '--json=yes'], /--json is a flag and takes no value/],
    // Did you mean: the nearest option of this command, the nearest command.
    [['map', 'tcp', '8080', '--lifetim', '5'], /unknown option '--lifetim': did you mean --lifetime\?/],
    [['map', 'tcp', '8080', '--extrnal-port', '5'], /unknown option '--extrnal-port': did you mean --external-port\?/],
    [['discover', '--gatway', '127.0.0.1'], /did you mean --gateway\?/],
    [['list', '-x'], /unknown option '-x'/],
    [['status', '--nat', 'any'], /status: unknown option '--nat': it is an option of discover, ip, map, unmap and list, not of status/],
    [['mpa', 'tcp', '80'], /^unknown command "mpa": did you mean map\? use one of discover, ip, status, map, unmap, list, demo$/],
    [['stauts'], /did you mean status\?/],
    [['map', 'tcp', '8080', '--lifetime', '1.5'], /--lifetime must be a whole number/],
    [['map', 'tcp', '8080', '--lifetime', '604801'], /--lifetime must be a whole number from 0 to 604800/],
    [['map', 'tcp', '8080', '--duration', 'soon'], /--duration must be a number of seconds above 0/],
    [['map', 'tcp', '8080', '--duration', '0'], /--duration must be a number of seconds above 0/],
    [['map', 'tcp', '8080', '--duration', '2147484'], /--duration must be a number of seconds above 0 and up to 2147483/],
    [['map', 'tcp', '8080', '--external-port'], /--external-port/],
    [['unmap', 'tcp'], /unmap needs a protocol and an external port/],
    [['discover', '--nat', ''], /--nat needs a spec/],
    [['discover', '--bogus'], /unknown option '--bogus'/],
    [['discover', '--timeout', '0'], /--timeout must be a whole number from 1/],
    [['discover', '--gateway', 'router.lan'], /--gateway must be an IP address/],
    [['discover', '--ssdp-target', '127.0.0.1'], /--ssdp-target must be IP:PORT/],
    [['discover', '--ssdp-target', 'host:1900'], /--ssdp-target must be IP:PORT/],
    [['ip', 'extra'], /unexpected argument "extra"/],
    [['demo', '--nat', 'any'], /unknown option '--nat': it is an option of .*, not of demo \(demo takes no options\)/],
  ];
  for (const [args, pattern] of cases) {
    assert.throws(() => parseCliArgs(args), (error: unknown) => {
      assert.ok(error instanceof UsageError, `${args.join(' ')}: ${String(error)}`);
      assert.match(error.message, pattern, args.join(' '));
      const { message, exitCode } = describeFailure(error);
      assert.equal(exitCode, 2);
      assert.doesNotMatch(message, /\n/);
      assert.match(message, /\(see rxnat .*--help\)$/);
      return true;
    });
  }
});
