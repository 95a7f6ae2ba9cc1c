/**
 * What the harness's hostile peer sends: forged, tampered, rebound and deleting updates, its own
 * (possibly equivocating) entries, and garbage frames. Pure builders: they take keys and honest
 * records and return bytes, so the attacks can be unit-tested without a node.
 *
 * Every entry the attacker makes carries a marker in its type and payload, so the checker can
 * search every node's log for anything that should never have been accepted.
 */
import { sign } from 'node:crypto'
import * as Y from 'yjs'
import { encodeEntryJson, type Entry } from '../core/entry.js'
import { clientIdOf, rootNameOf, type SledId } from '../core/ids.js'
import type { StoredEntry } from '../core/query.js'
import { formatRecord, keyPairFromSeed, privateKeyObject, signedMessage, type KeyPair } from '../core/signing.js'
import { decodeUpdate, encodeRuns } from '../core/update-codec.js'
import { encodeHello, encodeUpdate, MSG_SYNC, SYNC_UPDATE } from '../sync/messages.js'
import { intIn, keySeedOf, type Random } from './random.js'

/**
 * Entry types the attacker uses. `hostile.own` entries are the attacker's own, validly signed
 * and legitimately accepted (only in the attacker's sled); every other `hostile.*` type marks
 * data no node may ever accept.
 */
export const HOSTILE_TYPES = {
  own: 'hostile.own',
  forged: 'hostile.forged',
  tampered: 'hostile.tampered',
  rebound: 'hostile.rebound',
  inserted: 'hostile.inserted',
} as const

/** The payload marker of data that must never be accepted (searched for in every log). */
export const FORGED_MARKER = 'HOSTILE-FORGED-7f3a'

/** The attacker's keys: its sled, and a second sled used only for rebinding attacks. */
export interface AttackerKeys {
  readonly main: KeyPair
  /** Never holds an accepted entry: its records are only ever sent under other sleds' roots. */
  readonly rebind: KeyPair
}

/** Deterministic attacker keys of a run seed. */
export function attackerKeys(seed: number): AttackerKeys {
  const key = (name: string): KeyPair => keyPairFromSeed(keySeedOf(seed, name))
  return { main: key('attacker'), rebind: key('rebind') }
}

/** Signs an entry's canonical JSON with `keys`, whatever sled the entry names. */
export function signAs(keys: KeyPair, entry: Entry): string {
  const json = encodeEntryJson(entry)
  return formatRecord(sign(null, signedMessage(json), privateKeyObject(keys.seed)), json)
}

/** The record string an API entry was read from (signature, dot, canonical JSON). */
export function recordOf(e: StoredEntry): string {
  const { sig, ...entry } = e
  return `${sig}.${encodeEntryJson(entry as Entry)}`
}

/** A one-record update placing `record` at `(sled's client, seq)` under `rootSled`'s array. */
export function placeRecord(
  clientSled: SledId,
  seq: number,
  record: string,
  rootSled: SledId = clientSled,
): Uint8Array {
  return encodeRuns([{ client: clientIdOf(clientSled), clock: seq, rootName: rootNameOf(rootSled), records: [record] }])
}

/** An update of consecutive records of `sled` from `seq` (the attacker catching a node up). */
export function placeRun(sled: SledId, seq: number, records: readonly string[]): Uint8Array {
  return encodeRuns([{ client: clientIdOf(sled), clock: seq, rootName: rootNameOf(sled), records }])
}

/** The attacker's own entry `seq`; `variant` > 0 makes a different (equivocating) version. */
export function ownRecord(keys: KeyPair, seq: number, n: number, variant = 0, ts = Date.now()): string {
  return signAs(keys, { sled: keys.sled, seq, ts, kind: 'event', type: HOSTILE_TYPES.own, payload: { n, variant } })
}

/**
 * A forged entry of an honest sled: canonical, naming the sled and seq, signed by the attacker
 * (so the signature does not verify under the sled's key).
 */
export function forgedRecord(attacker: KeyPair, sled: SledId, seq: number, n: number): string {
  return signAs(attacker, {
    sled,
    seq,
    ts: Date.now(),
    kind: 'event',
    type: HOSTILE_TYPES.forged,
    payload: { marker: FORGED_MARKER, n },
  })
}

