/**
 * What an answer to a step 1 resends (src/sync/answer-plan.ts). Pure.
 */
import { describe, expect, it } from 'vitest'
import type { SledId } from '../../src/core/ids.js'
import { leastClaim, planAnswer, RewindAllowance } from '../../src/sync/answer-plan.js'

const A = 'a'.repeat(64) as SledId
const B = 'b'.repeat(64) as SledId
const map = (o: Record<number, number>) => new Map(Object.entries(o).map(([k, v]) => [Number(k), v]))

describe('planAnswer', () => {
  it('a claim at or past what the link sent is answered from the claim', () => {
    const plan = planAnswer({ claim: map({ 1: 5, 2: 0 }), held: map({ 1: 5 }), mayRewind: () => false })
    expect(plan).toEqual({ from: map({ 1: 5, 2: 0 }), rewound: [], coalesced: 0 })
  })

  it('asking again for what the link sent is coalesced unless a rewind is allowed', () => {
    // Client 2 is not in the claim at all: the peer claims 0 of it.
    const input = { claim: map({ 1: 2 }), held: map({ 1: 10, 2: 4 }) }
    expect(planAnswer({ ...input, mayRewind: () => false })).toEqual({
      from: map({ 1: 10, 2: 4 }),
      rewound: [],
      coalesced: 12,
    })
    const asked: number[] = []
    const allowed = planAnswer({
      ...input,
      mayRewind: (c) => {
        asked.push(c)
        return c === 1
      },
    })
    expect(allowed).toEqual({ from: map({ 1: 2, 2: 4 }), rewound: [1], coalesced: 4 })
    expect(asked.sort()).toEqual([1, 2])
  })

  it('a claim past what the log holds is kept (it only makes the answer smaller)', () => {
    const plan = planAnswer({ claim: map({ 7: 1e15 }), held: new Map(), mayRewind: () => true })
    expect(plan.from.get(7)).toBe(1e15)
  })
})

describe('leastClaim', () => {
  it('takes the lesser claim per client and a client missing from either as 0', () => {
    const a = new Map([
      [1, 10],
      [2, 5],
      [3, 7],
    ])
    const b = new Map([
      [1, 4],
      [2, 9],
      [4, 3],
    ])
    expect(leastClaim(a, b)).toEqual(
      new Map([
        [1, 4],
        [2, 5],
        [3, 0],
        [4, 0],
      ]),
    )
    expect(leastClaim(b, a)).toEqual(leastClaim(a, b))
  })

  it('answers a merged flood as the plan of its least claim, with the same rewind allowance', () => {
    const held = new Map([
      [1, 100],
      [2, 50],
    ])
    let grants = 0
    const mayRewind = (): boolean => grants++ === 0
    let merged = new Map([[1, 100]])
    for (let i = 0; i < 1000; i++) merged = leastClaim(merged, new Map([[1, 100 - (i % 3)]]))
    const plan = planAnswer({ claim: merged, held, mayRewind })
    expect(plan.from).toEqual(
      new Map([
        [1, 98],
        [2, 50],
      ]),
    )
    expect(plan.rewound).toEqual([1])
    expect(plan.coalesced).toBe(50)
  })
})

describe('RewindAllowance', () => {
  it('grants once per period per sled and client', () => {
    let now = 0
    const r = new RewindAllowance({ everyMs: 1000, now: () => now })
    expect(r.take(A, 1)).toBe(true)
    expect(r.take(A, 1)).toBe(false)
    expect(r.take(A, 2)).toBe(true) // another client
    expect(r.take(B, 1)).toBe(true) // another sled
    now = 999
    expect(r.take(A, 1)).toBe(false)
    now = 1000
    expect(r.take(A, 1)).toBe(true)
  })

  it('is bounded: past maxEntries the oldest grant is forgotten', () => {
    const r = new RewindAllowance({ everyMs: 1000, maxEntries: 2, now: () => 0 })
    expect(r.take(A, 1)).toBe(true)
    expect(r.take(A, 2)).toBe(true)
    expect(r.take(A, 3)).toBe(true) // forgets (A, 1)
    expect(r.take(A, 2)).toBe(false)
    expect(r.take(A, 1)).toBe(true)
  })
})
