/**
 * Group "crypto": Ed25519 on one core, the limit every signed append and every verified peer
 * entry is bound by. node:crypto (KeyObjects reused) is sledlog's hot path; @noble/ed25519 is the
 * portable reference.
 */
import { randomBytes, sign, verify } from 'node:crypto'
import * as ed from '@noble/ed25519'
import { encodeEntryJson, type Entry } from '../../src/core/entry.js'
import {
  createSigner,
  createVerifier,
  keyPairFromSeed,
  openRecord,
  privateKeyObject,
  publicKeyObject,
  signedMessage,
  splitRecord,
} from '../../src/core/signing.js'
import { linkReceipts, signReceipt, verifyReceipt } from '../../src/sync/holds.js'
import {
  makePayload,
  measureRate,
  medianRateOf,
  medianRateOfAsync,
  type BenchContext,
  type BenchGroup,
  type Rate,
} from './harness.js'

const keys = keyPairFromSeed(randomBytes(32))

/** A typical entry, as sledlog signs it. */
function sampleEntry(seq: number): Entry {
  return {
    sled: keys.sled,
    seq,
    ts: 1_760_000_000_000 + seq,
    kind: 'event',
    type: 'bench.event',
    payload: makePayload(seq),
  }
}

const SAMPLES = 256
const entries = Array.from({ length: SAMPLES }, (_, i) => sampleEntry(i))
const jsons = entries.map(encodeEntryJson)
const messages = jsons.map((j) => signedMessage(j))

/** Records the wall-clock rate and the CPU time per operation. */
function record(ctx: BenchContext, scenario: string, metric: string, rate: Rate, note: string): void {
  ctx.record(scenario, metric, rate.perSecond, 'ops/s', note)
  ctx.record(scenario, `${metric} CPU`, rate.cpuUs, 'µs/op', 'process CPU per operation')
}

function measureMs(quick: boolean): number {
  return quick ? 150 : 2500
}

