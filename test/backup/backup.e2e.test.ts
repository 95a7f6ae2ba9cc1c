/**
 * Backup, restore and export end to end (PROTOCOL.md §7.3, §7.4) with real node processes, the
 * real CLI and real LevelDB: a backup of a node under write load restores to the same records
 * (signatures) and consumer cursors; damaged backups are refused and leave nothing; a restore
 * killed with SIGKILL leaves no usable directory; a node restored with its key recovers its head
 * from a peer before it writes, then moves to a successor key; GET /v1/backup refuses a second
 * backup, cuts off a client that stops reading and survives one that resets.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { readdir, readFile, stat, writeFile } from 'node:fs/promises'
import http from 'node:http'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { recordOf } from '../../src/backup/export.js'
import { BackupDecoder } from '../../src/backup/format.js'
import type { StoredEntry } from '../../src/core/query.js'
import { freePort } from '../../src/harness/cluster.js'
import { bearer, withTokens } from '../helpers/api-tokens.js'
import { tempDir } from '../helpers/tmp.js'
import { CLI_ARGV, CLI_CWD, ndjson, runCli } from '../cli/cli-process.js'
import { call, startNode, startNodeWithConfig, waitFor, type NodeProcess } from '../http/node-process.js'
import { createHash } from 'node:crypto'

const ws = (n: NodeProcess): string => n.url.replace(/^http/, 'ws')

/** Every entry of `sled` a node serves, paged. */
async function entriesOf(url: string, sled: string, headers: Record<string, string> = {}): Promise<StoredEntry[]> {
  const out: StoredEntry[] = []
  for (;;) {
    const r = await call(
      url,
      'GET',
      `/v1/events?sled=${sled}&afterSeq=${out.length - 1}&limit=10000`,
      undefined,
      headers,
    )
    expect(r.status).toBe(200)
    const page = r.body.entries as StoredEntry[]
    if (page.length === 0) return out
    out.push(...page)
  }
}

/** A stopped node's data directory with `n` events of about `payloadBytes` each (imported: fast). */
async function dataDirWith(n: number, payloadBytes = 40): Promise<{ dir: string; sled: string }> {
  const dir = await tempDir()
  const sled = (await runCli(['keygen', '--data', dir])).stdout.trim()
  const pad = 'x'.repeat(payloadBytes)
  const lines = Array.from({ length: n }, (_, i) => JSON.stringify({ type: 'bulk', payload: { i, pad } })).join('\n')
  const r = await runCli(['append', '--data', dir], { input: `${lines}\n`, timeoutMs: 120_000 })
  expect(r.code, r.stderr).toBe(0)
  return { dir, sled }
}

/** The record lines of a backup file, by seq, for one sled. */
function backupRecords(text: string, sled: string): string[] {
  return ndjson(text)
    .filter((l) => l.sled === sled && typeof l.record === 'string')
    .map((l) => l.record as string)
}

/** Restores must leave nothing behind when refused: no target, no half-restored temporary dir. */
async function assertNothingAt(target: string): Promise<void> {
  expect(existsSync(target)).toBe(false)
  const parent = join(target, '..')
  expect((await readdir(parent)).filter((n) => n.includes('.restoring-'))).toEqual([])
}

