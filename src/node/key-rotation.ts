/**
 * Moving a stopped node to a successor key (docs/PROTOCOL.md §3.5, §7.1): `sledlog rotate-key`
 * (planned) and `sledlog recover --new-key` (after a lost disk, or a forked sled).
 *
 * The new key's first entry is a succession record naming the old sled and the last of its seqs
 * the node vouches for, endorsed by the old key when the node still has it. The data directory
 * keeps its database (every sled's entries, the old sled's included) and changes its key:
 *
 * 1. the new key is written to `sled.key.next` with the rotation's decisions (predecessor,
 *    lastSeq, reason): the journal. From here the node refuses to start until it is finished;
 * 2. the stored updates are re-sealed with the new key's MAC (otherwise every later open would
 *    verify every signature), the own-entry count and the ingest lid state are reset (they were
 *    the old sled's), and the succession record is appended as the new sled's entry 0;
 * 3. the old key is kept as `retired-<sled>.key` (mode 0600: it can still sign a self
 *    revocation), the `RECOVERING` marker is removed, and `sled.key.next` is renamed over
 *    `sled.key` in one atomic step.
 *
 * Every step can be repeated: run again after a crash, the rotation resumes from its journal and
 * never makes a second successor.
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { SuccessionReason } from '../core/entry.js'
import { isSledId, type SledId } from '../core/ids.js'
import { endorseSuccession, keyPairFromSeed, type KeyPair } from '../core/signing.js'
import { sledlogError } from '../errors.js'
import { IngestWriter } from '../ingest/writer.js'
import { dbPath } from '../log/open-log.js'
import { SledLog } from '../log/sled-log.js'
import {
  loadIdentity,
  loadKeyFile,
  pendingKeyPath,
  promotePendingKey,
  retiredKeyPath,
  saveKeyFile,
} from '../store/identity.js'
import { deriveMacKey, LevelStore } from '../store/level-store.js'
import { RECOVERING_FILE } from './recovery-marker.js'

/** What to rotate to. */
export interface RotateOptions {
  /** `rotation`: planned, the store must be whole; `recovery`: after a loss, whatever is held. */
  readonly reason: SuccessionReason
  /** The predecessor's last seq to vouch for (default: the last one this store holds; -1 for none). */
  readonly lastSeq?: number
  /** The predecessor, when its key is lost (the directory has no `sled.key`): then unendorsed. */
  readonly predecessor?: SledId
  /** Admin keys, as the node is configured (they decide the retirement flags it reads). */
  readonly adminKeys?: readonly SledId[]
  /** A seed for the new key (tests); default: 32 random bytes. */
  readonly seed?: Uint8Array
  /**
   * The node itself rotates (after proving its head, docs/ARCHITECTURE.md "Recovery"): recorded in
   * the journal, so a node that crashed half-way finishes the rotation at its next start.
   */
  readonly byNode?: boolean
}

/** What a rotation did. */
export interface RotateResult {
  readonly predecessor: SledId
  readonly successor: SledId
  readonly lastSeq: number
  readonly reason: SuccessionReason
  /** True when the old key signed the endorsement (it then retires the old sled after lastSeq). */
  readonly endorsed: boolean
  /** Where the old key was kept, or null when the directory had none. */
  readonly retiredKeyFile: string | null
  /** True when this run finished a rotation an earlier run had begun. */
  readonly resumed: boolean
}

interface Journal {
  readonly predecessor: SledId
  readonly lastSeq: number
  readonly reason: SuccessionReason
  /** True when the node decided the rotation (it may finish it by itself). */
  readonly byNode?: boolean
}

