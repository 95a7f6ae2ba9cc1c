/**
 * `sledlog verify`: an offline integrity check of a stopped node's data directory. It loads the
 * log with every signature verified (`verifyOnOpen: 'full'`, ignoring the MAC shortcut) and
 * reports what it checked and every problem: rejected records by code, missing ranges, and lost
 * own entries. Forks (a sled that signed two versions of a seq, proven by two verified records)
 * are reported apart: they are evidence the store holds, not damage to it, and exit with their
 * own codes. It only reads: no key is created, nothing is appended, and the database is closed
 * without a write.
 */
import { createReadStream } from 'node:fs'
import { LINE_LIMIT } from '../../backup/format.js'
import { ExportVerifier, type ExportReport } from '../../backup/verify-export.js'
import { resolveAdminKeys, resolveDataDir } from '../../config/resolve.js'
import type { SledId } from '../../core/ids.js'
import type { ForkInfo, LogStatus, SledLog } from '../../log/sled-log.js'
import { parseFlags } from '../args.js'
import { EXIT, UsageError } from '../cli-error.js'
import { help, type Command } from '../command.js'
import { openDataDir } from '../data-dir.js'
import { type InStream, notice, write } from '../io.js'
import { readLines } from '../lines.js'
import { progressBar } from '../progress.js'
import { jsonLine } from '../visible.js'

/** Exit codes of `sledlog verify` beyond the common ones (0 ok, 1 problems, 2 usage). */
export const VERIFY_EXIT = {
  /** The store is sound, and holds proof that another sled equivocated (it is forked). */
  FORKED: 3,
  /** The store is sound, and this node's own sled is forked: it refuses appends. */
  OWN_FORKED: 4,
} as const

/** Forks listed in the human report (the JSON report lists all). */
const FORKS_SHOWN = 20

const OPTIONS = {
  data: { type: 'string' },
  export: { type: 'string' },
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
  readonly missing: LogStatus['missing']
  readonly ownHeadBehind: LogStatus['ownHeadBehind']
  /** Forked sleds, each with the seq it signed twice (its proof verified), in sled order. */
  readonly forks: readonly ForkInfo[]
  /** The fork seq of this node's own sled, or null. */
  readonly ownFork: number | null
  /** One line per problem (damage to the store); empty when the directory is sound. */
  readonly problems: readonly string[]
  /** True when the store is sound and holds no fork. */
  readonly ok: boolean
  /** 0 ok, 1 problems, {@link VERIFY_EXIT} for forks in a sound store. */
  readonly exitCode: number
}

