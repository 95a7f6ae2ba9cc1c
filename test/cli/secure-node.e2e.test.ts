/**
 * A node set up the way docs/SECURITY.md says, end to end with real processes: HTTPS with a
 * certificate from a private CA, API tokens made with `sledlog token create`, CLI clients that
 * trust the CA and send a token (and the one-line refusals when they do not), and peers that
 * dial it over wss:// trusting the CA file or a pinned certificate, while a wrong pin is refused
 * before any sledlog byte and says so in the dialer's status.
 */
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { startNode, waitFor } from '../http/node-process.js'
import { tlsFile } from '../helpers/tls.js'
import { tempDir } from '../helpers/tmp.js'
import { runCli } from './cli-process.js'

const pinOf = (pem: string): string => new X509Certificate(readFileSync(pem)).fingerprint256
const TLS = ['--tls-cert', tlsFile('node.pem'), '--tls-key', tlsFile('node.key')]

/** `sledlog token create` into `dir`'s tokens file; the token is written to a file, its path returned. */
async function token(dir: string, name: string, scope: string): Promise<string> {
  const made = await runCli(['token', 'create', '--data', dir, '--name', name, '--scope', scope])
  expect(made.code, made.stderr).toBe(0)
  const file = join(dir, `${name}.token`)
  await writeFile(file, made.stdout.trim(), { mode: 0o600 })
  return file
}

describe('a node with TLS and API tokens (processes)', () => {
  it('CLI clients need the CA and a token with the scope; peers link over wss by CA file or pin', async () => {
    const dir = await tempDir()
    const admin = await token(dir, 'ops', 'admin')
    const reader = await token(dir, 'dash', 'read')
    const a = await startNode(dir, TLS)
    expect(a.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    const ca = ['--ca', tlsFile('ca.pem')]

    const append = (...extra: string[]) =>
      runCli(['append', '--url', a.url, ...ca, ...extra, '--type', 'greeting', '--payload', '{"n":1}'])
    // No token, a token without the scope, no CA: one clear line each, nothing appended.
    const none = await append()
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/requires an API token/)
    const weak = await append('--api-token-file', reader)
    expect(weak.code).toBe(1)
    expect(weak.stderr).toMatch(/scope/)
    const untrusted = await runCli(['status', '--url', a.url, '--api-token-file', reader])
    expect(untrusted.code).toBe(1)
    expect(untrusted.stderr.trim().split('\n')).toHaveLength(1)
    expect((await append('--api-token-file', admin)).code).toBe(0)
    const status = await runCli(['status', '--url', a.url, ...ca, '--api-token-file', reader, '--json'])
    expect(status.code, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ heads: { [a.sled]: 0 }, security: { tls: true } })

    // Peers over wss: one trusts the CA file, one pins the certificate, one pins another.
    const wss = a.url.replace(/^https/, 'wss')
    const byCa = await startNode(await tempDir(), ['--peer', wss, '--peer-ca', tlsFile('ca.pem')])
    const byPin = await startNode(await tempDir(), ['--peer', wss, '--peer-pin', pinOf(tlsFile('node.pem'))])
    const wrong = await startNode(await tempDir(), ['--peer', wss, '--peer-pin', pinOf(tlsFile('stranger.pem'))])
    for (const peer of [byCa, byPin]) {
      await waitFor(async () => {
        const r = await runCli(['read', '--url', peer.url, '--sled', a.sled])
        return r.stdout.includes('"greeting"') || undefined
      }, 20_000)
    }
    const refused = await waitFor(async () => {
      const st = JSON.parse((await runCli(['status', '--url', wrong.url, '--json'])).stdout)
      return st.peers[0]?.lastError?.code ?? undefined
    }, 20_000)
    expect(refused).toBe('TLS_PIN_MISMATCH')
    // The wrongly pinned node never got in: a sees two peers, not three.
    const st = JSON.parse(
      (await runCli(['status', '--url', a.url, ...ca, '--api-token-file', reader, '--json'])).stdout,
    )
    const linked = new Set(
      st.peers.filter((p: { sled: string | null }) => p.sled !== null).map((p: { sled: string }) => p.sled),
    )
    expect(linked).toEqual(new Set([byCa.sled, byPin.sled]))
    for (const n of [wrong, byPin, byCa, a]) await n.stop()
  })
})
