/**
 * Checks an export (docs/PROTOCOL.md §7.3) against the protocol alone: no node, no store, only
 * the lines. Every record must open (§4.3: canonical text, signature by the sled it names,
 * endorsements and revocation signatures), sit at the (sled, seq) its line gives, fit the record
 * limit, and every sled's lines must be contiguous. It reports what the records say: gap
 * sentinels and the producer ids they dropped, successions, revocations, the retirements they
 * give (§6.5) and contested predecessors. Fed line by line, it holds O(sleds) state, not the file.
 */
import type { SledId } from '../core/ids.js'
import { createVerifier, openRecord, type EntryVerifier } from '../core/signing.js'
import { emptyIndex, indexStatement, retirements, type StatementIndex } from '../core/succession.js'
import { checkRecordBytes } from '../core/update-codec.js'
import { isSledlogError, type ErrorCode } from '../errors.js'
import { DEFAULT_LIMITS } from '../log/sled-log.js'
import { asRecordLine, parseLineObject } from './format.js'

/** Problems listed word for word in a report (all are counted). */
const PROBLEMS_SHOWN = 50

/** What {@link ExportVerifier} found in one sled. */
export interface SledSummary {
  readonly first: number
  readonly last: number
  readonly records: number
  /** Gap sentinels, and the producer ids they account as dropped. */
  readonly gaps: number
  readonly dropped: number
}

/** An export's verification report. */
export interface ExportReport {
  readonly lines: number
  /** Records that opened and sit where their line says. */
  readonly verified: number
  readonly sleds: Readonly<Record<string, SledSummary>>
  readonly successions: number
  readonly revocations: number
  /** Retirement seq per retired sled, as a node with `adminKeys` reads the records (§6.5). */
  readonly retired: Readonly<Record<string, number>>
  /** Predecessors with two or more endorsed successors in the file (§6.5). */
  readonly contested: readonly SledId[]
  /** Problems by code (BACKUP_INVALID for lines out of format or out of order). */
  readonly byCode: Readonly<Partial<Record<ErrorCode, number>>>
  /** The first problems, one line each, naming the line. */
  readonly problems: readonly string[]
  readonly problemCount: number
  readonly ok: boolean
}

/** Options of an {@link ExportVerifier}. */
export interface ExportVerifierOptions {
  /** Admin keys whose revocations count (as the cluster is configured); default none. */
  readonly adminKeys?: readonly SledId[]
  readonly verifier?: EntryVerifier
  /** Record limit (default PROTOCOL.md's 65536). */
  readonly maxRecordBytes?: number
}

interface SledState {
  first: number
  last: number
  records: number
  gaps: number
  dropped: number
}

/** A streaming export checker: {@link line} for each line, then {@link finish}. */
export class ExportVerifier {
  readonly #verifier: EntryVerifier
  readonly #adminKeys: ReadonlySet<SledId>
  readonly #maxRecordBytes: number
  readonly #sleds = new Map<SledId, SledState>()
  readonly #statements: StatementIndex = emptyIndex()
  readonly #byCode = new Map<ErrorCode, number>()
  readonly #problems: string[] = []
  #problemCount = 0
  #lines = 0
  #verified = 0

  constructor(opts: ExportVerifierOptions = {}) {
    this.#verifier = opts.verifier ?? createVerifier()
    this.#adminKeys = new Set(opts.adminKeys ?? [])
    this.#maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_LIMITS.maxRecordBytes
  }

  #problem(code: ErrorCode, n: number, text: string): void {
    this.#byCode.set(code, (this.#byCode.get(code) ?? 0) + 1)
    if (this.#problemCount++ < PROBLEMS_SHOWN) this.#problems.push(`line ${n}: ${code}: ${text}`)
  }

  /** Checks line `n` (its text without the newline). Never throws for bad input: it is a problem. */
  line(text: string, n: number): void {
    this.#lines = n
    let line: ReturnType<typeof asRecordLine>
    try {
      line = asRecordLine(parseLineObject(text, n), n)
    } catch (err) {
      this.#problem('BACKUP_INVALID', n, isSledlogError(err) ? err.message.replace(/^line \d+: /, '') : String(err))
      return
    }
    const { sled, seq, record } = line
    // Contiguity is a property of the lines: a bad record still takes its place, so one damaged
    // line is one problem, not one more for every line after it.
    const st = this.#sleds.get(sled) ?? { first: seq, last: seq - 1, records: 0, gaps: 0, dropped: 0 }
    this.#sleds.set(sled, st)
    if (seq !== st.last + 1) {
      const why = seq <= st.last ? `seq ${seq} again (last ${st.last})` : `seqs ${st.last + 1}..${seq - 1} missing`
      this.#problem('BACKUP_INVALID', n, `${sled.slice(0, 12)}…: not contiguous: ${why}`)
      if (seq <= st.last) return
    }
    st.last = seq
    try {
      checkRecordBytes(Buffer.byteLength(record, 'utf8'), this.#maxRecordBytes)
      const { entry } = openRecord(record, this.#verifier)
      if (entry.sled !== sled || entry.seq !== seq) {
        const found = `${entry.sled.slice(0, 12)}…/${entry.seq}`
        this.#problem('UPDATE_BAD_BINDING', n, `the line says ${sled.slice(0, 12)}…/${seq}, the record ${found}`)
        return
      }
      st.records++
      if (entry.kind === 'gap') {
        st.gaps++
        st.dropped += entry.to - entry.from + 1
      }
      if (entry.kind === 'succession' || entry.kind === 'revocation') indexStatement(this.#statements, entry)
      this.#verified++
    } catch (err) {
      if (!isSledlogError(err)) throw err
      this.#problem(err.code, n, err.message)
    }
  }

  /** The report. */
  finish(): ExportReport {
    const inFile = (s: SledId, seq: number): boolean => {
      const st = this.#sleds.get(s)
      return st !== undefined && seq >= st.first && seq <= st.last
    }
    const retired = Object.fromEntries(
      [...retirements(this.#statements, this.#adminKeys, inFile)].sort(([a], [b]) => (a < b ? -1 : 1)),
    )
    const contested: SledId[] = []
    for (const [pred, list] of this.#statements.successors) {
      const endorsed = list.filter((s) => this.#statements.successions.get(s)?.endorsed === true)
      if (endorsed.length > 1) contested.push(pred)
    }
    let revocations = 0
    for (const l of this.#statements.revocations.values()) revocations += l.length
    const sleds = Object.fromEntries([...this.#sleds].sort(([a], [b]) => (a < b ? -1 : 1)))
    return {
      lines: this.#lines,
      verified: this.#verified,
      sleds,
      successions: this.#statements.successions.size,
      revocations,
      retired,
      contested: contested.sort(),
      byCode: Object.fromEntries(this.#byCode),
      problems: this.#problems,
      problemCount: this.#problemCount,
      ok: this.#problemCount === 0,
    }
  }
}
