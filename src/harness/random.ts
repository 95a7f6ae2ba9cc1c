/**
 * Seeded randomness for the harness. Every random choice of a run (its fault schedule, its
 * workload, the hostile peer's targets, link jitter) draws from a stream derived from the run's
 * seed, so a run can be replayed from its seed. Pure.
 */

import { createHash } from 'node:crypto'

/** A function returning floats in [0, 1). */
export type Random = () => number

/** A small, fast deterministic PRNG (mulberry32). */
export function prng(seed: number): Random {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * An independent stream for one purpose (`"schedule"`, `"workload 3"`…) of a run. Derived by
 * hashing the name into the seed, so adding a consumer of randomness to one part of the harness
 * does not shift the draws of every other part (which would change the replay of old seeds).
 */
export function streamOf(seed: number, name: string): Random {
  let h = (seed ^ 0x9e3779b9) >>> 0
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0
  return prng(h ^ Math.imul(seed >>> 0, 0x85ebca6b))
}

/**
 * The 32-byte Ed25519 key seed of one named key of a run (`"node 0"`, `"attacker"`…): a replay
 * of the seed runs with the same sled ids.
 */
export function keySeedOf(seed: number, name: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`sledlog-harness/${name}/${seed}`).digest())
}

/** An integer in [min, max] (inclusive). */
export function intIn(rand: Random, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1))
}

/** A uniformly chosen element; throws on an empty list. */
export function pick<T>(rand: Random, items: readonly T[]): T {
  if (items.length === 0) throw new RangeError('pick from an empty list')
  return items[Math.floor(rand() * items.length)] as T
}

/** A shuffled copy (Fisher-Yates). */
export function shuffled<T>(rand: Random, items: readonly T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1))
    const t = out[i] as T
    out[i] = out[j] as T
    out[j] = t
  }
  return out
}

/** A random seed for runs that were not given one (31 bits, so it prints and parses cleanly). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff)
}
