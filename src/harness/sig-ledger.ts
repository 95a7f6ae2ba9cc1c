/**
 * Every signature the harness ever saw for each (sled, seq): in the answers to writes, in every
 * read of every node while the run goes on and at its end, and in what stream subscribers
 * received. A sled signs each seq once (issue 16: "a sled never signs two histories"), so a
 * second signature for a (sled, seq) anywhere is a re-signed seq, even when no node holds both
 * versions at once: the first may have lived only on a disk that was lost. Pure.
 */

/** Where a signature was seen, for the violation text (e.g. `ack by node 2`, `read of node 0`). */
export type Sighting = string

/** A (sled, seq) seen with two signatures. */
export interface ResignedSeq {
  readonly sled: string
  readonly seq: number
  readonly first: { readonly sig: string; readonly where: Sighting }
  readonly second: { readonly sig: string; readonly where: Sighting }
}

/** A conflict as a sentence. */
export function describeResigned(c: ResignedSeq): string {
  return (
    `${c.sled.slice(0, 12)}:${c.seq} was signed twice: ${c.first.where} saw sig ${c.first.sig.slice(0, 12)}…, ` +
    `${c.second.where} saw ${c.second.sig.slice(0, 12)}… (a re-signed seq)`
  )
}

/** Most conflicts listed by {@link SigLedger.violations} (all are counted). */
const KEEP = 50

/** The ledger. Lifecycle: `see` while running; `resigned` at any time. */
export class SigLedger {
  readonly #first = new Map<string, { sig: string; where: Sighting }>()
  /** Every conflict by `sled:seq` (details are cheap: one per re-signed seq). */
  readonly #conflicts = new Map<string, ResignedSeq>()
  readonly #skip: ReadonlySet<string>

  /** `skip`: sleds allowed to sign a seq twice (the harness's equivocating attacker). */
  constructor(skip: ReadonlySet<string> = new Set()) {
    this.#skip = skip
  }

  /** Records that `where` showed `sig` at (sled, seq); returns the conflict when it is a second signature. */
  see(sled: string, seq: number, sig: string, where: Sighting): ResignedSeq | undefined {
    if (this.#skip.has(sled)) return undefined
    const k = `${sled}:${seq}`
    const first = this.#first.get(k)
    if (first === undefined) {
      this.#first.set(k, { sig, where })
      return undefined
    }
    if (first.sig === sig || this.#conflicts.has(k)) return undefined
    const conflict = { sled, seq, first, second: { sig, where } }
    this.#conflicts.set(k, conflict)
    return conflict
  }

  /** Records every entry of a list. */
  seeAll(
    entries: Iterable<{ readonly sled: string; readonly seq: number; readonly sig: string }>,
    where: Sighting,
  ): void {
    for (const e of entries) this.see(e.sled, e.seq, e.sig, where)
  }

  /** The (sled, seq) keys (`sled:seq`) seen with two signatures. */
  get resignedKeys(): ReadonlySet<string> {
    return new Set(this.#conflicts.keys())
  }

  /** The first conflicts, as sentences. */
  violations(): string[] {
    const out = [...this.#conflicts.values()].slice(0, KEEP).map(describeResigned)
    if (this.#conflicts.size > KEEP) out.push(`… ${this.#conflicts.size - KEEP} more re-signed seqs`)
    return out
  }
}
