/**
 * The report of a harness run: a table for people, the JSON for machines, and the command line
 * that replays the run. Pure.
 */
import { DEFAULT_ATTACKS, type HostileAttack } from './hostile-peer.js'
import type { HarnessResult } from './run.js'
import { FAULT_KINDS, type FaultKind } from './schedule.js'

/** What {@link replayCommand} needs: every option that shapes the schedule and the workload. */
export interface ReplayOptions {
  readonly seed: number
  readonly nodes: number
  readonly durationMs: number
  readonly faults: readonly FaultKind[]
  readonly rate: number
  readonly ingestRate: number
  readonly ingestBus: number
  readonly attacks: readonly HostileAttack[]
  /** Set when not the default: it changes when checks read the nodes, so what they can see. */
  readonly checkIntervalMs?: number
  /** Set when not the default: a failure to converge may hinge on it. */
  readonly convergeTimeoutMs?: number
  /** Set when given: the nodes' `--recovery-mode`. */
  readonly recoveryMode?: 'succession' | 'resume'
}

function faultList(faults: readonly FaultKind[]): string {
  if (faults.length === 0) return 'none'
  if (FAULT_KINDS.every((k) => faults.includes(k))) return 'all'
  return FAULT_KINDS.filter((k) => faults.includes(k)).join(',')
}

/** `sledlog harness …` with the options of a run, so running it again replays the run. */
export function replayCommand(o: ReplayOptions): string {
  const args = [
    'sledlog harness',
    `--nodes ${o.nodes}`,
    `--duration ${o.durationMs / 1000}`,
    `--seed ${o.seed}`,
    `--faults ${faultList(o.faults)}`,
    `--rate ${o.rate}`,
    `--ingest-rate ${o.ingestRate}`,
    `--ingest-bus ${o.ingestBus}`,
  ]
  const defaults = DEFAULT_ATTACKS.length === o.attacks.length && DEFAULT_ATTACKS.every((a) => o.attacks.includes(a))
  if (!defaults) args.push(`--attacks ${o.attacks.length === 0 ? 'none' : o.attacks.join(',')}`)
  if (o.checkIntervalMs !== undefined) args.push(`--check-interval ${o.checkIntervalMs}`)
  if (o.convergeTimeoutMs !== undefined) args.push(`--converge-timeout ${o.convergeTimeoutMs}`)
  if (o.recoveryMode !== undefined) args.push(`--recovery-mode ${o.recoveryMode}`)
  return args.join(' ')
}

/** 12345 → "12 345" (thin grouping that survives copy-paste into any document). */
function num(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ' ')
}

function secs(ms: number | null): string {
  if (ms === null) return '–'
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : `${(ms / 1000).toFixed(1)} s`
}

