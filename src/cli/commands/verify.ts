/**
 * `sledlog verify`: an offline integrity check of a stopped node's data directory. It loads the
 * log with every signature verified (`verifyOnOpen: 'full'`, ignoring the MAC shortcut) and
 * reports what it checked and every problem: rejected records by code, equivocations, missing
 * ranges, and lost own entries. It only reads: no key is created, nothing is appended, and the
 * database is closed without a write.
 */
import { resolveDataDir } from '../../config/resolve.js'
import type { LogStatus } from '../../log/sled-log.js'
import { parseFlags } from '../args.js'
import { EXIT, UsageError } from '../cli-error.js'
import { help, type Command } from '../command.js'
import { openDataDir } from '../data-dir.js'
import { notice, write } from '../io.js'
import { progressBar } from '../progress.js'
import { jsonLine } from '../visible.js'

const OPTIONS = {
  data: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const

/** What verify found. */
export interface VerifyReport {
  readonly dir: string
  readonly sled: string
  /** Stored records (snapshot chunks and updates) read. */
  readonly records: number
  /** Records whose MAC did not verify (corrupt, or not written by this key): all fully guarded anyway. */
  readonly macFailed: number
  /** Entries checked (every signature verified), in total and per sled as seq ranges. */
  readonly entries: number
  readonly sleds: Readonly<Record<string, { readonly entries: number; readonly seqs: readonly [number, number] }>>
  readonly rejected: LogStatus['rejected']
  readonly equivocations: ReadonlyArray<{ readonly sled: string; readonly seq: number }>
  readonly missing: LogStatus['missing']
  readonly ownHeadBehind: LogStatus['ownHeadBehind']
  /** One line per problem; empty when the directory is sound. */
  readonly problems: readonly string[]
  readonly ok: boolean
}

/** `sledlog verify`. */
export const verify: Command = {
  name: 'verify',
  help: `Usage: sledlog verify --data DIR [--json]

Checks a stopped node's data directory offline: reads every stored record, verifies every
entry's signature and its binding to (sled, seq), and reports the entries checked per sled,
records rejected (by error code), equivocations (a sled that signed two entries for one seq),
missing ranges (entries known to exist but not held) and whether the node lost entries it had
written (OWN_HEAD_BEHIND). It never modifies the directory; one that cannot be opened in place
(a read-only disk or mount, another user's files, a full disk) is read from a temporary copy
(in $TMPDIR, removed afterwards). Shows a progress bar on a terminal.

Options:
  --data DIR   data directory (default: $SLEDLOG_DATA)
  --json       print the report as one JSON object

Exit codes: 0 no problem found; 1 problems found, or the directory cannot be read (no key,
KEY_FILE_PERMISSIONS, a running node holds it); 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, verify)
    const dir = resolveDataDir(v.data, io.env)
    if (dir === undefined) throw new UsageError('verify needs --data DIR (or SLEDLOG_DATA)')
    const bar = progressBar(io.stderr, 'verify', 'records')
    let report: VerifyReport
    try {
      report = await verifyDataDir(dir, (done, total) => bar.update(done, total), notice(io, 'verify'))
    } finally {
      bar.finish()
    }
    await write(io.stdout, v.json === true ? `${jsonLine(report)}\n` : describe(report))
    return report.ok ? EXIT.OK : EXIT.FAILURE
  },
}

/**
 * Verifies a data directory; `onProgress` gets (records read, records stored) as it goes, and
 * `onNotice` a line when the directory is read from a copy. Throws a CliError when the directory
 * cannot be opened at all.
 */
export async function verifyDataDir(
  dir: string,
  onProgress: (done: number, total: number) => void = () => undefined,
  onNotice?: (text: string) => void,
): Promise<VerifyReport> {
  let total = 0
  let records = 0
  let macFailed = 0
  const log = await openDataDir(dir, {
    verifyOnOpen: 'full',
    onCount: (n) => (total = n),
    ...(onNotice === undefined ? {} : { onNotice }),
    onRecord: (r) => {
      records++
      if (!r.trusted) macFailed++
      onProgress(records, total)
    },
  })
  let st: LogStatus
  try {
    st = log.status()
  } finally {
    await log.close()
  }
  const sleds: Record<string, { entries: number; seqs: [number, number] }> = {}
  for (const [sled, head] of Object.entries(st.heads)) sleds[sled] = { entries: head + 1, seqs: [0, head] }
  const problems: string[] = []
  for (const [code, n] of Object.entries(st.rejected.byCode))
    problems.push(`${n} stored record${n === 1 ? '' : 's'} rejected: ${code}`)
  for (const e of st.equivocations) problems.push(`equivocation: sled ${e.sled} signed two entries for seq ${e.seq}`)
  for (const [sled, ranges] of Object.entries(st.missing)) {
    // The node's own lost entries are reported once, below, as what they are.
    if (sled === st.sled && st.ownHeadBehind !== null) continue
    for (const [a, b] of ranges) problems.push(`missing: sled ${sled} seqs ${a}..${b} are known to exist but not held`)
  }
  if (st.ownHeadBehind !== null) {
    const { written, have } = st.ownHeadBehind
    problems.push(
      `own head behind: this node wrote ${written} entries but holds ${have} ` +
        '(OWN_HEAD_BEHIND: it refuses appends until peers return them)',
    )
  }
  return {
    dir,
    sled: st.sled,
    records,
    macFailed,
    entries: st.entries,
    sleds,
    rejected: st.rejected,
    equivocations: st.equivocations.map((e) => ({ sled: e.sled, seq: e.seq })),
    missing: st.missing,
    ownHeadBehind: st.ownHeadBehind,
    problems,
    ok: problems.length === 0,
  }
}

const macNote = (n: number): string => (n > 0 ? `, ${n} failed their MAC and were checked as untrusted` : '')

/** The human report. */
export function describe(r: VerifyReport): string {
  const lines = [
    `verified ${r.dir} (sled ${r.sled})`,
    `  ${r.records} stored record${r.records === 1 ? '' : 's'} read${macNote(r.macFailed)}`,
    `  ${r.entries} entr${r.entries === 1 ? 'y' : 'ies'} checked, every signature verified:`,
  ]
  for (const [sled, s] of Object.entries(r.sleds))
    lines.push(`    ${sled}  seqs ${s.seqs[0]}..${s.seqs[1]}${sled === r.sled ? '  (this node)' : ''}`)
  if (r.ok) lines.push('OK: no problems found')
  else {
    lines.push(`PROBLEMS (${r.problems.length}):`)
    for (const p of r.problems) lines.push(`  - ${p}`)
  }
  return lines.join('\n') + '\n'
}
