/**
 * The latency contestants: what each id (implemented in `lan-driver.ts`) measures, and on
 * which lab gateway it runs.
 *
 * @packageDocumentation
 */

/**
 * Which miniupnpd configuration: the default IGDv2 description (NAT-PMP and PCP on), forced
 * IGDv1, or a UPnP-only router (IGDv2, `enable_natpmp=no`: PCP and NAT-PMP get port unreachable).
 */
export type LabGateway = 'igdv2' | 'igdv1' | 'upnp-only';

/** How each gateway is labelled in tables. */
export const GATEWAY_LABELS: Readonly<Record<LabGateway, string>> = { igdv2: 'IGDv2', igdv1: 'IGDv1', 'upnp-only': 'UPnP only' };

/** What a contestant is: rxnat in process, the bare-protocol floor, a JS peer, or a whole process. */
export type ContestantKind = 'rxnat' | 'floor' | 'peer' | 'process';

/** A contestant of the latency section. */
export interface ContestantSpec {
  /** The driver's id. */
  readonly id: string;
  /** The label in tables and the chart. */
  readonly label: string;
  readonly kind: ContestantKind;
  /** The protocol path it measures. */
  readonly protocol: 'pmp' | 'pcp' | 'upnp' | 'any' | 'none';
  /** The gateways it runs against. */
  readonly gateways: readonly LabGateway[];
  /** What the timed span is. */
  readonly span: string;
}

const IN_PROCESS = 'in process: start (subscribe / construct) until the mapping is confirmed';
const WHOLE_PROCESS = 'whole process: spawn until exit';
const RXNAT_PROCESS = 'whole process: spawn until the first `mapped` JSON line';

/** Every contestant, in report order. */
export const CONTESTANTS: readonly ContestantSpec[] = [
  { id: 'floor.pmp', label: 'floor: bare NAT-PMP map request', kind: 'floor', protocol: 'pmp', gateways: ['igdv2'], span: 'one request/response on a bare dgram socket' },
  { id: 'rxnat.pmp', label: 'rxnat pmp()', kind: 'rxnat', protocol: 'pmp', gateways: ['igdv2'], span: IN_PROCESS },
  { id: 'peer.nat-pmp', label: 'nat-pmp 1.0.0', kind: 'peer', protocol: 'pmp', gateways: ['igdv2'], span: IN_PROCESS },
  { id: 'peer.nat-port-mapper.pmp', label: '@achingbrain/nat-port-mapper pmpNat', kind: 'peer', protocol: 'pmp', gateways: ['igdv2'], span: IN_PROCESS },
  { id: 'peer.nat-api.pmp', label: '@silentbot1/nat-api (NAT-PMP)', kind: 'peer', protocol: 'pmp', gateways: ['igdv2'], span: IN_PROCESS },
  { id: 'floor.pcp', label: 'floor: bare PCP MAP request', kind: 'floor', protocol: 'pcp', gateways: ['igdv2'], span: 'one request/response on a bare dgram socket' },
  { id: 'rxnat.pcp', label: 'rxnat pcp()', kind: 'rxnat', protocol: 'pcp', gateways: ['igdv2'], span: IN_PROCESS },
  {
    id: 'floor.upnp',
    label: 'floor: bare SSDP + GET + AddPortMapping',
    kind: 'floor',
    protocol: 'upnp',
    gateways: ['igdv2', 'igdv1', 'upnp-only'],
    span: 'one unicast M-SEARCH answer, one description GET, one SOAP AddPortMapping',
  },
  {
    id: 'floor.upnp.url',
    label: 'diagnostic floor: bare GET + AddPortMapping (URL known)',
    kind: 'floor',
    protocol: 'upnp',
    gateways: ['igdv2', 'igdv1'],
    span: 'one description GET, one SOAP AddPortMapping (no SSDP): floor.upnp minus this is the SSDP part of the floor',
  },
  { id: 'rxnat.upnp.ssdp', label: 'rxnat upnp() via SSDP', kind: 'rxnat', protocol: 'upnp', gateways: ['igdv2', 'igdv1', 'upnp-only'], span: IN_PROCESS },
  { id: 'rxnat.upnp.url', label: 'rxnat upnp() with description URL', kind: 'rxnat', protocol: 'upnp', gateways: ['igdv2', 'igdv1'], span: IN_PROCESS },
  { id: 'peer.nat-upnp', label: 'nat-upnp 1.1.1', kind: 'peer', protocol: 'upnp', gateways: ['igdv2', 'igdv1'], span: IN_PROCESS },
  { id: 'peer.nat-port-mapper.upnp.ssdp', label: '@achingbrain/nat-port-mapper findGateways', kind: 'peer', protocol: 'upnp', gateways: ['igdv2'], span: IN_PROCESS },
  { id: 'peer.nat-port-mapper.upnp.url', label: '@achingbrain/nat-port-mapper getGateway(URL)', kind: 'peer', protocol: 'upnp', gateways: ['igdv2'], span: IN_PROCESS },
  { id: 'peer.nat-api.upnp', label: '@silentbot1/nat-api (UPnP)', kind: 'peer', protocol: 'upnp', gateways: ['igdv2', 'igdv1', 'upnp-only'], span: IN_PROCESS },
  {
    id: 'peer.nat-api.any',
    label: '@silentbot1/nat-api (NAT-PMP and UPnP enabled)',
    kind: 'peer',
    protocol: 'any',
    gateways: ['igdv2', 'upnp-only'],
    span: `${IN_PROCESS} (its own choice between the two)`,
  },
  { id: 'rxnat.discover', label: 'rxnat discoverNat() (PCP+PMP+UPnP race)', kind: 'rxnat', protocol: 'any', gateways: ['igdv2', 'upnp-only'], span: IN_PROCESS },
  {
    id: 'rxnat.discover.udp-only',
    label: 'diagnostic: race without UPnP',
    kind: 'rxnat',
    protocol: 'any',
    gateways: ['igdv2'],
    span: `${IN_PROCESS} (backends: ['pcp', 'pmp'])`,
  },
  {
    id: 'rxnat.discover.at-once',
    label: 'diagnostic: race, every probe at once (no head start)',
    kind: 'rxnat',
    protocol: 'any',
    gateways: ['igdv2', 'upnp-only'],
    span: `${IN_PROCESS} (PCP, NAT-PMP and UPnP subscribed together through the public \`probes\` option: the schedule before #11 item 5)`,
  },
  { id: 'proc.node', label: 'process: node -e 0 (startup only)', kind: 'process', protocol: 'none', gateways: ['igdv2'], span: WHOLE_PROCESS },
  { id: 'proc.natpmpc', label: 'process: natpmpc -a', kind: 'process', protocol: 'pmp', gateways: ['igdv2'], span: WHOLE_PROCESS },
  { id: 'proc.rxnat.pmp', label: 'process: rxnat map --nat pmp:GW', kind: 'process', protocol: 'pmp', gateways: ['igdv2'], span: RXNAT_PROCESS },
  { id: 'proc.upnpc.i', label: 'process: upnpc -i -a', kind: 'process', protocol: 'upnp', gateways: ['igdv2'], span: WHOLE_PROCESS },
  { id: 'proc.upnpc.url', label: 'process: upnpc -u URL -a', kind: 'process', protocol: 'upnp', gateways: ['igdv2'], span: WHOLE_PROCESS },
  { id: 'proc.rxnat.upnp.ssdp', label: 'process: rxnat map --nat upnp', kind: 'process', protocol: 'upnp', gateways: ['igdv2'], span: RXNAT_PROCESS },
  { id: 'proc.rxnat.any', label: 'process: rxnat map --nat any', kind: 'process', protocol: 'any', gateways: ['igdv2'], span: RXNAT_PROCESS },
];

