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

/** The PRNG every seeded test draws from: the harness's (mulberry32, floats in [0, 1)). */
export { prng } from '../../src/harness/random.js'
