// @ts-check
/**
 * A minimal STUN Binding responder (RFC 5389 §7, plus the RFC 3489 MAPPED-ADDRESS for old
 * clients), run by the gateway lab inside its "internet" namespace.
 *
 * miniupnpd >= 2.2 refuses to forward when its WAN address is private unless STUN says the
 * address is reachable as is: with `ext_perform_stun=yes` it sends Binding requests from four
 * sockets and compares the mapped addresses with its own. This responder answers every Binding
 * request with the sender's address and port, which is the truth in the lab (no NAT between the
 * gateway and the "internet"), so miniupnpd accepts 10.77.0.2 as its external address.
 *
 * Plain JavaScript on purpose: plain `node` starts it in ~0.05 s where tsx needs ~0.3-0.6 s,
 * and it is on the critical path of every lab start. Types: stun-responder.d.mts.
 *
 * Run as a script: `node test/lab/stun-responder.mjs [host] [port]`. It prints one JSON line
 * `{"ready":true,"address":...,"port":...}` on stdout once bound, then logs each request on
 * stderr. It exits on SIGTERM/SIGINT.
 */
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';

const MAGIC_COOKIE = 0x2112a442;
const BINDING_REQUEST = 0x0001;
const BINDING_SUCCESS = 0x0101;
const ATTR_MAPPED_ADDRESS = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS = 0x0020;
const ATTR_SOFTWARE = 0x8022;

/** @param {string} address */
function ipv4Bytes(address) {
  const parts = address.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new Error(`not an IPv4 address: ${address}`);
  }
  return parts;
}

/** @param {number} type @param {Buffer} value */
function attribute(type, value) {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  value.copy(padded, 4);
  return padded;
}

/**
 * Builds the Binding success response to `request`, received from `address:port`; `null` when
 * `request` is not a STUN Binding request.
 *
 * @param {Buffer} request
 * @param {string} address
 * @param {number} port
 * @returns {Buffer | null}
 */
export function stunBindingResponse(request, address, port) {
  if (request.length < 20) return null;
  if (request.readUInt16BE(0) !== BINDING_REQUEST) return null;
  const transaction = request.subarray(4, 20); // magic cookie (or RFC 3489 id head) + transaction id
  const rfc5389 = request.readUInt32BE(4) === MAGIC_COOKIE;
  const ip = ipv4Bytes(address);

  const mapped = Buffer.from([0, 0x01, (port >> 8) & 0xff, port & 0xff, ...ip]);
  const attributes = [attribute(ATTR_MAPPED_ADDRESS, mapped)];
  if (rfc5389) {
    const xport = port ^ (MAGIC_COOKIE >>> 16);
    const cookie = [0x21, 0x12, 0xa4, 0x42];
    const xip = ip.map((b, i) => b ^ (cookie[i] ?? 0));
    attributes.push(attribute(ATTR_XOR_MAPPED_ADDRESS, Buffer.from([0, 0x01, (xport >> 8) & 0xff, xport & 0xff, ...xip])));
  }
  attributes.push(attribute(ATTR_SOFTWARE, Buffer.from('rxnat-lab')));

  const body = Buffer.concat(attributes);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(BINDING_SUCCESS, 0);
  header.writeUInt16BE(body.length, 2);
  transaction.copy(header, 4);
  return Buffer.concat([header, body]);
}

/** @param {readonly string[]} argv */
function main(argv) {
  const host = argv[0] ?? '0.0.0.0';
  const port = Number(argv[1] ?? 3478);
  const socket = createSocket('udp4');
  socket.on('message', (message, remote) => {
    const reply = stunBindingResponse(message, remote.address, remote.port);
    process.stderr.write(`stun: ${reply ? 'binding' : 'ignored'} from ${remote.address}:${remote.port}\n`);
    if (reply) socket.send(reply, remote.port, remote.address);
  });
  socket.on('error', (error) => {
    process.stderr.write(`stun: ${error.message}\n`);
    process.exit(1);
  });
  socket.bind(port, host, () => {
    const bound = socket.address();
    process.stdout.write(`${JSON.stringify({ ready: true, address: bound.address, port: bound.port })}\n`);
  });
  const stop = () => {
    socket.close(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2));
}