/** The key of one contestant on one gateway, as results store it: `id@gateway`. */
export function resultKey(id: string, gateway: LabGateway): string {
  return `${id}@${gateway}`;
}

/**
 * Most timed runs on the UPnP-only router: its target compares two UPnP contestants within 10 %,
 * and UPnP runs on miniupnpd fall in two groups about 25 ms apart (75-85 ms and 100-120 ms), so
 * 30 runs put the ratio of medians anywhere from 1.02x to 1.12x between runs of the same code.
 */
export const UPNP_ONLY_RUNS = 100;

/** Runs on the UPnP-only router: four times the others', up to {@link UPNP_ONLY_RUNS} (never fewer than the others'). */
export function upnpOnlyRuns(runs: number): number {
  return Math.max(runs, Math.min(UPNP_ONLY_RUNS, runs * 4));
}

/**
 * The UPnP contestants the SSDP-vs-floor targets compare within 1.2x on the IGDv2 and IGDv1
 * routers. They get the UPnP-only router's run count there too: miniupnpd's AddPortMapping takes
 * either about 6 or about 25 ms, so with 30 runs the ratio of two medians read 1.01x and 1.32x
 * on the same code in two runs.
 */
export const UPNP_FLOOR_PAIRS: readonly string[] = ['floor.upnp', 'rxnat.upnp.ssdp', 'floor.upnp.url', 'rxnat.upnp.url'];

/** Timed runs for one contestant on one gateway, given the runs asked for. */
export function runsOn(id: string, gateway: LabGateway, runs: number): number {
  if (gateway === 'upnp-only' || UPNP_FLOOR_PAIRS.includes(id)) return upnpOnlyRuns(runs);
  return runs;
}
