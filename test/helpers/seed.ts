/**
 * Seeds for randomized tests: fixed by default, overridable with SLEDLOG_SEED, always printed
 * so a failure can be replayed.
 */

/** The seed to use for a randomized test named `name`; prints it. */
export function testSeed(name: string, fallback = 20261122): number {
  const env = process.env.SLEDLOG_SEED
  const seed = env === undefined ? fallback : Number(env)
  console.log(`[seed] ${name}: ${seed} (replay with SLEDLOG_SEED=${seed})`)
  return seed
}

/** A small deterministic PRNG (mulberry32) returning floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
