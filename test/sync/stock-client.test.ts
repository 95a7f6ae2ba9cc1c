/**
 * What docs/PROTOCOL.md §8 says about stock y-websocket clients, checked against a running node:
 * a plain `WebsocketProvider` at server URL `<base>/v1`, room `sync`, never authenticates and is
 * closed with 4508; the same provider with a handler for message type 100 (the signed handshake)
 * that sends its step 1 again once authenticated, and a handler that ignores type 101
 * (digests), syncs the node's log read-only.
 */
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { WebSocket } from 'ws'
import type * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { rootNameOf } from '../../src/core/ids.js'
import type { KeyPair } from '../../src/core/signing.js'
import { newNonce, signTranscript, verifyTranscript, type Transcript } from '../../src/sync/handshake.js'
import { decodeMessage, encodeProve, encodeStep1, MSG_SLED_AUTH, MSG_SLED_DIGEST } from '../../src/sync/messages.js'
import { testKeys } from '../helpers/keys.js'
import { linksOf, syncNode, until } from '../helpers/sync-node.js'

type Handler = (enc: encoding.Encoder, dec: decoding.Decoder, provider: WebsocketProvider) => void

/** A stock provider for `<base>/v1`, room `sync`, in Node (ws, no BroadcastChannel), destroyed after the test. */
function stockProvider(base: string, doc: Y.Doc, handlers: Record<number, Handler> = {}): WebsocketProvider {
  const provider = new WebsocketProvider(base + '/v1', 'sync', doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    connect: false,
  })
  for (const [type, h] of Object.entries(handlers)) {
    ;(provider.messageHandlers as unknown as Handler[])[Number(type)] = h
  }
  onTestFinished(() => {
    provider.awareness.destroy()
    provider.destroy()
  })
  provider.connect()
  return provider
}

/**
 * The client half of §8.2 as a y-websocket message handler: answer hello with prove, check ok,
 * then send step 1 again (the one the provider sent on open arrived before the handshake and
 * was ignored). Whatever the handler writes to `enc` the provider sends as one message.
 */
function handshakeHandler(keys: KeyPair, doc: Y.Doc): Handler {
  let t: Transcript | null = null
  return (enc, dec) => {
    const msg = decodeMessage(dec.arr)
    if (msg.t === 'hello') {
      t = { serverKey: msg.publicKey, serverNonce: msg.nonce, clientKey: keys.publicKey, clientNonce: newNonce() }
      const sig = signTranscript(keys, 'client', t)
      encoding.writeUint8Array(enc, encodeProve(keys.publicKey, t.clientNonce, sig, new Uint8Array(0)))
    } else if (msg.t === 'ok' && t !== null && verifyTranscript('server', t, msg.signature)) {
      encoding.writeUint8Array(enc, encodeStep1(Y.encodeStateVector(doc)))
    }
  }
}

describe('stock y-websocket clients (PROTOCOL.md §8)', () => {
  it('a plain WebsocketProvider never syncs: the handshake times out and the node closes with 4508', async () => {
    const node = await syncNode({ limits: { handshakeMs: 300 } })
    await node.log.append({ type: 't', payload: 1 })
    const doc = new Y.Doc()
    const closes: number[] = []
    // y-websocket does not know type 100: it logs and drops the node's hello.
    const errors = vi.spyOn(console, 'error').mockImplementation(() => undefined)
    onTestFinished(() => errors.mockRestore())
    const provider = stockProvider(node.url, doc)
    provider.on('connection-close', (ev) => {
      if (ev !== null) closes.push(ev.code)
    })
    // 4508 is not a refusal (44xx): the provider reconnects, and is closed again.
    await until(() => closes.length >= 2, 'the node to close the stock provider twice')
    expect(closes.slice(0, 2)).toEqual([4508, 4508])
    expect(errors).toHaveBeenCalledWith('Unable to compute message')
    expect(provider.synced).toBe(false)
    expect(doc.getArray(rootNameOf(node.log.sled)).length).toBe(0)
  })

  it('with the handshake added (type 100) and digests ignored (type 101) it syncs the log read-only', async () => {
    const node = await syncNode()
    for (let i = 0; i < 5; i++) await node.log.append({ type: 't', payload: i })
    const doc = new Y.Doc()
    const keys = testKeys(41)
    const provider = stockProvider(node.url, doc, {
      [MSG_SLED_AUTH]: handshakeHandler(keys, doc),
      [MSG_SLED_DIGEST]: () => undefined,
    })
    await until(() => provider.synced, 'the provider to sync')
    const got = doc.getArray<string>(rootNameOf(node.log.sled)).toArray()
    expect(got).toEqual(node.log.doc.getArray<string>(rootNameOf(node.log.sled)).toArray())
    expect(got).toHaveLength(5)
    // Live appends arrive too, and the node saw nothing to object to.
    await node.log.append({ type: 't', payload: 5 })
    await until(() => doc.getArray(rootNameOf(node.log.sled)).length === 6, 'the live append')
    const [link] = linksOf(node, keys.sled)
    expect(link?.violations).toBe(0)
    expect(link?.rejected).toEqual({})
  })
})
