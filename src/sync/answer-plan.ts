/**
 * What an answer to a step 1 resends (docs/PROTOCOL.md §8.3, "Answer budget"). Pure.
 *
 * A step 1 is a state vector: an unsigned claim of what the peer holds. A claim at or past what
 * a link knows the peer holds only makes the answer smaller. A claim below it (the peer asks
 * again for entries this link already sent it) is a rewind: honest peers rewind rarely (the
 * digest refetch asks for a sled from seq 0 at most once a minute; a restarted peer on a new
 * link while its old link is not yet known dead), while a flood of "send me everything" turns
 * a few bytes into the whole log each. So a rewind is honored once per {@link REWIND_EVERY_MS}
 * per remote sled and client; any other rewind is coalesced: the answer skips what was sent.
 */
import type { SledId } from '../core/ids.js'

/** Least time between two honored rewinds of one client for one remote sled. */
export const REWIND_EVERY_MS = 60_000

/** Inputs of {@link planAnswer}. */
export interface AnswerPlanInput {
  /** The peer's state vector. */
  readonly claim: ReadonlyMap<number, number>
  /** Per client, the prefix this link knows the peer holds (sent, or claimed before). */
  readonly held: ReadonlyMap<number, number>
  /** Whether a rewind of `client` may be honored now (consumes the allowance when true). */
  readonly mayRewind: (client: number) => boolean
}

/** The state vector an answer starts from, and what the plan did. */
export interface AnswerPlan {
  readonly from: Map<number, number>
  /** Clients resent from below what the link knew the peer held. */
  readonly rewound: readonly number[]
  /** Entries not resent: asked for again, already sent. */
  readonly coalesced: number
}

/** Plans the answer to a step 1. */
export function planAnswer(input: AnswerPlanInput): AnswerPlan {
  const from = new Map<number, number>()
  const rewound: number[] = []
  let coalesced = 0
  for (const client of new Set([...input.claim.keys(), ...input.held.keys()])) {
    const claimed = input.claim.get(client) ?? 0
    const held = input.held.get(client) ?? 0
    if (claimed >= held) from.set(client, claimed)
    else if (input.mayRewind(client)) {
      from.set(client, claimed)
      rewound.push(client)
    } else {
      from.set(client, held)
      coalesced += held - claimed
    }
  }
  return { from, rewound, coalesced }
}

/**
 * Two step 1s of one peer as one: per client the lesser claim, a client missing from either
 * claimed as 0 (what the peer would have been sent had each been answered in turn, before the
 * plan coalesces what the link already sent). Costs the size of the two claims, not of the log.
 */
export function leastClaim(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>): Map<number, number> {
  const out = new Map<number, number>()
  for (const [client, n] of a) out.set(client, Math.min(n, b.get(client) ?? 0))
  for (const client of b.keys()) if (!a.has(client)) out.set(client, 0)
  return out
}

/**
 * The rewind allowance per remote sled and client: once per `everyMs`. Bounded: past
 * `maxEntries` the oldest grants are forgotten (a forgotten grant allows one more rewind).
 */
export class RewindAllowance {
  readonly #granted = new Map<string, number>()
  readonly #everyMs: number
  readonly #maxEntries: number
  readonly #now: () => number

  constructor(opts: { everyMs?: number; maxEntries?: number; now?: () => number } = {}) {
    this.#everyMs = opts.everyMs ?? REWIND_EVERY_MS
    this.#maxEntries = opts.maxEntries ?? 16_384
    this.#now = opts.now ?? Date.now
  }

  /** True (and recorded) when `sled` may rewind `client` now. */
  take(sled: SledId, client: number): boolean {
    const key = `${sled}:${client}`
    const now = this.#now()
    const at = this.#granted.get(key)
    if (at !== undefined && now - at < this.#everyMs) return false
    this.#granted.delete(key)
    this.#granted.set(key, now)
    if (this.#granted.size > this.#maxEntries) this.#granted.delete(this.#granted.keys().next().value as string)
    return true
  }
}
