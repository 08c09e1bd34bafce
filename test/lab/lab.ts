/**
 * The gateway lab (network namespaces around a real miniupnpd) lives in bench/lib/lab.ts, where
 * the benchmarks and the tests both take it from: bench/ imports nothing from test/.
 */
export * from '../../bench/lib/lab.js';
