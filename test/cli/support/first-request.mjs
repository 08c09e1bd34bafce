// Run by test/cli/startup.test.ts (possibly inside a private network namespace): binds a UDP
// socket on HOST:PORT, spawns the command given as JSON in argv[2], waits for the first datagram
// it sends there, kills it, and prints one JSON line: { datagram (hex), exit } or { error }.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { clearTimeout, setTimeout } from 'node:timers';

const [commandJson, host, port] = process.argv.slice(2);
const [command, ...args] = JSON.parse(commandJson);
const socket = createSocket('udp4');
await new Promise((resolve, reject) => {
  socket.once('error', reject);
  socket.bind(Number(port), host, resolve);
});
const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: process.env });
let stderr = '';
child.stderr.setEncoding('utf8').on('data', (chunk) => (stderr += chunk));
const result = await new Promise((resolve) => {
  const timer = setTimeout(() => resolve({ error: `no datagram within 20 s; stderr: ${stderr.slice(-500)}` }), 20_000);
  socket.once('message', (data) => {
    clearTimeout(timer);
    resolve({ datagram: data.toString('hex') });
  });
  child.once('exit', (code, signal) => {
    clearTimeout(timer);
    setTimeout(() => resolve({ error: `exited (${signal ?? code}) before sending; stderr: ${stderr.slice(-500)}` }), 100);
  });
});
child.kill('SIGKILL');
socket.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