export const cryptoGroup: BenchGroup = {
  name: 'crypto',
  description: 'Ed25519 sign/verify per core: node:crypto (sledlog hot path) and @noble/ed25519 v3',
  scenarios: [
    {
      name: 'node',
      async run(ctx) {
        const ms = measureMs(ctx.quick)
        const priv = privateKeyObject(keys.seed)
        const pub = publicKeyObject(keys.publicKey)
        const sigs = messages.map((m) => sign(null, m, priv))
        // Warm up.
        measureRate(100, (k) => {
          for (let i = 0; i < k; i++) verify(null, messages[i % SAMPLES] as Buffer, pub, sigs[i % SAMPLES] as Buffer)
        })
        let j = 0
        const signRate = medianRateOf(ms, (k) => {
          for (let i = 0; i < k; i++) sign(null, messages[j++ % SAMPLES] as Buffer, priv)
        })
        record(ctx, 'crypto/node', 'sign', signRate, 'crypto.sign, KeyObject reused, ~400 B message')
        const verifyRate = medianRateOf(ms, (k) => {
          for (let i = 0; i < k; i++) {
            const n = j++ % SAMPLES
            if (!verify(null, messages[n] as Buffer, pub, sigs[n] as Buffer)) throw new Error('verify failed')
          }
        })
        record(ctx, 'crypto/node', 'verify', verifyRate, 'crypto.verify, KeyObject reused')

        const signer = createSigner(keys)
        const signEntryRate = medianRateOf(ms, (k) => {
          for (let i = 0; i < k; i++) signer.signEntry(entries[j++ % SAMPLES] as Entry)
        })
        record(ctx, 'crypto/node', 'signEntry', signEntryRate, 'createSigner: entry JSON encode + sign + record string')
        const records = entries.map((e) => signer.signEntry(e))
        const parts = records.map((r) => splitRecord(r) as { sig: Uint8Array; json: string })
        const verifier = createVerifier()
        const verifyJsonRate = medianRateOf(ms, (k) => {
          for (let i = 0; i < k; i++) {
            const p = parts[j++ % SAMPLES] as { sig: Uint8Array; json: string }
            if (!verifier.verifyJson(keys.sled, p.json, p.sig)) throw new Error('verify failed')
          }
        })
        record(ctx, 'crypto/node', 'verifyJson', verifyJsonRate, 'createVerifier (cached KeyObject)')
        const openRate = medianRateOf(ms, (k) => {
          for (let i = 0; i < k; i++) openRecord(records[j++ % SAMPLES] as string, verifier)
        })
        record(ctx, 'crypto/node', 'openRecord', openRate, 'split + parse/check entry JSON + verify')
      },
    },
    {
      name: 'receipts',
      async run(ctx) {
        // Holds receipts (PROTOCOL.md §8.6) on one link: one-off calls redo the peer key's
        // weak-key check and KeyObject (and the signer's private KeyObject) per receipt; a
        // session's linkReceipts does them once per link.
        const ms = measureMs(ctx.quick)
        const peer = keyPairFromSeed(randomBytes(32))
        const link = { serverNonce: randomBytes(32), clientNonce: randomBytes(32) }
        const sigs = Array.from({ length: SAMPLES }, (_, i) => signReceipt(peer, keys.publicKey, link, i))
        const session = linkReceipts(keys, peer.publicKey, link)
        let j = 0
        const check = (ok: boolean): void => {
          if (!ok) throw new Error('receipt does not verify')
        }
        const oneOff = medianRateOf(ms, (k) => {
          for (let i = 0; i < k; i++, j++) {
            check(verifyReceipt(peer.publicKey, keys.publicKey, link, j % SAMPLES, sigs[j % SAMPLES] as Uint8Array))
          }
        })
        record(ctx, 'crypto/receipts', 'verify one-off', oneOff, 'verifyReceipt: weak-key check + KeyObject each')
        const cached = medianRateOf(ms, (k) => {
          for (let i = 0; i < k; i++, j++) check(session.verify(j % SAMPLES, sigs[j % SAMPLES] as Uint8Array))
        })
        record(ctx, 'crypto/receipts', 'verify per link', cached, 'linkReceipts.verify: key checked once per link')
        const signOneOff = medianRateOf(ms, (k) => {
          for (let i = 0; i < k; i++) signReceipt(keys, peer.publicKey, link, j++)
        })
        record(ctx, 'crypto/receipts', 'sign one-off', signOneOff, 'signReceipt: private KeyObject each')
        const signCached = medianRateOf(ms, (k) => {
          for (let i = 0; i < k; i++) session.sign(j++)
        })
        record(ctx, 'crypto/receipts', 'sign per link', signCached, 'linkReceipts.sign: KeyObject once per link')
      },
    },
    {
      name: 'noble',
      async run(ctx) {
        const ms = measureMs(ctx.quick)
        const seed = keys.seed
        const pub = await ed.getPublicKeyAsync(seed)
        const msgs = messages.map((m) => new Uint8Array(m))
        // Cross-check: RFC 8032 signatures are deterministic, so both libraries must agree.
        const nodeSig = createSigner(keys)
          .signEntry(entries[0] as Entry)
          .slice(0, 86)
        const nobleSig = Buffer.from(await ed.signAsync(msgs[0] as Uint8Array, seed)).toString('base64url')
        if (nodeSig !== nobleSig) throw new Error('node:crypto and @noble/ed25519 signatures differ')
        const sigs: Uint8Array[] = []
        for (const m of msgs) sigs.push(await ed.signAsync(m, seed))
        let j = 0
        const signRate = await medianRateOfAsync(ms, async (k) => {
          for (let i = 0; i < k; i++) await ed.signAsync(msgs[j++ % SAMPLES] as Uint8Array, seed)
        })
        record(ctx, 'crypto/noble', 'sign', signRate, 'ed.signAsync (sequential)')
        const verifyRate = await medianRateOfAsync(ms, async (k) => {
          for (let i = 0; i < k; i++) {
            const n = j++ % SAMPLES
            if (!(await ed.verifyAsync(sigs[n] as Uint8Array, msgs[n] as Uint8Array, pub)))
              throw new Error('verify failed')
          }
        })
        record(ctx, 'crypto/noble', 'verify', verifyRate, 'ed.verifyAsync (sequential)')
      },
    },
  ],
  ratios: [
    {
      name: 'receipt verify per link / one-off',
      numerator: { scenario: 'crypto/receipts', metric: 'verify per link' },
      denominator: { scenario: 'crypto/receipts', metric: 'verify one-off' },
      note: 'what a session saves per holds receipt by checking the peer key once',
    },
    {
      name: 'node:crypto sign / noble sign',
      numerator: { scenario: 'crypto/node', metric: 'sign' },
      denominator: { scenario: 'crypto/noble', metric: 'sign' },
    },
    {
      name: 'node:crypto verify / noble verify',
      numerator: { scenario: 'crypto/node', metric: 'verify' },
      denominator: { scenario: 'crypto/noble', metric: 'verify' },
    },
    {
      name: 'signEntry / raw sign',
      numerator: { scenario: 'crypto/node', metric: 'signEntry' },
      denominator: { scenario: 'crypto/node', metric: 'sign' },
      note: 'cost of entry JSON encoding and record formatting on top of Ed25519',
    },
  ],
}
