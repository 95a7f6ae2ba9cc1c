/**
 * `sledlog recover` refusals and how `sledlog status` shows a recovery (the full decision path runs
 * against real node processes in test/sync/disk-loss.e2e.test.ts).
 */
import { describe, expect, it } from 'vitest'
import { describe as describeStatus } from '../../src/cli/commands/status.js'
import type { SledId } from '../../src/core/ids.js'
import type { RecoveryStatus } from '../../src/sync/recovery.js'
import { runMain } from './cli-process.js'

const SLED = 'a'.repeat(64)

const BASE = {
  sled: SLED,
  entries: 0,
  heads: {},
  rejected: { total: 0, byCode: {} },
  duplicates: 0,
  forks: { sleds: 0, equivocations: 0, ignored: 0, withheld: 0, own: null, first: [] },
  missing: {},
  ownHeadBehind: null,
  writeFailed: null,
  appendsHeld: true,
  peers: [],
}

const WAITING: RecoveryStatus = {
  state: 'waiting',
  mode: 'succession',
  successor: null,
  since: Date.UTC(2026, 11, 7, 12, 0, 0),
  endedAt: null,
  quorum: { rule: 'every dialed peer', needed: 2, answered: 1 },
  peers: [
    { peer: 'ws://b:7400', kind: 'dialed', sled: 'b'.repeat(64) as SledId, holds: 40 },
    { peer: 'ws://user:secret@c:7400', kind: 'dialed', sled: null, holds: null },
  ],
  missing: ['ws://user:secret@c:7400'],
  others: {},
  holding: 20,
  need: 40,
  waitingFor: 'receipts from 1 more configured peer (missing: ws://c:7400), and its own entries 20..39',
  options: ['bring the missing peers back', 'sledlog recover --accept-head-risking-fork --url URL: …'],
  warnings: 3,
  lastWarningAt: null,
  decision: null,
}

describe('sledlog status: recovery', () => {
  it('shows a recovery in progress: why writes are refused, each peer, the options', () => {
    const text = describeStatus({ ...BASE, recovery: WAITING } as never)
    expect(text).toMatch(/appends +refused: recovering its own head \(RECOVERING\)/)
    expect(text).toContain('recovery  waiting since 2026-12-07T12:00:00.000Z for receipts from 1 more')
    expect(text).toContain('holds 20 of its entries; 40 known to exist')
    expect(text).toContain('quorum: every dialed peer, 1 of 2 answered')
    expect(text).toContain('ws://b:7400  holds 40')
    expect(text).not.toContain('secret')
    expect(text).toContain('3 timeout warning(s)')
    expect(text).toMatch(/option +sledlog recover --accept-head-risking-fork/)
  })

  it('shows how the last recovery ended, an accepted head loudly', () => {
    const last: RecoveryStatus = {
      ...WAITING,
      state: 'accepted',
      endedAt: Date.UTC(2026, 11, 7, 13, 0, 0),
      decision: {
        decision: 'accept-head-risking-fork',
        at: Date.UTC(2026, 11, 7, 13, 0, 0),
        by: 'token 3f2a9c0d1b7e',
        head: 20,
        need: 40,
        missing: ['ws://c:7400'],
      },
    }
    const text = describeStatus({ ...BASE, appendsHeld: false, recovery: { state: 'not-needed', last } } as never)
    expect(text).toMatch(/appends +open/)
    expect(text).toContain(
      'recovery  last accepted at 2026-12-07T13:00:00.000Z: ACCEPTED WITHOUT PROOF by token 3f2a9c0d1b7e at head 20 ' +
        '(not heard from: ws://c:7400)',
    )
    expect(
      describeStatus({ ...BASE, appendsHeld: false, recovery: { state: 'not-needed', last: null } } as never),
    ).not.toContain('recovery')
    const moved: RecoveryStatus = {
      ...WAITING,
      state: 'proven',
      endedAt: Date.UTC(2026, 11, 7, 13, 0, 0),
      quorum: { rule: 'every dialed peer', needed: 2, answered: 2 },
      successor: { sled: 'c'.repeat(64) as SledId, lastSeq: 39 },
    }
    expect(describeStatus({ ...BASE, recovery: { state: 'not-needed', last: moved } } as never)).toContain(
      'recovery  last proven at 2026-12-07T13:00:00.000Z: proven by 2 peer(s) (every dialed peer); ' +
        'moved to successor cccccccccccc (old sled ends at seq 39)',
    )
  })
})

describe('sledlog recover', () => {
  it('needs the flag that says what it risks, and a node', async () => {
    const none = await runMain(['recover', '--url', 'http://127.0.0.1:1'])
    expect(none.code).toBe(2)
    expect(none.stderr).toContain('--accept-head-risking-fork')
    const noUrl = await runMain(['recover', '--accept-head-risking-fork'])
    expect(noUrl.code).toBe(2)
    expect(noUrl.stderr).toContain('--url')
  })
})
