/**
 * `npm run example:dashboard [-- --port N]`: the dashboard against the embedded gateway
 * simulator, on http://127.0.0.1:N/ (N = a free port unless given). Ctrl-C (SIGINT) or SIGTERM
 * stops every mapping (deleted on the gateway), then closes the pages, server and simulator.
 */
import { startDashboard } from './server.js';

function portArgument(argv: readonly string[]): number {
  const index = argv.indexOf('--port');
  const text = index >= 0 ? argv[index + 1] : process.env['DASHBOARD_PORT'];
  if (text === undefined || text === '') return 0;
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`dashboard: --port must be 0-65535, not ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return port;
}

const dashboard = await startDashboard({ port: portArgument(process.argv.slice(2)) });
const { sim } = dashboard;
console.log(`rxnat dashboard: ${dashboard.url}`);
console.log(`  gateway simulator on ${sim.address} (NAT-PMP/PCP udp ${sim.pmpPort}, UPnP SSDP udp ${sim.ssdpTarget.port}); nothing is sent off loopback`);
console.log('  Ctrl-C stops: every mapping is deleted, then the server and the simulator close');

let stopping = false;
const shutdown = (signal: NodeJS.Signals): void => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping the mappings...`);
  dashboard
    .close()
    .then(() => {
      const left = sim.table.list();
      console.log(left.length === 0 ? 'dashboard closed; simulator table empty' : `dashboard closed; ${left.length} mapping(s) left on the simulator`);
      process.exitCode = left.length === 0 ? 0 : 1;
    })
    .catch((error: unknown) => {
      console.error('dashboard: close failed:', error);
      process.exitCode = 1;
    });
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