/** `sledlog verify`. */
export const verify: Command = {
  name: 'verify',
  help: `Usage: sledlog verify --data DIR [--json]
       sledlog verify --export FILE [--json]

Checks a stopped node's data directory offline: reads every stored record, verifies every
entry's signature and its binding to (sled, seq), and reports the entries checked per sled,
records rejected (by error code), missing ranges (entries known to exist but not held) and
whether the node lost entries it had written (OWN_HEAD_BEHIND). Forks are reported apart: a
sled that signed two versions of one seq, proven by two verified records the store keeps; every
node reads such a sled only below that seq. A fork is evidence against the sled, not damage to
this store. It never modifies the directory; one that cannot be opened in place (a read-only
disk or mount, another user's files, a full disk) is read from a temporary copy (in $TMPDIR,
removed afterwards). Shows a progress bar on a terminal.

With --export it checks an export file ('sledlog export', docs/PROTOCOL.md §7.3) against the
protocol alone: every record opens (canonical text, signature, endorsement, revocation
signature), sits at the sled and seq its line names and fits the record limit, and each sled's
lines are contiguous. It reports gap sentinels (and the producer ids they dropped), successions,
revocations and the retirements they give (admin revocations count for the keys in
SLEDLOG_ADMIN_KEYS). Exit 0 when every line verifies, 1 otherwise.

Options:
  --data DIR     data directory (default: $SLEDLOG_DATA)
  --export FILE  an export file to check instead ('-' reads stdin)
  --json         print the report as one JSON object

Exit codes: 0 no problem and no fork; 1 problems found (the store is damaged), or the directory
cannot be read (no key, KEY_FILE_PERMISSIONS, a running node holds it); 2 bad usage; 3 the store
is sound but another sled equivocated (forked); 4 the store is sound but this node's own sled is
forked (it re-signed history, e.g. after a lost disk, and refuses appends: SLED_FORKED).
Damage wins over forks, and this node's fork over others'.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, verify)
    if (v.export !== undefined) {
      if (v.data !== undefined) throw new UsageError('give either --data DIR or --export FILE, not both')
      const input = v.export === '-' ? io.stdin : createReadStream(v.export)
      const r = await verifyExport(input, resolveAdminKeys(io.env))
      await write(io.stdout, v.json === true ? `${jsonLine(r)}\n` : describeExport(v.export, r))
      return r.ok ? EXIT.OK : EXIT.FAILURE
    }
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
    return report.exitCode
  },
}

/** Every fork of a log, paging through {@link SledLog.forks}. */
function allForks(log: SledLog): ForkInfo[] {
  const out: ForkInfo[] = []
  let after: SledId | undefined
  for (;;) {
    const page = log.forks(after === undefined ? { limit: 1000 } : { after, limit: 1000 })
    out.push(...page.forks)
    if (page.next === null) return out
    after = page.next
  }
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
  let forks: ForkInfo[]
  const sleds: Record<string, { entries: number; seqs: [number, number] }> = {}
  let entries = 0
  try {
    st = log.status()
    forks = allForks(log)
    // Every record held was checked, those withheld past a fork too.
    for (const sled of log.sleds()) {
      const held = log.held(sled)
      if (held === 0) continue
      sleds[sled] = { entries: held, seqs: [0, held - 1] }
      entries += held
    }
  } finally {
    await log.close()
  }
  const problems: string[] = []
  for (const [code, n] of Object.entries(st.rejected.byCode))
    problems.push(`${n} stored record${n === 1 ? '' : 's'} rejected: ${code}`)
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
  const ownFork = st.forks.own
  const exitCode =
    problems.length > 0
      ? EXIT.FAILURE
      : ownFork !== null
        ? VERIFY_EXIT.OWN_FORKED
        : forks.length > 0
          ? VERIFY_EXIT.FORKED
          : EXIT.OK
  return {
    dir,
    sled: st.sled,
    records,
    macFailed,
    entries,
    sleds,
    rejected: st.rejected,
    missing: st.missing,
    ownHeadBehind: st.ownHeadBehind,
    forks,
    ownFork,
    problems,
    ok: exitCode === EXIT.OK,
    exitCode,
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
  if (r.problems.length === 0) lines.push('OK: no problems found (the store is sound)')
  else {
    lines.push(`PROBLEMS (${r.problems.length}):`)
    for (const p of r.problems) lines.push(`  - ${p}`)
  }
  if (r.ownFork !== null) {
    lines.push(
      `THIS NODE'S SLED IS FORKED at seq ${r.ownFork}: it signed two versions of that seq (history re-signed ` +
        'after a lost disk, or its key used by two nodes). Every node reads its entries only below that seq, ' +
        'and it refuses appends (SLED_FORKED) until it moves to a new key.',
    )
  }
  if (r.forks.length > 0) {
    lines.push(
      `FORKED SLEDS (${r.forks.length}): each signed two versions of the seq shown (both verified); ` +
        'every node reads them only below it:',
    )
    for (const f of r.forks.slice(0, FORKS_SHOWN))
      lines.push(`  - ${f.sled} at seq ${f.seq}${f.sled === r.sled ? '  (this node)' : ''}`)
    if (r.forks.length > FORKS_SHOWN) lines.push(`  … ${r.forks.length - FORKS_SHOWN} more (--json lists all)`)
  }
  return lines.join('\n') + '\n'
}

/** Checks an export read from `input` (docs/PROTOCOL.md §7.3). */
export async function verifyExport(input: InStream, adminKeys: readonly SledId[] = []): Promise<ExportReport> {
  const v = new ExportVerifier({ adminKeys })
  for await (const line of readLines(input, LINE_LIMIT)) v.line(line.text, line.n)
  return v.finish()
}

/** The human report of an export check. */
export function describeExport(file: string, r: ExportReport): string {
  const lines = [`verified export ${file}: ${r.lines} lines, ${r.verified} records verified`]
  for (const [sled, s] of Object.entries(r.sleds)) {
    const gaps = s.gaps === 0 ? '' : `, ${s.gaps} gap sentinels (${s.dropped} producer ids dropped)`
    lines.push(`  ${sled}  seqs ${s.first}..${s.last}${gaps}`)
  }
  lines.push(`  ${r.successions} successions, ${r.revocations} revocations`)
  for (const [sled, seq] of Object.entries(r.retired)) lines.push(`  retired: ${sled} from seq ${seq}`)
  for (const sled of r.contested) lines.push(`  contested: ${sled} endorsed two or more successors`)
  if (r.ok) lines.push('OK: every record verifies, every sled is contiguous')
  else {
    lines.push(`PROBLEMS (${r.problemCount}):`)
    for (const p of r.problems) lines.push(`  - ${p}`)
    if (r.problemCount > r.problems.length) lines.push(`  … ${r.problemCount - r.problems.length} more`)
  }
  return lines.join('\n') + '\n'
}
