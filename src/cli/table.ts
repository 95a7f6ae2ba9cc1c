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
  { title: 'KIND', width: 10 },
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

/** What the payload column says of an entry that is not an event. */
function summary(e: StoredEntry): string {
  switch (e.kind) {
    case 'event':
      return visible(JSON.stringify(e.payload))
    case 'gap':
      return `lids ${e.from}..${e.to} dropped`
    case 'succession': {
      const endorsed = e.endorsement === null ? 'NOT endorsed' : 'endorsed'
      return `succeeds ${e.predecessor.slice(0, 12)} after seq ${e.lastSeq} (${e.reason}, ${endorsed})`
    }
    case 'revocation': {
      const by = e.admin === undefined ? 'self' : `admin ${e.admin.slice(0, 12)}`
      return `retires ${e.target.slice(0, 12)} from seq ${e.fromSeq} (${by})`
    }
  }
}

/**
 * One entry as a table row. An entry of a retired key (PROTOCOL.md §6.5) says so first in its
 * payload column.
 */
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
  const payload = (e.retired === true ? '[retired] ' : '') + summary(e)
  return [...cells, cell(payload, PAYLOAD_MAX).trimEnd()].join('  ')
}