/** Rotates the key of the stopped node in `dir` (see the module comment). */
export async function rotateKey(dir: string, opts: RotateOptions): Promise<RotateResult> {
  const old = await loadIdentity(dir)
  const pending = await loadKeyFile(pendingKeyPath(dir))
  const journal = pending === undefined ? undefined : readJournal(pending.extra, pendingKeyPath(dir))
  const predecessor = journal?.predecessor ?? old?.sled ?? opts.predecessor
  if (predecessor === undefined) {
    throw sledlogError(
      'CONFIG_INVALID',
      `${dir} has no key (sled.key) to rotate from: give the lost key's sled id (--predecessor SLED)`,
    )
  }
  if (old !== undefined && old.sled !== predecessor) {
    throw sledlogError(
      'CONFIG_INVALID',
      `${dir}/sled.key is ${old.sled.slice(0, 12)}…, but the rotation under way succeeds ${predecessor.slice(0, 12)}…`,
    )
  }
  if (opts.predecessor !== undefined && opts.predecessor !== predecessor) {
    throw sledlogError(
      'CONFIG_INVALID',
      `--predecessor ${opts.predecessor.slice(0, 12)}… is not this directory's key (${predecessor.slice(0, 12)}…)`,
    )
  }
  if (journal !== undefined && opts.lastSeq !== undefined && opts.lastSeq !== journal.lastSeq) {
    // The interrupted run may already have appended the succession: its decision stands.
    throw sledlogError(
      'CONFIG_INVALID',
      `an interrupted ${journal.reason}${journal.byNode === true ? ' the node began' : ''} already decided to vouch ` +
        `for seqs 0..${journal.lastSeq} of ${journal.predecessor.slice(0, 12)}…, not 0..${opts.lastSeq}: ` +
        'run it again without --last-seq to finish it',
      { lastSeq: journal.lastSeq },
    )
  }
  let decided = journal
  if (decided === undefined) {
    const lastSeq = opts.lastSeq ?? (await heldHead(dir, old, predecessor, opts))
    decided = { predecessor, lastSeq, reason: opts.reason, ...(opts.byNode === true ? { byNode: true } : {}) }
  }
  const next = pending?.keys ?? keyPairFromSeed(opts.seed ?? randomBytes(32))
  if (pending === undefined) await saveKeyFile(pendingKeyPath(dir), next, { rotation: decided })
  const endorsed = old !== undefined
  await appendSuccession(dir, old, next, decided, opts.adminKeys)
  let retiredKeyFile: string | null = null
  if (old !== undefined) {
    retiredKeyFile = retiredKeyPath(dir, old.sled)
    if (!existsSync(retiredKeyFile)) await saveKeyFile(retiredKeyFile, old)
  }
  // The new key is new: nothing it signed can be lost, so no recovery hold applies to it.
  await rm(join(dir, RECOVERING_FILE), { force: true })
  await promotePendingKey(dir)
  return {
    predecessor: decided.predecessor,
    lastSeq: decided.lastSeq,
    reason: decided.reason,
    successor: next.sled,
    endorsed,
    retiredKeyFile,
    resumed: pending !== undefined,
  }
}

/**
 * Finishes a rotation the node itself began and a crash interrupted (its journal says so);
 * null when there is none. An operator's interrupted rotation is left to the operator
 * (`assertNoPendingRotation` refuses the start and says which command to run again).
 */
export async function finishNodeRotation(dir: string, adminKeys?: readonly SledId[]): Promise<RotateResult | null> {
  const pending = await loadKeyFile(pendingKeyPath(dir))
  if (pending === undefined) return null
  const journal = readJournal(pending.extra, pendingKeyPath(dir))
  if (journal.byNode !== true) return null
  return rotateKey(dir, { reason: journal.reason, ...(adminKeys === undefined ? {} : { adminKeys }) })
}

function readJournal(extra: Readonly<Record<string, unknown>>, path: string): Journal {
  const j = extra.rotation as Partial<Journal> | undefined
  if (
    j === undefined ||
    !isSledId(j.predecessor) ||
    !Number.isSafeInteger(j.lastSeq) ||
    (j.lastSeq as number) < -1 ||
    (j.reason !== 'rotation' && j.reason !== 'recovery')
  ) {
    throw sledlogError('KEY_FILE_CORRUPT', `${path} does not record the rotation it belongs to`, { path })
  }
  return j as Journal
}

/**
 * The last seq of `predecessor` the store holds (-1 for none), read under the old key. A planned
 * rotation refuses a store that lost some of the old sled's entries or is still recovering them
 * (the operator should use `recover --new-key` and decide lastSeq), and first records the lids a
 * crash may have lost as gap sentinels of the old sled, so its lid accounting is closed.
 */
