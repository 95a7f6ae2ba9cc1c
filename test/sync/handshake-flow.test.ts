/**
 * The handshake as pure steps (src/sync/handshake-flow.ts): two sides run to ready by passing
 * messages, every refusal has its close code and count, early y-websocket messages are
 * ignored, and a message out of place is a violation that leaves the state as it was.
 */
import { describe, expect, it } from 'vitest'
import type { KeyPair } from '../../src/core/signing.js'
import { CLOSE } from '../../src/sync/close-codes.js'
import {
  buildOk,
  buildProve,
  clientStart,
  handshakeStep,
  serverStart,
  type HandshakeIdentity,
  type HandshakeState,
  type HandshakeStep,
} from '../../src/sync/handshake-flow.js'
import { newNonce } from '../../src/sync/handshake.js'
import {
  decodeMessage,
  encodeAwarenessKeepAlive,
  encodeProve,
  encodeStep1,
  type WireMessage,
} from '../../src/sync/messages.js'
import { testKeys } from '../helpers/keys.js'
import { successionRecord } from '../helpers/succession.js'

const SERVER = testKeys(211)
const CLIENT = testKeys(212)
const OTHER = testKeys(213)

const id = (keys: KeyPair, auth: HandshakeIdentity['auth'] = {}): HandshakeIdentity => ({ keys, auth })
const one = (step: { send: readonly Uint8Array[] }): WireMessage => decodeMessage(step.send[0] as Uint8Array)
type Hello = Extract<WireMessage, { t: 'hello' }>

/** Runs both sides to the end; returns every step. */
function run(server: HandshakeIdentity, client: HandshakeIdentity) {
  const hello = serverStart(server.keys)
  const prove = handshakeStep(clientStart(), one(hello), client)
  const s = handshakeStep(hello.state, one(prove), server)
  const c = s.send.length > 0 && s.outcome.kind === 'ready' ? handshakeStep(prove.state, one(s), client) : null
  return { hello, prove, s, c }
}

