/**
 * `read --format table`: entries as aligned columns for people. Column widths are fixed (not
 * measured over the output) so pages of a long `--all` read line up without buffering them all.
 * Types, ids and payloads are whatever some sled signed: every control and bidi character in them
 * is shown as a visible escape, and only then cut to the column.
 */
import type { StoredEntry } from '../core/query.js'
import { visible } from './visible.js'

const COLUMNS = [
  { title: 'SLED', width: 12 },
  { title: 'SEQ', width: 8, right: true },
  { title: 'TIME', width: 24 },
  { title: 'KIND', width: 5 },
  { title: 'TYPE', width: 24 },
  { title: 'ID', width: 16 },
] as const

/** Widest payload column: the table is a glance, NDJSON has everything. */
const PAYLOAD_MAX = 80

function cell(text: string, width: number, right = false): string {
  const t = text.length > width ? `${text.slice(0, width - 1)}…` : text
  return right ? t.padStart(width) : t.padEnd(width)
}

/** The header line. */
export function tableHeader(): string {
  return [...COLUMNS.map((c) => cell(c.title, c.width, 'right' in c)), 'PAYLOAD'].join('  ').trimEnd()
}

/** One entry as a table row. */
export function tableRow(e: StoredEntry): string {
  const values = [
    e.sled.slice(0, 12),
    String(e.seq),
    new Date(e.ts).toISOString(),
    e.kind,
    e.kind === 'event' ? e.type : '',
    e.kind === 'event' ? (e.id ?? '') : '',
  ]
  const cells = COLUMNS.map((c, i) => cell(visible(values[i] ?? ''), c.width, 'right' in c))
  const payload = e.kind === 'event' ? visible(JSON.stringify(e.payload)) : `lids ${e.from}..${e.to} dropped`
  return [...cells, cell(payload, PAYLOAD_MAX).trimEnd()].join('  ')
}