async function heldHead(
  dir: string,
  old: KeyPair | undefined,
  predecessor: SledId,
  opts: RotateOptions,
): Promise<number> {
  if (old === undefined) {
    // No old key: nothing is trusted by MAC; the new key's open (step 2) will read it all anyway.
    const log = await openWith(dir, keyPairFromSeed(randomBytes(32)), opts.adminKeys, false)
    try {
      return log.held(predecessor) - 1
    } finally {
      await log.close()
    }
  }
  const log = await openWith(dir, old, opts.adminKeys, opts.reason === 'rotation')
  try {
    refuseSecondSuccessor(dir, log, predecessor)
    if (opts.reason === 'rotation') {
      const st = log.status()
      if (existsSync(join(dir, RECOVERING_FILE)) || st.ownHeadBehind !== null) {
        throw sledlogError(
          'CONFIG_INVALID',
          `${dir} is still recovering its own entries (or lost some): a planned rotation cannot vouch for ` +
            'them; use sledlog recover --new-key [--last-seq N]',
        )
      }
      // A forked or retired sled can append nothing more, lost-lid sentinels included.
      if (st.forks.own === null && st.succession.own === null) {
        const ingest = new IngestWriter({ log })
        await ingest.start()
        await ingest.stop()
      }
    }
    return log.held(predecessor) - 1
  } finally {
    await log.close()
  }
}

/**
 * A key that already endorsed a successor must not endorse another: two endorsed successors
 * contest the key (PROTOCOL.md §6.5), and allow-lists then admit neither, the real one included.
 * It happens when an operator restores a backup of a key the node has moved on from (after a lost
 * disk, say): the recovery fetched the succession from the peers, and only the later key may write.
 */
function refuseSecondSuccessor(dir: string, log: SledLog, predecessor: SledId): void {
  const taken = log.chain(predecessor).successors.find((l) => l.predecessor === predecessor && l.endorsed)
  if (taken === undefined) return
  throw sledlogError(
    'SLED_RETIRED',
    `this key (${predecessor.slice(0, 12)}…) already endorsed a successor, ${taken.sled} (vouching for seqs ` +
      `0..${taken.lastSeq}); it must not endorse a second one, which would contest both everywhere. Start ` +
      `the node with that successor's key (the sled.key written when it moved), or, without it, remove ` +
      `${dir}/sled.key and run sledlog recover --new-key --data ${dir} --predecessor ${taken.sled}`,
    { predecessor, successor: taken.sled, lastSeq: taken.lastSeq },
  )
}

/**
 * Step 2: re-seals the store under the new key, resets what was the old sled's own state, and
 * appends the succession as the new sled's entry 0 unless an earlier run did.
 */
async function appendSuccession(
  dir: string,
  old: KeyPair | undefined,
  next: KeyPair,
  j: Journal,
  adminKeys: readonly SledId[] | undefined,
): Promise<void> {
  const store = new LevelStore({ path: dbPath(dir), macKey: deriveMacKey(next.seed), sync: true })
  await store.open()
  try {
    if (old !== undefined) await store.remac(deriveMacKey(old.seed))
    // Own-entry count and lid reservations are the old sled's; the new sled starts from nothing.
    // Lowering the count is harmless when the succession is already in: the held count wins.
    await store.putMeta({ 'own-next': '0' })
    await store.deleteMeta(['ingest-lid-reserved', 'ingest-lid-checked'])
  } finally {
    await store.close()
  }
  const log = await openWith(dir, next, adminKeys, true)
  try {
    if (log.held(next.sled) > 0) return
    const endorsement =
      old === undefined ? null : endorseSuccession(old, { successor: next.sled, lastSeq: j.lastSeq, reason: j.reason })
    await log.appendBodies([
      { kind: 'succession', predecessor: j.predecessor, lastSeq: j.lastSeq, reason: j.reason, endorsement },
    ])
  } finally {
    await log.close()
  }
}

async function openWith(
  dir: string,
  keys: KeyPair,
  adminKeys: readonly SledId[] | undefined,
  writing: boolean,
): Promise<SledLog> {
  const store = new LevelStore({ path: dbPath(dir), macKey: deriveMacKey(keys.seed), sync: true })
  const log = new SledLog({
    keys,
    store,
    quarantineOnOpen: writing,
    ...(adminKeys === undefined ? {} : { adminKeys }),
  })
  await log.open()
  return log
}
