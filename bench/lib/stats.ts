/**
 * Order statistics of benchmark samples: median, percentiles (linear interpolation between
 * closest ranks, as numpy's default), spread.
 *
 * @packageDocumentation
 */

/** Summary of a set of samples (all in the samples' unit). */
export interface Summary {
  readonly n: number;
  readonly min: number;
  readonly p10: number;
  readonly p25: number;
  readonly median: number;
  readonly p75: number;
  readonly p90: number;
  readonly max: number;
  readonly mean: number;
}

/** The `q`-quantile (0..1) of ascending-sorted `sorted`; NaN when empty. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const position = (sorted.length - 1) * Math.min(1, Math.max(0, q));
  const low = Math.floor(position);
  const high = Math.ceil(position);
  const a = sorted[low]!;
  const b = sorted[high]!;
  return a + (b - a) * (position - low);
}

/** Summarises samples; `undefined` when there are none. */
export function summarize(samples: readonly number[]): Summary | undefined {
  const finite = samples.filter((s) => Number.isFinite(s));
  if (finite.length === 0) return undefined;
  const sorted = [...finite].sort((a, b) => a - b);
  return {
    n: sorted.length,
    min: sorted[0]!,
    p10: quantile(sorted, 0.1),
    p25: quantile(sorted, 0.25),
    median: quantile(sorted, 0.5),
    p75: quantile(sorted, 0.75),
    p90: quantile(sorted, 0.9),
    max: sorted[sorted.length - 1]!,
    mean: sorted.reduce((sum, s) => sum + s, 0) / sorted.length,
  };
}

/** The median of samples; NaN when there are none. */
export function median(samples: readonly number[]): number {
  return summarize(samples)?.median ?? NaN;
}

/** Rounds to `digits` decimals (for JSON and tables). */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** A small deterministic PRNG (mulberry32): the same resamples on every report. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Percentile bootstrap interval of median(a) / median(b) for two independent sample sets:
 * `level` 0.9 gives the 5th and 95th percentiles of 2,000 resampled ratios.
 */
export function bootstrapRatioOfMedians(a: readonly number[], b: readonly number[], level = 0.9, iterations = 2000, seed = 1): [number, number] | undefined {
  if (a.length < 2 || b.length < 2) return undefined;
  const random = seededRandom(seed);
  const resampledMedian = (xs: readonly number[]): number => {
    const sample = Array.from({ length: xs.length }, () => xs[Math.floor(random() * xs.length)]!).sort((x, y) => x - y);
    return quantile(sample, 0.5);
  };
  const ratios = Array.from({ length: iterations }, () => resampledMedian(a) / resampledMedian(b)).sort((x, y) => x - y);
  const tail = (1 - level) / 2;
  return [quantile(ratios, tail), quantile(ratios, 1 - tail)];
}

/** Median of a_r / b_r over the rounds r where both have a sample (runs interleaved, so drift cancels). */
export function pairedMedianRatio(a: readonly number[], aRounds: readonly number[], b: readonly number[], bRounds: readonly number[]): number | undefined {
  const byRound = new Map<number, number>();
  bRounds.forEach((round, i) => byRound.set(round, b[i]!));
  const ratios: number[] = [];
  aRounds.forEach((round, i) => {
    const other = byRound.get(round);
    if (other !== undefined && other > 0) ratios.push(a[i]! / other);
  });
  return ratios.length > 0 ? median(ratios) : undefined;
}
