/**
 * Key succession through the API of a real node process (docs/API.md "Key succession"): POST
 * /v1/revocations needs the admin scope, checks the signature before signing anything and
 * appends a statement once; reads, the chain route, the event stream and /metrics show the
 * retirement; a peer's succession record out of place is refused by the guard with its code.
 */
import { describe, expect, it } from 'vitest'
import { newToken, tokensPath, writeTokensFile } from '../../src/auth/tokens.js'
import { encodeRuns } from '../../src/core/update-codec.js'
import { HostileClient } from '../helpers/hostile-peer.js'
import { runOf, signedRecord, signedRun, testKeys } from '../helpers/keys.js'
import { revocationBody, successionBody } from '../helpers/succession.js'
import { tempDir } from '../helpers/tmp.js'
import { call, startNode, waitFor } from './node-process.js'
import { SseClient } from './sse-client.js'

const PEER = testKeys(621)
const SUCCESSOR = testKeys(622)

describe('key succession over HTTP (node process)', () => {
  it('revocations need admin and a valid signature, are appended once, and flag reads, streams, metrics', async () => {
    const dir = await tempDir()
    const reader = newToken('reader', ['read'])
    const root = newToken('root', ['admin'])
    await writeTokensFile(tokensPath(dir), [reader.record, root.record])
    const node = await startNode(dir)
    const asReader = { authorization: `Bearer ${reader.token}` }
    const asRoot = { authorization: `Bearer ${root.token}` }
    const peer = await HostileClient.authenticated(node.url.replace(/^http/, 'ws'), { keys: PEER })
    await peer.sendUpdate(encodeRuns([signedRun(PEER, 0, 4)]))
    await waitFor(
      async () => (await call(node.url, 'GET', '/v1/status', undefined, asReader)).body.heads[PEER.sled] === 3,
      10_000,
      'the peer’s entries',
    )

    const body = revocationBody(PEER, PEER.sled, 2) as Record<string, unknown>
    const { kind: _, ...statement } = body
    expect((await call(node.url, 'POST', '/v1/revocations', statement, asReader)).status).toBe(403)
    const forged = await call(node.url, 'POST', '/v1/revocations', { ...statement, fromSeq: 1 }, asRoot)
    expect([forged.status, forged.body.error.code]).toEqual([400, 'REVOCATION_BAD_SIGNATURE'])
    const unknown = await call(node.url, 'POST', '/v1/revocations', { ...statement, extra: 1 }, asRoot)
    expect([unknown.status, unknown.body.error.code]).toEqual([400, 'ENTRY_INVALID'])
    const made = await call(node.url, 'POST', '/v1/revocations', statement, asRoot)
    expect(made.status).toBe(201)
    expect(made.body).toMatchObject({ sled: node.sled, seq: 0, kind: 'revocation', target: PEER.sled, fromSeq: 2 })
    const again = await call(node.url, 'POST', '/v1/revocations', statement, asRoot)
    expect([again.status, again.body]).toEqual([200, made.body])

    const read = await call(node.url, 'GET', `/v1/events?sled=${PEER.sled}`, undefined, asReader)
    expect(read.body.entries.map((e: { seq: number; retired?: boolean }) => [e.seq, e.retired ?? false])).toEqual([
      [0, false],
      [1, false],
      [2, true],
      [3, true],
    ])
    expect(read.body.retired).toEqual({ [PEER.sled]: 2 })
    const chain = await call(node.url, 'GET', `/v1/sleds/${PEER.sled}/chain`, undefined, asReader)
    expect(chain.body).toMatchObject({
      retiredFrom: 2,
      revocations: [{ carrier: node.sled, seq: 0, fromSeq: 2, authority: 'self', effective: true }],
    })
    expect((await call(node.url, 'GET', '/v1/sleds/zz/chain', undefined, asReader)).status).toBe(400)
    const metrics = await fetch(`${node.url}/metrics`, { headers: asReader }).then((r) => r.text())
    expect(metrics).toMatch(/^sledlog_retired_sleds 1$/m)
    const stream = await SseClient.open(`${node.url}/v1/stream?from=start&sled=${PEER.sled}`, asReader)
    const first = await stream.next()
    expect([first.event, JSON.parse(first.data)]).toEqual(['retired', { sled: PEER.sled, seq: 2 }])
    const entries = [await stream.next(), await stream.next(), await stream.next()].map((e) => JSON.parse(e.data))
    expect(entries.map((e) => [e.seq, e.retired ?? false])).toEqual([
      [0, false],
      [1, false],
      [2, true],
    ])
    stream.close()

    // A succession the peer signs at seq 4 is out of place: refused with its code, counted.
    const misplaced = signedRecord(PEER, 4, successionBody(PEER.sled, SUCCESSOR, 3))
    await peer.sendUpdate(encodeRuns([runOf(PEER, 4, [misplaced])]))
    await waitFor(
      async () =>
        (await call(node.url, 'GET', '/v1/status', undefined, asReader)).body.rejected.byCode.SUCCESSION_INVALID === 1,
      10_000,
      'the rejection',
    )
    peer.close()
    await node.stop()
  })
})
