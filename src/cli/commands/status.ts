/**
 * `sledlog status`: a node's status, from a running node (`--url`, GET /v1/status) or a stopped
 * node's data directory, as a summary for people or as JSON.
 */
import type { NoRecoveryStatus } from '../../http/recovery.js'
import type { LogStatus } from '../../log/sled-log.js'
import type { RecoveryStatus } from '../../sync/recovery.js'
import { parseFlags } from '../args.js'
import { EXIT } from '../cli-error.js'
import { CLIENT_FLAGS, CLIENT_HELP } from '../client-options.js'
import { help, type Command } from '../command.js'
import { notice, write } from '../io.js'
import { targetOf } from '../target.js'
import { jsonLine, visible } from '../visible.js'
import { redactUrls } from '../../config/redact.js'
import { resolveAdminKeys } from '../../config/resolve.js'

const OPTIONS = {
  url: { type: 'string' },
  data: { type: 'string' },
  json: { type: 'boolean' },
  ...CLIENT_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const

/** What GET /v1/status adds to the log status. */
interface PeerLine {
  readonly url: string | null
  readonly connected: boolean
  readonly label?: string
  readonly synced?: boolean
  readonly peerLag?: number
  readonly sled?: string | null
  readonly refused?: { readonly code: number; readonly reason: string; readonly retryAt: number }
}
type NodeStatus = LogStatus & {
  readonly appendsHeld?: boolean
  readonly recovery?: RecoveryStatus | NoRecoveryStatus
  readonly peers?: readonly PeerLine[]
  readonly ingest?: {
    readonly published: number
    readonly appended: number
    readonly dropped: number
    readonly depth: number
  }
}

/** `sledlog status`. */
export const status: Command = {
  name: 'status',
  help: `Usage: sledlog status (--url URL | --data DIR) [--json]

Shows a node's status: entries and heads per sled, peers (running node only), rejected updates,
equivocations, this node's key chain and retired sleds, missing ranges, whether appends are open,
and a recovery after a lost disk (running node only): what it waits for, which peers answered,
and what an operator can do. --url asks a running node;
--data opens a stopped node's data directory and never modifies it (one that cannot be opened
in place, e.g. on a read-only disk, is read from a temporary copy).

Options:
  --json      print the full status as one JSON object

${CLIENT_HELP}

Exit codes: 0 ok; 1 the node or directory could not be read; 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, status)
    const target = await targetOf(v, 'status', io)
    let st: NodeStatus
    if (target.kind === 'url') {
      try {
        st = (await target.client.get('/v1/status')) as NodeStatus
      } finally {
        target.client.close()
      }
    } else {
      const log = await (await import('../data-dir.js')).openDataDir(target.dir, {
        onNotice: notice(io, 'status'),
        adminKeys: resolveAdminKeys(io.env),
      })
      try {
        st = log.status()
      } finally {
        await log.close()
      }
    }
    await write(io.stdout, v.json === true ? `${jsonLine(st)}\n` : describe(st))
    return EXIT.OK
  },
}

const short = (sled: string): string => sled.slice(0, 12)

/** The human summary of a status. */
export function describe(st: NodeStatus): string {
  const rows: Array<[string, string]> = []
  const heads = Object.entries(st.heads)
  rows.push(['sled', st.sled])
  rows.push(['entries', `${st.entries} from ${heads.length} sled${heads.length === 1 ? '' : 's'}`])
  for (const [sled, head] of heads)
    rows.push(['', `${short(sled)}  head ${head}${sled === st.sled ? '  (this node)' : ''}`])
  let appends = 'open'
  if (st.writeFailed !== null) appends = `refused: a write failed (${st.writeFailed}); restart the node`
  else if (st.ownHeadBehind !== null) {
    const { have, written } = st.ownHeadBehind
    appends = `refused: holds ${have} of the ${written} entries it wrote (OWN_HEAD_BEHIND)`
  } else if (st.recovery?.state === 'waiting') appends = 'refused: recovering its own head (RECOVERING)'
  else if (st.appendsHeld === true) appends = 'held: waiting to sync with peers'
  rows.push(['appends', appends])
  if (st.recovery !== undefined) rows.push(...recoveryRows(st.recovery))
  if (st.peers !== undefined) {
    const up = st.peers.filter((p) => p.connected).length
    rows.push(['peers', `${up} of ${st.peers.length} connected`])
    for (const p of st.peers) {
      const retry = p.refused === undefined ? 0 : Math.max(0, Math.round((p.refused.retryAt - Date.now()) / 1000))
      const refused =
        p.refused === undefined ? '' : `: refused (${p.refused.code} ${p.refused.reason}), retry in ${retry} s`
      const lag = p.peerLag !== undefined && p.peerLag > 0 ? `, ${p.peerLag} behind` : ''
      const state = p.connected ? `connected${p.synced === true ? ', synced' : ''}${lag}` : `disconnected${refused}`
      const who = p.url === null ? `inbound ${p.label ?? ''}` : redactUrls(p.url)
      rows.push(['', `${who}  ${state}${p.sled ? `  sled ${short(p.sled)}` : ''}`])
    }
  }
  const codes = Object.entries(st.rejected.byCode).map(([c, n]) => `${c} ${n}`)
  rows.push(['rejected', st.rejected.total === 0 ? 'none' : `${st.rejected.total} (${codes.join(', ')})`])
  const f = st.forks
  const more = f.sleds > f.first.length ? `, … ${f.sleds - f.first.length} more` : ''
  const own = f.own === null ? '' : `; THIS NODE's sled is forked at ${f.own}: appends refused (SLED_FORKED)`
  const listed = f.first.map((x) => `${short(x.sled)}@${x.seq}`).join(', ')
  rows.push([
    'forks',
    f.sleds === 0 ? 'none' : `${f.sleds} sled(s) read only below their fork seq: ${listed}${more}${own}`,
  ])
  // A node from before key succession has no such section.
  const sc = st.succession as LogStatus['succession'] | undefined
  if (sc !== undefined) {
    if (sc.chain.length === 0) rows.push(['key', 'an original key (succeeds none)'])
    for (const [i, l] of sc.chain.entries()) {
      const endorsed = l.endorsed ? 'endorsed' : 'NOT endorsed'
      const who = i === 0 ? 'this key succeeds' : `  which succeeds`
      rows.push([
        i === 0 ? 'key' : '',
        `${who} ${short(l.predecessor)} after seq ${l.lastSeq} (${l.reason}, ${endorsed})`,
      ])
    }
    const listed = sc.first.map((x) => `${short(x.sled)}@${x.seq}`).join(', ')
    const moreRetired = sc.retired > sc.first.length ? `, … ${sc.retired - sc.first.length} more` : ''
    const ownRetired =
      sc.own === null ? '' : `; THIS NODE's key is retired from ${sc.own}: appends refused (SLED_RETIRED)`
    rows.push([
      'retired',
      sc.retired === 0
        ? `none (${sc.successions} successions, ${sc.revocations} revocations held)`
        : `${sc.retired} sled(s) flagged from their retirement seq: ${listed}${moreRetired}${ownRetired}` +
          ` (${sc.successions} successions, ${sc.revocations} revocations held)`,
    ])
  }
  const missing = Object.entries(st.missing).flatMap(([sled, ranges]) =>
    ranges.map(([a, b]) => `${short(sled)} ${a}..${b}`),
  )
  rows.push(['missing', missing.length === 0 ? 'none' : missing.join(', ')])
  if (st.ingest !== undefined) {
    const i = st.ingest
    rows.push(['ingest', `published ${i.published}, appended ${i.appended}, dropped ${i.dropped}, queued ${i.depth}`])
  }
  const width = Math.max(...rows.map(([k]) => k.length))
  // Every value but the row names came from the node (peers' URLs, reasons, codes): escaped.
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${visible(v)}`).join('\n') + '\n'
}

const when = (ms: number): string => new Date(ms).toISOString()

/** The recovery rows: a recovery in progress in full, an ended one (this run's or the last) in one line. */
function recoveryRows(r: RecoveryStatus | NoRecoveryStatus): Array<[string, string]> {
  const ended = r.state === 'not-needed' ? r.last : r
  if (ended === null) return []
  if (ended.state !== 'waiting') {
    const d = ended.decision
    const how =
      d === null
        ? `proven by ${ended.quorum.answered} peer(s) (${ended.quorum.rule})`
        : `ACCEPTED WITHOUT PROOF by ${d.by} at head ${d.head}` +
          (d.missing.length > 0 ? ` (not heard from: ${d.missing.join(', ')})` : '')
    const at = ended.endedAt === null ? '' : ` at ${when(ended.endedAt)}`
    // Older stored outcomes have no successor field.
    const next = ended.successor ?? null
    const moved = next === null ? '' : `; moved to successor ${short(next.sled)} (old sled ends at seq ${next.lastSeq})`
    return [['recovery', `${r.state === 'not-needed' ? 'last ' : ''}${ended.state}${at}: ${how}${moved}`]]
  }
  const rows: Array<[string, string]> = [
    ['recovery', `waiting since ${when(ended.since)} for ${ended.waitingFor ?? ''}`],
    ['', `holds ${ended.holding} of its entries; ${ended.need} known to exist`],
    ['', `quorum: ${ended.quorum.rule}, ${ended.quorum.answered} of ${ended.quorum.needed ?? 'none'} answered`],
  ]
  for (const p of ended.peers)
    rows.push(['', `${redactUrls(p.peer)}  ${p.holds === null ? 'no answer' : `holds ${p.holds}`}`])
  if (ended.warnings > 0) rows.push(['', `${ended.warnings} timeout warning(s)`])
  for (const o of ended.options) rows.push(['option', o])
  return rows
}