describe('handshake steps', () => {
  it('an honest client and server both end ready, each knowing the other', () => {
    const { prove, s, c } = run(id(SERVER), id(CLIENT))
    expect(one(prove).t).toBe('prove')
    expect(s.outcome).toMatchObject({ kind: 'ready', peer: CLIENT.sled })
    expect(one(s).t).toBe('ok')
    expect(c?.outcome).toMatchObject({ kind: 'ready', peer: SERVER.sled })
    expect(c?.send).toEqual([])
    expect(c?.state.step).toBe('done')
  })

  it('with a shared token on both sides it succeeds; a wrong token fails on either side with 4401', () => {
    expect(run(id(SERVER, { token: 't' }), id(CLIENT, { token: 't' })).c?.outcome.kind).toBe('ready')
    const wrong = run(id(SERVER, { token: 't' }), id(CLIENT, { token: 'u' }))
    expect(wrong.s.outcome).toEqual({
      kind: 'refused',
      close: CLOSE.AUTH_FAILED,
      reason: 'wrong shared token',
      error: 'PEER_AUTH_FAILED',
    })
    expect(one(wrong.s)).toEqual({ t: 'denied', reason: 'wrong shared token' }) // the server says why
    // A server that does not know the token cannot prove it: the client refuses.
    const hello = serverStart(SERVER)
    const prove = handshakeStep(clientStart(), one(hello), id(CLIENT, { token: 't' }))
    const ok = handshakeStep(hello.state, one(prove), id(SERVER)) // no token: accepts any proof
    const c = handshakeStep(prove.state, one(ok), id(CLIENT, { token: 't' }))
    expect(c.outcome).toMatchObject({ kind: 'refused', close: CLOSE.AUTH_FAILED, error: 'PEER_AUTH_FAILED' })
    expect(c.send).toEqual([]) // a client just closes
  })

  it('the allow-list refuses with 4403 and a denied message naming the sled; itself with 4409', () => {
    const off = run(id(SERVER, { allow: new Set([OTHER.sled]) }), id(CLIENT))
    expect(off.s.outcome).toMatchObject({ kind: 'refused', close: CLOSE.NOT_ALLOWED, peer: CLIENT.sled })
    expect(one(off.s)).toEqual({ t: 'denied', reason: `sled ${CLIENT.sled} is not on the allow-list` })
    const self = run(id(SERVER), id(SERVER))
    expect(self.s.outcome).toMatchObject({ kind: 'refused', close: CLOSE.SELF, peer: SERVER.sled })
    // The client's allow-list applies to the server it dialed.
    const c = run(id(SERVER), id(CLIENT, { allow: new Set([OTHER.sled]) })).c
    expect(c?.outcome).toMatchObject({ kind: 'refused', close: CLOSE.NOT_ALLOWED, error: 'PEER_NOT_ALLOWED' })
  })

  it('another handshake version is refused by the client', () => {
    const hello = { ...(one(serverStart(SERVER)) as Hello), version: 2 }
    expect(handshakeStep(clientStart(), hello, id(CLIENT)).outcome).toMatchObject({
      kind: 'refused',
      close: CLOSE.AUTH_FAILED,
      reason: 'peer speaks handshake v2, this node v1',
    })
  })

  it('step 1 and awareness before the end are ignored; anything else is a violation that keeps the state', () => {
    const hello = serverStart(SERVER)
    for (const m of [encodeStep1(new Uint8Array([0])), encodeAwarenessKeepAlive()]) {
      const step = handshakeStep(hello.state, decodeMessage(m), id(SERVER))
      expect(step).toEqual({ state: hello.state, send: [], outcome: { kind: 'ignored' } })
    }
    const early: HandshakeStep = handshakeStep(hello.state, { t: 'update', update: new Uint8Array(2) }, id(SERVER))
    expect(early.outcome).toEqual({ kind: 'violation', message: 'unexpected update during the handshake' })
    expect(early.state).toBe(hello.state)
    // Still able to finish afterwards.
    const prove = handshakeStep(clientStart(), one(hello), id(CLIENT))
    expect(handshakeStep(early.state, one(prove), id(SERVER)).outcome.kind).toBe('ready')
    // A client in 'await-ok' that gets a second hello: a violation, not a second proof.
    const again = handshakeStep(prove.state, one(hello), id(CLIENT))
    expect(again.outcome.kind).toBe('violation')
  })

  it('a denied message from the peer ends the handshake with 4401, whatever the state', () => {
    const states: HandshakeState[] = [clientStart(), serverStart(SERVER).state]
    for (const st of states) {
      expect(handshakeStep(st, { t: 'denied', reason: 'no' }, id(CLIENT)).outcome).toMatchObject({
        kind: 'refused',
        close: CLOSE.AUTH_FAILED,
        reason: 'peer denied access: no',
      })
    }
  })

  it("a hostile client's inputs change the bytes, never the code: each tweak fails verification", () => {
    const hello = serverStart(SERVER)
    const h = one(hello) as Hello
    const tweaks = [
      { signature: new Uint8Array(64) },
      { corruptSignature: true },
      { role: 'server' as const },
      { signedServerNonce: newNonce() },
      { signedClientNonce: newNonce() },
      { presentKey: OTHER.publicKey },
    ]
    for (const t of tweaks) {
      const { bytes } = buildProve(h, { keys: CLIENT, ...t })
      const out = handshakeStep(hello.state, decodeMessage(bytes), id(SERVER)).outcome
      expect(out, JSON.stringify(Object.keys(t))).toMatchObject({ kind: 'refused', close: CLOSE.AUTH_FAILED })
    }
    // And the server side's inputs: an ok signed for the wrong role or corrupted is refused.
    const prove = handshakeStep(clientStart(), h, id(CLIENT))
    const t = prove.state.step === 'await-ok' ? prove.state.transcript : null
    if (t === null) throw new Error('client not waiting for ok')
    for (const bad of [{ role: 'client' as const }, { corruptSignature: true }, { keys: OTHER }]) {
      const ok = buildOk(t, { keys: SERVER, ...bad })
      expect(handshakeStep(prove.state, decodeMessage(ok), id(CLIENT)).outcome.kind).toBe('refused')
    }
  })
})

