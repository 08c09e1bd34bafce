/** In-process tests of the CLI's argument parser and help texts (no processes, no network). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMMANDS, helpText, parseCliArgs, UsageError } from '../../src/cli/args.js';
import { describeFailure } from '../../src/cli/format.js';

test('map: positionals and options are typed and checked', () => {
  const args = parseCliArgs([
    'map', 'UDP', '4001', '--external-port', '14001', '--lifetime', '120', '--description', 'my app', '--duration', '1.5',
    '--nat', 'pmp:127.0.0.1', '--pmp-port', '15351', '--json', '--keep-trying',
  ]);
  assert.deepEqual(args, {
    command: 'map', protocol: 'udp', internalPort: 4001, externalPort: 14001, lifetimeSeconds: 120, description: 'my app',
    durationSeconds: 1.5, keepTrying: true, nat: 'pmp:127.0.0.1', json: true, timeoutMs: undefined, requestTimeoutMs: undefined,
    gateway: undefined, pmpPort: 15351, pcpPort: 15351, ssdpTargets: [], localAddress: undefined,
  });
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
  assert.deepEqual(parseCliArgs([]), { command: 'help', topic: undefined });
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
    [['map', 'tcp', '8080', '9090'], /unexpected argument "9090"/],
    [['map', 'tcp', '8080', '--lifetime', '-1'], /--lifetime|argument/],
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
    [['demo', '--nat', 'any'], /unknown option '--nat'/],
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
