/**
 * Deterministic keys, signed records and runs for tests.
 *
 * `testKeys(n)` always returns the same key pair for the same number, so tests (and their
 * failure messages) are reproducible. Records are signed with the real node:crypto signer.
 */
import { createHash, sign } from 'node:crypto'
import { encodeEntryJson, type Entry, type EntryBody } from '../../src/core/entry.js'
import { clientIdOf, rootNameOf, type ClientId, type SledId } from '../../src/core/ids.js'
import {
  createSigner,
  formatRecord,
  keyPairFromSeed,
  privateKeyObject,
  signedMessage,
  type EntrySigner,
  type KeyPair,
} from '../../src/core/signing.js'
import type { Run } from '../../src/core/update-codec.js'

/** The 32-byte Ed25519 seed of test key number `n`: sha256("sledlog-test-key/" + n). */
export function seedOf(n: number): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`sledlog-test-key/${n}`).digest())
}

const keyCache = new Map<number, KeyPair>()
const signerCache = new WeakMap<KeyPair, EntrySigner>()

/** Deterministic key pair number `n` (cached). */
export function testKeys(n: number): KeyPair {
  let k = keyCache.get(n)
  if (k === undefined) {
    k = keyPairFromSeed(seedOf(n))
    keyCache.set(n, k)
  }
  return k
}

/** The Yjs client id of a key pair's sled. */
export function clientOf(keys: KeyPair): ClientId {
  return clientIdOf(keys.sled)
}

/** A cached node:crypto signer for `keys`. */
export function signerOf(keys: KeyPair): EntrySigner {
  let s = signerCache.get(keys)
  if (s === undefined) {
    s = createSigner(keys)
    signerCache.set(keys, s)
  }
  return s
}

/** Default timestamp of test entry `seq`: fixed, so records are byte-for-byte reproducible. */
export const TEST_TS = 1_700_000_000_000

/** The default body of test entry `seq`. */
export function defaultBody(seq: number): EntryBody {
  return { kind: 'event', type: 'test', payload: { n: seq, text: `entry ${seq}` } }
}

/** The entry `sled`/`seq` with `body` (default: {@link defaultBody}) and a fixed ts. */
export function entryOf(sled: SledId, seq: number, body: EntryBody = defaultBody(seq), ts = TEST_TS + seq): Entry {
  return { sled, seq, ts, ...body } as Entry
}

/** Signs an entry (which must name `keys.sled`) into a record string. */
export function signEntry(keys: KeyPair, entry: Entry): string {
  return signerOf(keys).signEntry(entry)
}

/** The signed record of `keys`' entry `seq` (default body unless `body` is given). */
export function signedRecord(keys: KeyPair, seq: number, body?: EntryBody): string {
  return signEntry(keys, entryOf(keys.sled, seq, body))
}

/**
 * Signs arbitrary text as if it were an entry JSON (valid signature, possibly invalid JSON):
 * lets tests check that parsing, not the signature, rejects non-canonical records.
 */
export function signJsonText(keys: KeyPair, json: string): string {
  return formatRecord(sign(null, signedMessage(json), privateKeyObject(keys.seed)), json)
}

/** `count` signed records of `keys` for seqs `from..from+count-1`; `body(seq)` picks each body. */
export function signedRecords(
  keys: KeyPair,
  from: number,
  count: number,
  body: (seq: number) => EntryBody = defaultBody,
): string[] {
  return Array.from({ length: count }, (_, i) => signEntry(keys, entryOf(keys.sled, from + i, body(from + i))))
}

/** A run of `keys`' client at `clock` holding `records`. */
export function runOf(keys: KeyPair, clock: number, records: readonly string[]): Run {
  return { client: clientOf(keys), clock, rootName: rootNameOf(keys.sled), records }
}

/** A run of `count` freshly signed records of `keys` starting at seq `from`. */
export function signedRun(keys: KeyPair, from: number, count: number, body?: (seq: number) => EntryBody): Run {
  return runOf(keys, from, signedRecords(keys, from, count, body))
}

/**
 * A record that looks right (86-char signature, canonical entry of `sled`/`seq`) but whose
 * signature is made by `signWith` (default: a key that is not the sled's), i.e. a forgery.
 */
export function forgedRecord(sled: SledId, seq: number, body?: EntryBody, signWith: KeyPair = testKeys(-1)): string {
  return signJsonText(signWith, encodeEntryJson(entryOf(sled, seq, body)))
}

/** `record` with one signature character changed (a signature that does not verify). */
export function tamperSignature(record: string): string {
  const c = record[10] === 'A' ? 'B' : 'A'
  return record.slice(0, 10) + c + record.slice(11)
}