describe('handshake steps: signed successors (PROTOCOL.md §8.2)', () => {
  const OLD = testKeys(214)
  const NEW = testKeys(215)
  const chainOf = (records: readonly string[]) => ({ present: () => records })
  const succession = successionRecord(NEW, OLD, 9)

  it('a server whose allow-list has the old sled admits its successor by the chain in prove', () => {
    const r = run(id(SERVER, { allow: new Set([OLD.sled]) }), id(NEW, { succession: chainOf([succession]) }))
    expect(one(r.prove)).toMatchObject({ t: 'prove', chain: [succession] })
    expect(r.s.outcome).toMatchObject({ kind: 'ready', peer: NEW.sled, via: OLD.sled })
    expect(r.c?.outcome).toMatchObject({ kind: 'ready', peer: SERVER.sled })
  })

  it('a client whose allow-list has the old sled admits a successor server by the chain in ok', () => {
    const r = run(id(NEW, { succession: chainOf([succession]) }), id(CLIENT, { allow: new Set([OLD.sled]) }))
    expect(one(r.s)).toMatchObject({ t: 'ok', chain: [succession] })
    expect(r.c?.outcome).toMatchObject({ kind: 'ready', peer: NEW.sled, via: OLD.sled })
  })

  it('sends no chain field without a chain: prove and ok are byte for byte the earlier ones', () => {
    const hello = serverStart(SERVER)
    const prove = handshakeStep(clientStart(), one(hello), id(CLIENT, { succession: chainOf([]) }))
    expect(one(prove)).toMatchObject({ chain: [] })
    const p = one(prove) as Extract<WireMessage, { t: 'prove' }>
    expect(prove.send[0]).toEqual(encodeProve(p.publicKey, p.nonce, p.signature, p.tokenProof))
  })

  it('admits a successor that presents no chain (its store lost) by the records this node holds of it', () => {
    const allow = new Set([OLD.sled])
    const held = (sled: string) => (sled === NEW.sled ? [succession] : [])
    const r = run(id(SERVER, { allow, succession: { present: () => [], known: held } }), id(NEW))
    expect(r.s.outcome).toMatchObject({ kind: 'ready', peer: NEW.sled, via: OLD.sled })
    const c = run(id(NEW), id(CLIENT, { allow, succession: { present: () => [], known: held } }))
    expect(c.c?.outcome).toMatchObject({ kind: 'ready', peer: NEW.sled, via: OLD.sled })
    // What it holds is checked like a presented chain: a veto still refuses.
    const vetoed = run(
      id(SERVER, { allow, succession: { present: () => [], known: held, refuse: () => 'contested' } }),
      id(NEW),
    )
    expect(vetoed.s.outcome).toMatchObject({ kind: 'refused', reason: expect.stringContaining('(contested)') })
    // A stranger of whom it holds nothing is refused as before.
    const stranger = run(id(SERVER, { allow, succession: { present: () => [], known: held } }), id(OTHER))
    expect(stranger.s.outcome).toMatchObject({ kind: 'refused', close: CLOSE.NOT_ALLOWED })
  })

  it('refuses an unendorsed, foreign or contested chain with 4403, saying why', () => {
    const allow = new Set([OLD.sled])
    const unendorsed = run(
      id(SERVER, { allow }),
      id(NEW, { succession: chainOf([successionRecord(NEW, OLD.sled, 9)]) }),
    )
    expect(unendorsed.s.outcome).toMatchObject({ kind: 'refused', close: CLOSE.NOT_ALLOWED, error: 'PEER_NOT_ALLOWED' })
    expect((one(unendorsed.s) as { reason: string }).reason).toMatch(/not on the allow-list \(.*not endorsed/)
    // Another sled's succession presented as the client's own.
    const foreign = run(id(SERVER, { allow }), id(CLIENT, { succession: chainOf([succession]) }))
    expect(foreign.s.outcome).toMatchObject({ kind: 'refused', close: CLOSE.NOT_ALLOWED })
    const vetoed = run(
      id(SERVER, { allow, succession: { present: () => [], refuse: () => 'contested' } }),
      id(NEW, { succession: chainOf([succession]) }),
    )
    expect(vetoed.s.outcome).toMatchObject({ kind: 'refused', reason: expect.stringContaining('(contested)') })
  })
})
