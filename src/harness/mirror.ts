/**
 * An incrementally updated copy of one node's log, for the checks that run during a harness
 * run. Reading every node's whole log every few seconds would cost the nodes more than the
 * workload; instead each round asks each sled only for the entries past what the mirror holds
 * (GET /v1/events?sled=S&afterSeq=N), and checks on the way that they continue the sled without
 * a gap and that the node never shows fewer entries than it showed before.
 */
import type { StoredEntry } from '../core/query.js'
import type { LogEntry, NodeLog } from './invariants.js'

/** Fetches a path of the node's API as JSON. */
export type GetJson = (path: string) => Promise<unknown>

/** Most entries fetched per request. */
const PAGE = 5000

/** One node's log as far as it was read. Reset it when the node loses its disk. */
export class LogMirror {
  readonly #node: string
  readonly #bySled = new Map<string, LogEntry[]>()
  /** Bumped by {@link reset}: a refresh that started before a reset must not write into the new log. */
  #generation = 0

  constructor(node: string) {
    this.#node = node
  }

  /** Forgets everything (the node lost its disk: its log starts over). */
  reset(): void {
    this.#generation++
    this.#bySled.clear()
  }

  /** Entries held for `sled`. */
  length(sled: string): number {
    return this.#bySled.get(sled)?.length ?? 0
  }

  /**
   * Reads the entries past the mirror up to `heads` (the node's status, read just before).
   * Returns the new entries (whole, for content checks) and problems: a node holding fewer
   * entries than it showed before, entries that do not continue their sled. A sled in `forkable`
   * (the attacker's, which equivocates) may show fewer: once a node learns of a fork it serves
   * only the entries below it, and the mirror drops the rest.
   */
  async refresh(
    heads: Readonly<Record<string, number>>,
    get: GetJson,
    forkable: ReadonlySet<string> = new Set(),
  ): Promise<{ added: StoredEntry[]; problems: string[] }> {
    const added: StoredEntry[] = []
    const problems: string[] = []
    const generation = this.#generation
    // Forked at 0: nothing of the sled is served any more.
    for (const sled of forkable) if (heads[sled] === undefined) this.#bySled.delete(sled)
    for (const sled of Object.keys(heads).sort()) {
      if (generation !== this.#generation) return { added: [], problems: [] }
      const head = heads[sled] as number
      let list = this.#bySled.get(sled)
      if (list === undefined) this.#bySled.set(sled, (list = []))
      if (head < list.length - 1 && forkable.has(sled)) list.length = head + 1
      if (head < list.length - 1) {
        problems.push(
          `${this.#node}: sled ${sled.slice(0, 12)} head is ${head}, ` +
            `but the node returned up to ${list.length - 1} before (entries forgotten)`,
        )
        continue
      }
      while (list.length <= head) {
        const q = new URLSearchParams({ sled, limit: String(PAGE) })
        if (list.length > 0) q.set('afterSeq', String(list.length - 1))
        const page = (await get(`/v1/events?${q.toString()}`)) as {
          entries: StoredEntry[]
          forked?: Readonly<Record<string, number>>
        }
        if (generation !== this.#generation) return { added: [], problems: [] }
        const fork = page.forked?.[sled]
        if (page.entries.length === 0 && fork !== undefined && forkable.has(sled) && fork <= head) {
          // The node learnt of the fork between its status and this read: it serves only what
          // lies below the fork seq now.
          if (list.length > fork) list.length = fork
          break
        }
        if (page.entries.length === 0) {
          problems.push(
            `${this.#node}: status says ${sled.slice(0, 12)} head ${head}, ` +
              `but no entry past ${list.length - 1} is returned`,
          )
          break
        }
        let broken = false
        for (const e of page.entries) {
          if (e.sled !== sled || e.seq !== list.length) {
            problems.push(
              `${this.#node}: asked for ${sled.slice(0, 12)} from ${list.length}, got ${e.sled.slice(0, 12)}:${e.seq}`,
            )
            broken = true
            break
          }
          list.push({ sled, seq: e.seq, sig: e.sig })
          added.push(e)
        }
        if (broken) break
      }
    }
    return { added, problems }
  }

  /** The mirrored log, in (sled, seq) order. */
  log(): NodeLog {
    const entries: LogEntry[] = []
    for (const sled of [...this.#bySled.keys()].sort())
      for (const e of this.#bySled.get(sled) as LogEntry[]) entries.push(e)
    return { node: this.#node, entries }
  }
}