function duration(ms: number): string {
  const s = Math.round(ms / 1000)
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`
}

/** Most violations the table lists (the JSON has all). */
const LIST_MAX = 40

/** The report as a table of labelled lines; ends with the result, and for a failure the replay line. */
export function formatReport(r: HarnessResult): string {
  const f = r.figures
  const o = r.options
  const rows: Array<[string, string]> = []
  rows.push([
    'run',
    `seed ${r.seed} · ${o.nodes} nodes · ${o.durationMs / 1000} s · faults ${faultList(o.faults)} · ` +
      `per node ${o.rate} appends/s + ${o.ingestRate} ingested/s ` +
      `(bus ${o.ingestBus === 0 ? 'default' : o.ingestBus})`,
  ])
  const fault = (k: string): number => f.faults[k] ?? 0
  const shapes = ['halves', 'bridge', 'ring', 'cut', 'blackhole', 'one-way']
    .filter((s) => fault(`partition ${s}`) > 0)
    .map((s) => `${s} ${fault(`partition ${s}`)}`)
  rows.push([
    'faults',
    FAULT_KINDS.filter((k) => o.faults.includes(k))
      .map((k) => `${k} ${fault(k)}${k === 'partition' && shapes.length > 0 ? ` (${shapes.join(', ')})` : ''}`)
      .join(' · ') || 'none',
  ])
  const w = f.writers
  rows.push([
    'appends',
    `${num(w.appended)} acknowledged in ${num(w.appendBatches)} batches · ` +
      `${num(w.appendFailures)} requests failed (node down or frozen), ` +
      `${num(w.appendsRecovering)} refused while recovering a lost disk (503 RECOVERING)`,
  ])
  if (o.ingestRate > 0) {
    const acc = f.ingest.nodes
    const sum = (g: (a: (typeof acc)[number]) => number): number => acc.reduce((n, a) => n + g(a), 0)
    rows.push([
      'ingest',
      `${num(w.ingested)} published: ${num(w.queued)} queued, ${num(w.dropped)} dropped (bus full) · ` +
        `in the logs: ${num(sum((a) => a.events))} events, ` +
        `${num(sum((a) => a.sentinels))} gap sentinels covering ${num(sum((a) => a.lidsInSentinels))} lids, ` +
        `${num(sum((a) => a.queuedButLost))} queued events lost in crashes · ` +
        `${num(w.ingestHeld)} requests refused (recovering), ${num(w.ingestUnknown)} unanswered`,
    ])
  }
  if (f.subscribers.count > 0) {
    const s = f.subscribers
    rows.push([
      'subscribers',
      `${s.count} slow: ${num(s.delivered)} entries, ${num(s.lagged)} lagged notices, ` +
        `${num(s.connections - s.count)} reconnects, ${num(s.redelivered)} redelivered after disk loss`,
    ])
  }
  if (f.consumers.count > 0) {
    const k = f.consumers
    rows.push([
      'consumers',
      `${k.count} durable: ${num(k.delivered)} delivered (${num(k.redelivered)} again), ` +
        `${num(k.acked)} acknowledged, ` +
        `${num(k.connections - k.count)} reconnects, ${num(k.resets)} cursors lost with a disk`,
    ])
  }
  if (f.hostile !== null) {
    const h = f.hostile
    const closes = Object.entries(h.closes)
      .map(([code, n]) => `${code} ×${n}`)
      .join(', ')
    rows.push([
      'hostile',
      `${num(h.connections)} connections (${num(h.failedConnections)} failed): ` +
        `${num(h.forged)} forged, ${num(h.tampered)} tampered, ${num(h.deletions)} deletions, ` +
        `${num(h.rebound)} rebound, ${num(h.garbage)} garbage frames, ${num(h.equivocations)} split equivocations, ` +
        `${num(h.equivocationsOneNode)} one-node equivocations, ` +
        `${num(h.ownEntries)} own entries (${num(h.ownHeld)} held) · closed by nodes: ${closes || 'never'}`,
    ])
  }
  const sc = f.succession
  const issue16 = ['rotate-partitioned', 'revoke-partitioned', 'wipe-holding-acks', 'wipe', 'wipe-peers-down'] as const
  if (issue16.some((k) => o.faults.includes(k))) {
    const h = sc.holding
    rows.push([
      'succession',
      `${sc.rotations} rotations, ${sc.successors} new sleds followed ` +
        '(rotations and successions after a lost disk) · ' +
        `revocations ${sc.revocations.self} self, ${sc.revocations.admin} admin · ` +
        `${sc.retiredSleds} retired sleds, ${num(sc.retiredEntries)} entries read retired`,
    ])
    if (o.faults.includes('wipe-holding-acks')) {
      rows.push([
        'held acks',
        `before losing a disk: ${num(h.zero)} entries acknowledged with acks=0, ${num(h.acked)} with acks=N ` +
          `(peers proved they held them) · acks=N refused ${num(h.refused)} (NOT_ENOUGH_PEERS), ` +
          `timed out ${num(h.timeouts)} (ACKS_TIMEOUT), failed otherwise ${num(h.failed)} · ` +
          `${num(f.final.lostWithDisk)} acks=0 entries lost with a disk (allowed)`,
      ])
    }
  }
  const rejected = Object.entries(f.rejected)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} ${num(n)}`)
  rows.push(['rejected', rejected.length === 0 ? 'none' : rejected.join(' · ')])
  rows.push([
    'checks',
    `${num(f.checks.rounds)} rounds while running (every node each time), ` +
      `${num(f.checks.readErrors)} reads failed (node going down)`,
  ])
  const x = f.final
  rows.push([
    'final',
    `${num(x.entries)} entries of ${x.sleds} sleds on every node · lost ${x.lost} · ` +
      `lost with a disk ${x.lostWithDisk} · duplicates ${x.duplicates} · ` +
      `gaps ${x.gaps} · diverged ${x.diverged} · re-signed ${x.resigned} · ` +
      `forged accepted ${x.forgedAccepted} · crashes ${x.crashes}`,
  ])
  const cv = f.convergence
  rows.push([
    'converge',
    `after ${cv.heals} heals: p50 ${secs(cv.p50Ms)}, p99 ${secs(cv.p99Ms)}, max ${secs(cv.maxMs)}` +
      (cv.unfinished > 0 ? `, ${cv.unfinished} cut short by the next fault` : '') +
      (cv.timedOut > 0 ? `, ${cv.timedOut} NOT converged within 60 s` : '') +
      ` · after the final heal ${secs(cv.finalMs)}`,
  ])
  rows.push([
    'result',
    r.ok
      ? `PASS: every invariant held (elapsed ${duration(r.elapsedMs)})`
      : `FAIL: ${r.violations.length} violation${r.violations.length === 1 ? '' : 's'} ` +
        `(elapsed ${duration(r.elapsedMs)})`,
  ])
  const width = Math.max(...rows.map(([k]) => k.length))
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`)
  if (!r.ok) {
    for (const v of r.violations.slice(0, LIST_MAX))
      lines.push(
        `${''.padEnd(width)}  [${v.at === null ? ' final ' : `${(v.at / 1000).toFixed(1).padStart(6)}s`}] ` +
          v.text.split('\n').join(`\n${''.padEnd(width + 13)}`),
      )
    if (r.violations.length > LIST_MAX)
      lines.push(`${''.padEnd(width)}  … ${r.violations.length - LIST_MAX} more in the JSON report`)
    lines.push(`${'replay'.padEnd(width)}  ${r.replay}`)
    if (r.dataDir !== null) lines.push(`${'data'.padEnd(width)}  kept in ${r.dataDir}`)
  }
  return lines.join('\n') + '\n'
}

/** The JSON report (everything, including the executed schedule). */
export function reportJson(r: HarnessResult): string {
  return JSON.stringify(r, null, 2) + '\n'
}
