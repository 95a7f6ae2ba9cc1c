/**
 * The export conformance vectors (docs/PROTOCOL.md §7.3, test/fixtures/export/): a valid export
 * of the golden records of §9 and exports broken one way each, with the outcome the protocol
 * gives each. Built from test/fixtures/golden.json only, so they are as stable as it is.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** Where the export fixtures live. */
export const EXPORT_FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'test', 'fixtures', 'export')

/** One vector: the file's text and what a verifier must say. */
export interface ExportVector {
  readonly text: string
  readonly rule: string
  /** Problems by code; empty for a valid export. */
  readonly byCode: Readonly<Record<string, number>>
  /** Retirements a verifier without admin keys reads (§6.5), for the valid ones. */
  readonly retired?: Readonly<Record<string, number>>
  /** …and one configured with the golden admin key C. */
  readonly retiredWithAdmin?: Readonly<Record<string, number>>
}

interface Golden {
  readonly entries: ReadonlyArray<{ readonly seq: number; readonly record: string; readonly entry: { sled: string } }>
  readonly succession: Record<string, { readonly record: string; readonly entry: { sled: string; seq: number } }> & {
    readonly admin: string
    readonly retiredWithoutAdmin: Record<string, number>
    readonly retiredWithAdmin: Record<string, number>
  }
  readonly conformance: { readonly records: ReadonlyArray<{ readonly name: string; readonly record: string }> }
}

type Line = { sled: string; seq: number; record: string }

const text = (lines: readonly Line[]): string =>
  lines.map((l) => `${JSON.stringify({ sled: l.sled, seq: l.seq, record: l.record })}\n`).join('')

/** Every vector by file name (without `.ndjson`). */
export function exportVectors(): Record<string, ExportVector> {
  const path = join(EXPORT_FIXTURES, '..', 'golden.json')
  const g = JSON.parse(readFileSync(path, 'utf8')) as Golden
  const s = g.succession
  const recordLine = (r: { record: string; entry: { sled: string; seq: number } }): Line => ({
    sled: r.entry.sled,
    seq: r.entry.seq,
    record: r.record,
  })
  const golden: Line[] = [
    ...g.entries.map((e) => ({ sled: e.entry.sled, seq: e.seq, record: e.record })),
    ...[s.succession, s.selfRevocation, s.unendorsed, s.adminRevocation].map((r) => recordLine(r as never)),
  ].sort((a, b) => (a.sled < b.sled ? -1 : a.sled > b.sled ? 1 : a.seq - b.seq))
  const conf = (name: string): string => {
    const v = g.conformance.records.find((r) => r.name === name)
    if (v === undefined) throw new Error(`golden.json lacks the conformance record ${name}`)
    return v.record
  }
  const S = g.entries[0]?.entry.sled as string
  const at = (sled: string, seq: number): number => golden.findIndex((l) => l.sled === sled && l.seq === seq)
  const replace = (i: number, l: Partial<Line>): Line[] => golden.map((x, j) => (j === i ? { ...x, ...l } : x))
  const s1 = at(S, 1)
  const successor = recordLine(s.succession as never).sled
  const unendorsed = recordLine(s.unendorsed as never).sled
  const flip = (r: string, i: number): string => r.slice(0, i) + (r[i] === 'A' ? 'B' : 'A') + r.slice(i + 1)
  const s1Record = golden[s1]?.record as string
  return {
    golden: {
      text: text(golden),
      rule: 'the golden records of §9.2 and §9.9, every sled contiguous: valid',
      byCode: {},
      retired: s.retiredWithoutAdmin,
      retiredWithAdmin: s.retiredWithAdmin,
    },
    'from-seq': {
      text: text(golden.filter((l) => l.sled !== S || l.seq >= 2)),
      rule: 'an export may start a sled past seq 0 (--from-seq): valid',
      byCode: {},
    },
    'signature-flipped': {
      text: text(replace(s1, { record: flip(s1Record, 10) })),
      rule: '§4.3 step 3: a changed signature character',
      byCode: { UPDATE_BAD_SIGNATURE: 1 },
    },
    'payload-changed': {
      text: text(replace(s1, { record: s1Record.replace('"text":"Gr', '"text":"gr') })),
      rule: '§4.3 step 3: the signed text changed after signing',
      byCode: { UPDATE_BAD_SIGNATURE: 1 },
    },
    'sig-last-char-B': {
      text: text(replace(at(S, 3), { record: conf('sig-last-char-B') })),
      rule: '§4.1: a signature whose last character carries set padding bits',
      byCode: { ENTRY_INVALID: 1 },
    },
    'unsigned-exponent': {
      text: text(replace(at(S, 3), { record: conf('unsigned-exponent') })),
      rule: '§3.3 rule 4: a validly signed text that is not canonical',
      byCode: { ENTRY_INVALID: 1 },
    },
    'endorsement-entry-domain': {
      text: text(replace(at(successor, 0), { record: conf('endorsement-entry-domain') })),
      rule: '§4.4: an endorsement signed under the entry domain',
      byCode: { SUCCESSION_BAD_ENDORSEMENT: 1 },
    },
    'succession-misplaced': {
      text: text(replace(at(successor, 1), { record: conf('succession-misplaced-forged') })),
      rule: '§3.5: a succession record that is not its sled’s entry 0',
      byCode: { SUCCESSION_INVALID: 1 },
    },
    'revocation-admin-as-self': {
      text: text(replace(at(unendorsed, 1), { record: conf('revocation-admin-as-self') })),
      rule: '§4.4: a revocation signature over another signer line',
      byCode: { REVOCATION_BAD_SIGNATURE: 1 },
    },
    'seq-missing': {
      text: text(golden.filter((_, i) => i !== at(S, 2))),
      rule: '§7.3: each sled’s lines are contiguous (seq 2 left out)',
      byCode: { BACKUP_INVALID: 1 },
    },
    'seq-repeated': {
      text: text(golden.flatMap((l, i) => (i === s1 ? [l, l] : [l]))),
      rule: '§7.3: each sled’s lines are contiguous (seq 1 twice)',
      byCode: { BACKUP_INVALID: 1 },
    },
    'line-seq-wrong': {
      text: text(replace(s1, { seq: 2 })),
      rule: '§7.3: the line’s seq is not the record’s (seq 1 named 2: 1 missing, then 2 twice)',
      byCode: { UPDATE_BAD_BINDING: 1, BACKUP_INVALID: 2 },
    },
    'line-sled-wrong': {
      text: text(replace(s1, { sled: s.admin })),
      rule: '§7.3: the line names another sled (C) than the record’s (S), whose seq 1 goes missing',
      byCode: { UPDATE_BAD_BINDING: 1, BACKUP_INVALID: 1 },
    },
    'extra-key': {
      text: text(golden).replace('"record":', '"retired":true,"record":'),
      rule: '§7.3: a line has exactly the keys sled, seq, record',
      byCode: { BACKUP_INVALID: 1 },
    },
    'not-json': {
      text: `${text(golden)}{"sled":\n`,
      rule: '§7.3: every line is a JSON object',
      byCode: { BACKUP_INVALID: 1 },
    },
  }
}
