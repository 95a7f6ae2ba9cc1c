/**
 * Export of signed records (docs/PROTOCOL.md §7.3): the entries readers see, one record line per
 * entry in (sled, seq) order, each the record exactly as it was signed. Built from reads (the
 * entry and its signature), so a running node's API and a stopped node's log serve it alike.
 */
import { encodeEntryJson } from '../core/entry.js'
import type { SledId } from '../core/ids.js'
import type { Heads, StoredEntry } from '../core/query.js'
import { recordLine } from './format.js'

/** Where an export reads: the heads readers see and pages of one sled's entries. */
export interface ExportSource {
  /** Last readable seq per sled. */
  heads(): Promise<Heads>
  /** Up to `limit` entries of `sled` with seq > `afterSeq`, ascending. */
  page(sled: SledId, afterSeq: number, limit: number): Promise<readonly StoredEntry[]>
}

/** What to export. */
export interface ExportRange {
  /** Only these sleds (default: every sled with entries). */
  readonly sleds?: readonly SledId[]
  /** First seq of each sled (default 0). */
  readonly fromSeq?: number
  /** Last seq of each sled, inclusive (default: its head). */
  readonly toSeq?: number
  /** Entries read per page (default 1000). */
  readonly pageSize?: number
}

/**
 * The signed record of a read entry: its signature and the canonical text of its fields. Since an
 * entry has exactly one valid text (PROTOCOL.md §3.3), this is the record the sled signed.
 */
export function recordOf(e: StoredEntry): string {
  return `${e.sig}.${encodeEntryJson(e)}`
}

/** The export's lines (each with its newline), streamed page by page. */
export async function* exportLines(src: ExportSource, range: ExportRange = {}): AsyncGenerator<string> {
  const heads = await src.heads()
  const wanted = range.sleds === undefined ? undefined : new Set<string>(range.sleds)
  const sleds = Object.keys(heads)
    .filter((s) => wanted === undefined || wanted.has(s))
    .sort() as SledId[]
  const pageSize = range.pageSize ?? 1000
  for (const sled of sleds) {
    // Fixed at the start, so a sled written to meanwhile still ends where the export began.
    const last = Math.min(heads[sled] as number, range.toSeq ?? Number.MAX_SAFE_INTEGER)
    let after = (range.fromSeq ?? 0) - 1
    while (after < last) {
      const page = await src.page(sled, after, Math.min(pageSize, last - after))
      if (page.length === 0) break
      let text = ''
      const before = after
      for (const e of page) {
        if (e.seq > last) break
        text += `${recordLine(sled, e.seq, recordOf(e))}\n`
        after = e.seq
      }
      yield text
      // A source that answers nothing past `after` would loop forever; what it sent is verified.
      if (after <= before) break
    }
  }
}