describe('backup and restore with real processes', () => {
  it('backs up a node under write load; the restore serves the same signed records and consumer cursors', async () => {
    const dir = await tempDir()
    const tokens = await withTokens(dir, { admin: ['admin'], reader: ['read'] })
    const node = await startNode(dir)
    const auth = bearer(tokens.admin as string)
    const tokenFile = join(await tempDir(), 'admin.token')
    await writeFile(tokenFile, `${tokens.admin}\n`, { mode: 0o600 })
    const readerFile = join(await tempDir(), 'reader.token')
    await writeFile(readerFile, `${tokens.reader}\n`, { mode: 0o600 })

    // Writers keep appending batches while the backup runs.
    let written = 0
    let stop = false
    const writer = (async () => {
      while (!stop) {
        const events = Array.from({ length: 50 }, (_, i) => ({ type: 'load', payload: { n: written + i } }))
        const r = await call(node.url, 'POST', '/v1/events', { events }, auth)
        expect(r.status).toBe(201)
        written += 50
      }
    })()
    await waitFor(() => written >= 3000, 60_000, '3000 entries written')
    expect((await call(node.url, 'PUT', '/v1/consumers/billing', {}, auth)).status).toBeLessThan(300)
    const acked = await call(node.url, 'POST', '/v1/consumers/billing/ack', { sled: node.sled, seq: 41 }, auth)
    expect(acked.status).toBe(200)
    const cursor = acked.body.cursor as Record<string, number>
    // Acks of 0..41 in order move the cursor to 41.
    for (let seq = 0; seq < 41; seq++) {
      await call(node.url, 'POST', '/v1/consumers/billing/ack', { sled: node.sled, seq }, auth)
    }
    const before = written
    const out = join(await tempDir(), 'node.backup')
    const refused = await runCli(['backup', '--url', node.url, '--out', out, '--api-token-file', readerFile])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/HTTP_FORBIDDEN|admin scope/)
    expect(existsSync(out)).toBe(false)
    const made = await runCli(['backup', '--url', node.url, '--out', out, '--api-token-file', tokenFile], {
      timeoutMs: 120_000,
    })
    const during = written
    stop = true
    await writer
    expect(made.code, made.stderr).toBe(0)
    expect(made.stderr).toMatch(/wrote .*: \d+ records of 1 sleds, 0 fork proofs, 1 consumers/)
    expect(made.stderr).toContain('its key is not in the backup')
    expect(existsSync(`${out}.partial`)).toBe(false)

    const text = await readFile(out, 'utf8')
    const header = JSON.parse(text.slice(0, text.indexOf('\n'))) as { sleds: Record<string, number> }
    const n = header.sleds[node.sled] as number
    // One moment of a log that kept growing: at least what was written before, at most after.
    expect(n).toBeGreaterThanOrEqual(before)
    expect(n).toBeLessThanOrEqual(during + 50)
    expect(written).toBeGreaterThan(n)
    console.log(`[backup under load] ${n} records in the snapshot, ${written} written in all`)

    // Every record of the snapshot is the one the node serves, signature for signature.
    const live = await entriesOf(node.url, node.sled, auth)
    const records = backupRecords(text, node.sled)
    expect(records.length).toBe(n)
    expect(records).toEqual(live.slice(0, n).map(recordOf))

    const restored = join(await tempDir(), 'restored')
    const r = await runCli(['restore', '--in', out, '--data', restored], { timeoutMs: 120_000 })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/OK: no problems found/)
    // Without --key the directory has a new key, which signed nothing: no recovery.
    expect(existsSync(join(restored, 'RECOVERING'))).toBe(false)
    await node.stop()

    const copy = await startNode(restored)
    expect(copy.sled).not.toBe(node.sled)
    const served = await entriesOf(copy.url, node.sled)
    expect(served.map(recordOf)).toEqual(records)
    expect((await call(copy.url, 'GET', '/v1/consumers/billing')).body).toMatchObject({ name: 'billing', cursor })
    // The restored node's export verifies against the protocol alone.
    const exported = await runCli(['export', '--url', copy.url, '--sled', node.sled], { timeoutMs: 60_000 })
    expect(exported.code, exported.stderr).toBe(0)
    expect(ndjson(exported.stdout).map((l) => l.record)).toEqual(records)
    const file = join(await tempDir(), 'export.ndjson')
    await writeFile(file, exported.stdout)
    const verified = await runCli(['verify', '--export', file])
    expect(verified.code, verified.stdout).toBe(0)
    const tampered = exported.stdout.replace('\\"payload\\":{\\"n\\":7}', '\\"payload\\":{\\"n\\":8}')
    expect(tampered).not.toBe(exported.stdout)
    await writeFile(file, tampered)
    const failed = await runCli(['verify', '--export', file])
    expect(failed.code).toBe(1)
    expect(failed.stdout).toMatch(/line 8: UPDATE_BAD_SIGNATURE/)
  }, 240_000)

  it('refuses truncated, damaged and forged backups and non-empty targets, writing nothing', async () => {
    const { dir, sled } = await dataDirWith(300)
    const out = join(await tempDir(), 'b.backup')
    expect((await runCli(['backup', '--data', dir, '--out', out])).code).toBe(0)
    // A backup never overwrites.
    const again = await runCli(['backup', '--data', dir, '--out', out])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/exists/)
    const text = await readFile(out, 'utf8')
    const parent = await tempDir()
    const attempt = async (name: string, content: string, code: RegExp) => {
      const file = join(parent, `${name}.backup`)
      await writeFile(file, content)
      const target = join(parent, name)
      const r = await runCli(['restore', '--in', file, '--data', target], { timeoutMs: 60_000 })
      expect(r.code, `${name}: ${r.stderr}`).toBe(1)
      expect(r.stderr, name).toMatch(code)
      await assertNothingAt(target)
    }
    await attempt('truncated', text.slice(0, text.length - 200), /BACKUP_INVALID: .*(truncated|not JSON)/)
    await attempt('cut-before-trailer', text.slice(0, text.lastIndexOf('{"end"')), /truncated/)
    // A payload changed in a record: the checksum or the guard (whichever reads it first) refuses.
    const changed = text.replace('\\"payload\\":{\\"i\\":17,', '\\"payload\\":{\\"i\\":71,')
    expect(changed).not.toBe(text)
    await attempt('changed-record', changed, /checksum mismatch|UPDATE_BAD_SIGNATURE/)
    // The same with a recomputed checksum (a forger, not a bad disk): the guard still refuses it.
    const body = changed.slice(0, changed.lastIndexOf('{"end"'))
    const sha = createHash('sha256').update(body).digest('hex')
    await attempt('forged', `${body}{"end":{"records":300,"sha256":"${sha}"}}\n`, /UPDATE_BAD_SIGNATURE/)
    // A byte changed outside any record (the header's timestamp): only the checksum tells.
    await attempt('damaged-header', text.replace(/"createdAt":(\d)/, '"createdAt":9'), /checksum mismatch/)
    // A record moved to another seq: the guard refuses the binding.
    const lines = text.split('\n')
    const swapped = [...lines]
    const l5 = JSON.parse(lines[5] as string)
    const l6 = JSON.parse(lines[6] as string)
    swapped[5] = JSON.stringify({ ...l5, record: l6.record })
    await attempt('rebound', swapped.join('\n'), /UPDATE_BAD_BINDING|BACKUP_INVALID/)

    // A non-empty target is refused before anything is read.
    const busy = await tempDir()
    await writeFile(join(busy, 'something'), 'x')
    const r = await runCli(['restore', '--in', out, '--data', busy])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/not empty/)
    expect(await readdir(busy)).toEqual(['something'])
    // And an empty one is fine: the restore takes its place.
    const empty = await tempDir()
    const ok = await runCli(['restore', '--in', out, '--data', empty], { timeoutMs: 60_000 })
    expect(ok.code, ok.stderr).toBe(0)
    const exported = await runCli(['export', '--data', empty])
    expect(ndjson(exported.stdout).map((l) => l.record)).toEqual(backupRecords(text, sled))
  }, 180_000)

  it('a restore killed with SIGKILL leaves no usable directory; the next restore cleans up and succeeds', async () => {
    const { dir } = await dataDirWith(20_000)
    const out = join(await tempDir(), 'big.backup')
    expect((await runCli(['backup', '--data', dir, '--out', out], { timeoutMs: 120_000 })).code).toBe(0)
    const parent = await tempDir()
    const target = join(parent, 'restored')
    const child = spawn(CLI_ARGV[0] as string, [...CLI_ARGV.slice(1), 'restore', '--in', out, '--data', target], {
      cwd: CLI_CWD,
      stdio: 'ignore',
    })
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    // Killed once the restore has written part of its store.
    await waitFor(
      async () => {
        const tmp = (await readdir(parent)).find((n) => n.includes('.restoring-'))
        if (tmp === undefined) return false
        const db = join(parent, tmp, 'db')
        if (!existsSync(db)) return false
        let bytes = 0
        for (const f of await readdir(db)) bytes += (await stat(join(db, f)).catch(() => ({ size: 0 }))).size
        return bytes > 256 * 1024
      },
      60_000,
      'the restore to write part of its store',
    )
    child.kill('SIGKILL')
    await once(child, 'exit')
    expect(existsSync(target)).toBe(false)
    const v = await runCli(['verify', '--data', target])
    expect(v.code).toBe(1)
    // The abandoned temporary directory is dot-named; the next restore removes it and succeeds.
    expect((await readdir(parent)).filter((n) => n.includes('.restoring-')).length).toBe(1)
    const r = await runCli(['restore', '--in', out, '--data', target], { timeoutMs: 120_000 })
    expect(r.code, r.stderr).toBe(0)
    expect(await readdir(parent)).toEqual(['restored'])
    expect(r.stderr).toMatch(/restored 20000 records/)
  }, 240_000)

  it('a node restored with its key proves its head from a peer before it writes, then moves on', async () => {
    const [dirA, dirB] = [await tempDir(), await tempDir()]
    const portB = await freePort()
    let b = await startNode(dirB, ['--port', String(portB)])
    const a = await startNode(dirA, ['--peer', ws(b)])
    const post = (n: NodeProcess, payload: number) => call(n.url, 'POST', '/v1/events', { type: 'r', payload })
    for (let i = 0; i < 20; i++) expect((await post(a, i)).status).toBe(201)
    const out = join(await tempDir(), 'a.backup')
    expect((await runCli(['backup', '--url', a.url, '--out', out])).code).toBe(0)
    // The key signs more after the backup; only the peer keeps those entries.
    for (let i = 20; i < 30; i++) expect((await post(a, i)).status).toBe(201)
    await waitFor(async () => (await entriesOf(b.url, a.sled)).length === 30, 15_000, 'B to hold A’s 30 entries')
    const heldByB = (await entriesOf(b.url, a.sled)).map(recordOf)
    await a.stop()
    await b.stop()

    // A's disk is lost; its key was kept apart. Restored from the older backup, with the key.
    const restored = join(await tempDir(), 'a2')
    const r = await runCli(['restore', '--in', out, '--data', restored, '--key', join(dirA, 'sled.key')])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/marked RECOVERING/)
    expect(existsSync(join(restored, 'RECOVERING'))).toBe(true)

    // The peer is down: the restored node refuses writes (it may have signed more than it holds).
    const a2 = await startNode(restored, ['--peer', `ws://127.0.0.1:${portB}`])
    expect(a2.sled).toBe(a.sled)
    for (let i = 0; i < 3; i++) {
      const w = await post(a2, 99)
      expect(w.status).toBe(503)
      expect(w.body.error.code).toBe('RECOVERING')
      await new Promise((res) => setTimeout(res, 200))
    }
    // The peer comes back: its receipt proves 30 entries, the node fetches the 10 it lacked, then
    // (default recovery mode) moves to a successor key rather than sign any of A's seqs again.
    b = await startNode(dirB, ['--port', String(portB)])
    const successor = await waitFor(
      async () => {
        const s = await call(a2.url, 'GET', '/v1/status')
        return s.status === 200 && s.body.sled !== a.sled ? (s.body.sled as string) : undefined
      },
      60_000,
      'the restored node to move to a successor key',
    )
    const w = await waitFor(
      async () => {
        const res = await post(a2, 100)
        return res.status === 201 ? res : undefined
      },
      20_000,
      'a write under the successor',
    )
    expect(w.body.sled ?? w.body.entries?.[0]?.sled).toBe(successor)
    const chain = (await call(a2.url, 'GET', `/v1/sleds/${successor}/chain`)).body
    expect(chain.predecessors[0]).toMatchObject({
      predecessor: a.sled,
      lastSeq: 29,
      reason: 'recovery',
      endorsed: true,
    })
    // A's seqs were never signed twice: the restored node holds exactly what the peer held.
    expect((await entriesOf(a2.url, a.sled)).map(recordOf)).toEqual(heldByB)
    expect(existsSync(join(restored, 'RECOVERING'))).toBe(false)
  }, 180_000)

  it('GET /v1/backup: one at a time, a client that stops reading is cut off, one that resets is survived', async () => {
    // Big records, so a backup outgrows the socket buffers of a client that does not read.
    const { dir } = await dataDirWith(4000, 3000)
    const node = await startNodeWithConfig(dir, { streamLimits: { stallMs: 1000 } })
    const url = new URL(`${node.url}/v1/backup`)
    const stalled = await new Promise<http.IncomingMessage>((resolve) => http.get(url, resolve))
    expect(stalled.statusCode).toBe(200)
    stalled.pause()
    const second = await call(node.url, 'GET', '/v1/backup')
    expect(second.status).toBe(429)
    expect(second.body.error.code).toBe('BACKUP_BUSY')
    expect(second.headers.get('retry-after')).toBe('10')
    // Cut off after the stall time: what the stalled client then reads has no trailer.
    await waitFor(() => node.stderr().includes('backup stream cut off'), 30_000, 'the stalled backup to be cut off')
    let got = ''
    stalled.setEncoding('utf8').on('data', (d: string) => {
      got += d
    })
    // The cut reaches it as an 'aborted' error, then 'close'.
    stalled.on('error', () => undefined)
    const closed = new Promise((resolve) => stalled.on('close', resolve))
    stalled.resume()
    await closed
    expect(got.length).toBeGreaterThan(0)
    expect(got).not.toContain('{"end"')

    // A client that resets mid-stream.
    await new Promise<void>((resolve) => {
      const req = http.get(url, (res) => {
        res.once('data', () => {
          req.destroy()
          resolve()
        })
      })
      req.on('error', () => undefined)
    })
    // The next backup runs (the slot was given back) and is whole.
    const whole = await waitFor(
      async () => {
        const res = await call(node.url, 'GET', '/v1/backup')
        return res.status === 200 ? (res.body as string) : undefined
      },
      15_000,
      'a backup after the cut-off ones',
    )
    const d = new BackupDecoder()
    const lines = whole.split('\n').filter((l) => l !== '')
    for (const [i, l] of lines.entries()) d.line(l, i + 1)
    d.finish(lines.length)
    expect(d.records).toBe(4000)
    expect((await call(node.url, 'GET', '/healthz')).status).toBe(200)
  }, 180_000)
})
