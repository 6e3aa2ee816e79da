// The median of repeated measurements, which the benchmarks report instead of one pass because
// single passes on this shared 2-core VM move with the host.

/** The middle value; for an even count, the mean of the two middle values. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The median of the rounds' values with their range: what both file system benchmarks print. */
export function medianAndRange(values: readonly number[]): {
  median: number;
  min: number;
  max: number;
} {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/**
 * Rounds of every measurement (BENCH_ROUNDS, default 3). Within a round the raw disk and the
 * cluster run back to back, so a round's ratios compare passes seconds apart; on a shared host
 * the disk alone moved 2.2–3.4 GB/s between runs, so one round's ratio says little.
 */
export function benchRounds(): number {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20))
    throw new Error(`BENCH_ROUNDS must be an integer 1..20, got '${process.env.BENCH_ROUNDS}'`);
  return rounds;
}