/** An honest record with its content changed but its signature kept. */
export function tamperedRecord(honest: StoredEntry, n: number): string {
  const { sig, ...entry } = honest
  const changed = {
    ...entry,
    kind: 'event',
    type: HOSTILE_TYPES.tampered,
    payload: { marker: FORGED_MARKER, n },
  } as Entry
  return `${sig}.${encodeEntryJson(changed)}`
}

/**
 * The attacker's validly signed entry (naming its own sled and the seq it is placed at),
 * carrying the forged marker: placed in another sled's client it must be refused (binding).
 */
export function reboundRecord(attacker: KeyPair, seq: number, n: number): string {
  return signAs(attacker, {
    sled: attacker.sled,
    seq,
    ts: Date.now(),
    kind: 'event',
    type: HOSTILE_TYPES.rebound,
    payload: { marker: FORGED_MARKER, n },
  })
}

/**
 * Real Yjs deletions of an honest sled's entries: a doc holding the sled's first records
 * (`records`, seqs 0…), edited by Yjs itself; the update Yjs emits is returned. With `insert`,
 * the same transaction also inserts a forged record where the deleted ones were (a rewrite of
 * history, which Yjs encodes as an item with a right origin), made by the attacker's client.
 */
export function deletionUpdate(
  sled: SledId,
  records: readonly string[],
  at: number,
  count: number,
  insert?: { readonly attacker: KeyPair; readonly record: string },
): Uint8Array {
  if (records.length === 0 || at < 0 || count < 1 || at + count > records.length)
    throw new RangeError('nothing to delete')
  const doc = new Y.Doc({ gc: false })
  Y.applyUpdate(doc, encodeRuns([{ client: clientIdOf(sled), clock: 0, rootName: rootNameOf(sled), records }]))
  if (insert !== undefined) doc.clientID = clientIdOf(insert.attacker.sled)
  const updates: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => updates.push(u))
  doc.transact(() => {
    const arr = doc.getArray<string>(rootNameOf(sled))
    arr.delete(at, count)
    if (insert !== undefined) arr.insert(at, [insert.record])
  })
  doc.destroy()
  const [update] = updates
  if (update === undefined || updates.length !== 1) throw new Error('Yjs emitted no single update for the edit')
  return update
}

/** Kinds of garbage frames. */
export type GarbageKind = 'random' | 'bad-update' | 'text' | 'truncated' | 'late-hello'

/** A garbage frame of `kind`; `text` is returned as a string (sent as a text frame). */
export function garbageFrame(rand: Random, kind: GarbageKind, sample?: Uint8Array): Uint8Array | string {
  const randomBytes = (n: number): Uint8Array => Uint8Array.from({ length: n }, () => intIn(rand, 0, 255))
  switch (kind) {
    case 'random': {
      // A leading byte outside every known message type, so the frame is never valid by chance.
      const body = randomBytes(intIn(rand, 1, 256))
      body[0] = 0x7f
      return body
    }
    case 'bad-update': {
      // A well-framed sync update whose payload is not a valid update (random bytes that
      // happen to parse, like `00 00`, get a lying length in front).
      let payload = randomBytes(intIn(rand, 1, 128))
      try {
        decodeUpdate(payload, 65536)
        payload = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, ...payload])
      } catch {
        // invalid, as wanted
      }
      return encodeUpdate(payload)
    }
    case 'text':
      return `garbage ${intIn(rand, 0, 1e9)}`
    case 'truncated': {
      const whole = sample ?? encodeUpdate(new Uint8Array([1, 1, 5, 0, 8, 1, 3, 0x61, 0x62, 0x63]))
      return whole.subarray(0, Math.max(1, whole.length - intIn(rand, 1, Math.min(8, whole.length))))
    }
    case 'late-hello':
      // A handshake message after the handshake.
      return encodeHello(randomBytes(32), randomBytes(32))
  }
}

/** True when `frame` is a sync update message (used to pick samples for truncation). */
export function isUpdateFrame(frame: Uint8Array): boolean {
  return frame[0] === MSG_SYNC && frame[1] === SYNC_UPDATE
}
