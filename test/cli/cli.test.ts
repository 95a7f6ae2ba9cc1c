/**
 * End-to-end tests of the sledlog command: child processes (`runCli`, `startNode`) for the paths
 * a user takes, exit codes included; in-process runs of `main` (`runMain`) for the many smaller
 * checks, to keep the suite fast.
 */
import { existsSync } from 'node:fs'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { describe, expect, it } from 'vitest'
import { dbPath } from '../../src/log/open-log.js'
import { keyPath } from '../../src/store/identity.js'
import { tempDir } from '../helpers/tmp.js'
import { ndjson, queueIngest, runCli, runMain, startNode } from './cli-process.js'

const events = (n: number, from = 0): string =>
  Array.from({ length: n }, (_, i) =>
    JSON.stringify({ type: i % 2 === 0 ? 'even' : 'odd', payload: { i: from + i }, id: `ev-${from + i}` }),
  ).join('\n') + '\n'

/** Every key and value of a data dir's database, hex-encoded (to prove a command changed nothing). */
async function dbContents(dir: string): Promise<Map<string, string>> {
  const db = new Level<string, Uint8Array>(dbPath(dir), {
    keyEncoding: 'utf8',
    valueEncoding: 'view',
    createIfMissing: false,
  })
  await db.open()
  const out = new Map<string, string>()
  for await (const [k, v] of db.iterator()) out.set(k, Buffer.from(v).toString('hex'))
  await db.close()
  return out
}

describe('sledlog keygen / id', () => {
  it('creates a key once, prints its sled id, and refuses unusable keys', async () => {
    const dir = join(await tempDir(), 'a')
    const gen = await runCli(['keygen', '--data', dir])
    expect(gen.code).toBe(0)
    const sled = gen.stdout.trim()
    expect(sled).toMatch(/^[0-9a-f]{64}$/)
    // With its empty database: the key has signed nothing, so the first start does not recover.
    expect(existsSync(join(dir, 'db'))).toBe(true)
    expect(await runCli(['id', '--data', dir])).toMatchObject({ code: 0, stdout: `${sled}\n` })
    const again = await runMain(['keygen'], { env: { SLEDLOG_DATA: dir } })
    expect(again).toMatchObject({ code: 0, stdout: `${sled}\n` })
    expect(again.stderr).toContain('already exists')

    const none = await runMain(['id', '--data', join(dir, 'nope')])
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/no key in .*sledlog keygen/)

    await chmod(keyPath(dir), 0o644)
    const perm = await runCli(['id', '--data', dir])
    expect(perm.code).toBe(1)
    expect(perm.stderr).toMatch(/KEY_FILE_PERMISSIONS: .*chmod 600/)
    const node = await runCli(['node', '--data', dir, '--port', '0'])
    expect(node.code).toBe(1)
    expect(node.stdout).toBe('')
    expect(node.stderr).toContain('sledlog node: KEY_FILE_PERMISSIONS')
  })
})

describe('sledlog usage errors', () => {
  it('exit 2 with a message that names the problem', async () => {
    const dir = await tempDir()
    const cases: Array<[string[], RegExp, Record<string, string>?]> = [
      [[], /Usage: sledlog <command>/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['read', '--url', 'http://x', '--bogus'], /Unknown option '--bogus'[\s\S]*sledlog read --help/],
      [['read', '--url', 'http://x', '--data', dir], /either --url .* or --data/],
      [['read', '--url', 'http://x', '--limit', '0'], /--limit "0" must be an integer in 1\.\.10000/],
      [['append', '--data', dir, '--type', 't', '--payload', '{oops'], /--payload is not valid JSON/],
      [['append', '--data', dir, '--type', 't', '--acks', '1'], /--acks and --ack-timeout only apply with --url/],
      [['append', '--url', 'http://x', '--type', 't', '--acks', 'all'], /--acks "all" must be an integer/],
      [['tail', '--url', 'ftp://x'], /--url must be an http/],
      [['verify'], /verify needs --data DIR/],
      [
        ['node', '--port', 'abc', '--peer', 'http://x:1', '--allow', 'zz'],
        new RegExp(
          'CONFIG_INVALID: invalid configuration \\(4 problems\\):\n {2}- data directory missing.*\n' +
            ' {2}- --port: "abc" is not a port.*\n {2}- --peer: "http://x:1" must be a ws://.*\n' +
            ' {2}- --allow: "zz" is not a sled id',
        ),
      ],
      [
        ['node', '--data', dir],
        /missing\.json: config file not found\n {2}- SLEDLOG_PORT: "7400x" is not a port/,
        { SLEDLOG_PORT: '7400x', SLEDLOG_CONFIG: join(dir, 'missing.json') },
      ],
    ]
    // Two through the real executable (exit codes end to end), the rest in-process.
    const results = await Promise.all(
      cases.map(([args, , env], i) => (i === 0 || i === 10 ? runCli : runMain)(args, { env: env ?? {} })),
    )
    results.forEach((r, i) => {
      const [args, pattern] = cases[i] as [string[], RegExp]
      expect(r.code, `sledlog ${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr, `sledlog ${args.join(' ')}`).toMatch(pattern)
      expect(r.stdout).toBe('')
    })
    expect(await runMain(['read', '--help'])).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('Usage: sledlog read'),
    })
  })
})

describe('sledlog append / read / status on a data directory', () => {
  it('imports NDJSON in batches, reads it back sorted with filters and paging, reports status', async () => {
    const dir = join(await tempDir(), 'a')
    const sled = (await runCli(['keygen', '--data', dir])).stdout.trim()
    const one = await runMain(['append', '--data', dir, '--type', 'hello', '--payload', '{"who":"me"}', '--id', 'h1'])
    expect(one.code, one.stderr).toBe(0)
    expect(JSON.parse(one.stdout)).toMatchObject({
      sled,
      seq: 0,
      kind: 'event',
      type: 'hello',
      payload: { who: 'me' },
      id: 'h1',
    })

    const bulk = await runCli(['append', '--data', dir, '--batch', '400'], { input: events(1000) })
    expect(bulk.code, bulk.stderr).toBe(0)
    expect(JSON.parse(bulk.stdout)).toEqual({ events: 1000, sled, lastSeq: 1000 })
    // Idempotent re-run: ids already held are not appended again.
    const rerun = await runMain(['append', '--data', dir], { input: events(1000) })
    expect(JSON.parse(rerun.stdout)).toMatchObject({ events: 1000, lastSeq: 1000 })

    const all = await runCli(['read', '--data', dir, '--all', '--page-size', '300'])
    expect(all.code, all.stderr).toBe(0)
    const entries = ndjson(all.stdout)
    expect(entries.map((e) => e.seq)).toEqual(Array.from({ length: 1001 }, (_, i) => i))

    const odd = ndjson((await runMain(['read', '--data', dir, '--type', 'odd', '--limit', '3'])).stdout)
    expect(odd.map((e) => e.seq)).toEqual([2, 4, 6])
    const page = await runMain(['read', '--data', dir, '--limit', '2', '--after', `${sled}:10`])
    expect(ndjson(page.stdout).map((e) => e.seq)).toEqual([11, 12])
    expect(page.stderr).toContain(`--after ${sled}:12`)
    const table = await runMain(['read', '--data', dir, '--limit', '1', '--format', 'table'])
    expect(table.stdout.split('\n')[0]).toMatch(/^SLED +SEQ +TIME +KIND +TYPE +ID +PAYLOAD$/)
    expect(table.stdout.split('\n')[1]).toMatch(/^[0-9a-f]{12} +0 .* event +hello +h1 +\{"who":"me"\}$/)

    const st = await runCli(['status', '--data', dir, '--json'])
    expect(JSON.parse(st.stdout)).toMatchObject({
      sled,
      entries: 1001,
      heads: { [sled]: 1000 },
      rejected: { total: 0 },
    })
    expect((await runMain(['status', '--data', dir])).stdout).toMatch(/entries +1001 from 1 sled/)

    // A bad line stops the import there; everything before it is appended, and stderr says so.
    const bad = await runMain(['append', '--data', dir], {
      input: `${events(2, 5000)}{"type":"t","payload":1}\nnot json\n${events(1, 6000)}`,
    })
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/stdin line 4: not valid JSON.*; 3 events before it were appended/)
    expect(JSON.parse((await runMain(['status', '--data', dir, '--json'])).stdout)).toMatchObject({ entries: 1004 })

    const missing = await runMain(['read', '--data', join(dir, 'nope')])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/is not a sledlog data directory/)
  })
})

describe('sledlog against a running node', () => {
  it('appends, reads, tails and reports status over --url; SIGTERM stops it cleanly', async () => {
    const dir = join(await tempDir(), 'a')
    const node = await startNode(['--data', dir, '--port', '0'])
    const url = node.url
    const one = await runCli(['append', '--url', url, '--type', 'greeting', '--payload', '{"hello":"world"}'])
    expect(one.code, one.stderr).toBe(0)
    expect(JSON.parse(one.stdout)).toMatchObject({ sled: node.sled, seq: 0, type: 'greeting' })
    const bulk = await runCli(['append', '--url', url, '--batch', '25'], { input: events(100) })
    expect(JSON.parse(bulk.stdout)).toEqual({ events: 100, sled: node.sled, lastSeq: 100 })

    const all = await runCli(['read', '--url', url, '--all', '--page-size', '7'])
    expect(ndjson(all.stdout).map((e) => e.seq)).toEqual(Array.from({ length: 101 }, (_, i) => i))
    const even = ndjson(
      (await runMain(['read', '--url', url, '--kind', 'event', '--type', 'even', '--all', '--page-size', '10'])).stdout,
    )
    expect(even).toHaveLength(50)

    const st = await runCli(['status', '--url', url, '--json'])
    expect(JSON.parse(st.stdout)).toMatchObject({ sled: node.sled, entries: 101, appendsHeld: false, peers: [] })
    expect((await runMain(['status', '--url', url])).stdout).toMatch(/appends +open/)

    const tailed = await runCli(['tail', '--url', url, '--from', 'start', '--until-live'])
    expect(tailed.code, tailed.stderr).toBe(0)
    expect(ndjson(tailed.stdout).map((e) => e.seq)).toEqual(Array.from({ length: 101 }, (_, i) => i))
    const resume = /--last-event-id (\S+)/.exec(tailed.stderr)?.[1]
    expect(resume).toBeDefined()
    await runMain(['append', '--url', url, '--type', 'after-tail'])
    const resumed = await runCli(['tail', '--url', url, '--last-event-id', resume as string, '--limit', '1'])
    expect(ndjson(resumed.stdout)).toMatchObject([{ seq: 101, type: 'after-tail' }])

    const locked = await runMain(['read', '--data', dir])
    expect(locked.code).toBe(1)
    expect(locked.stderr).toMatch(/in use by another process, most likely a running node .*--url/)
    const refused = await runMain(['append', '--url', url, '--type', ''])
    expect(refused.code).toBe(2)

    expect(await node.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    const msgs = node.logs().map((l) => l.msg)
    expect(msgs).toEqual(expect.arrayContaining(['node started', 'shutting down', 'node stopped']))
    expect(ndjson((await runMain(['read', '--data', dir, '--all'])).stdout)).toHaveLength(102)

    const gone = await runMain(['status', '--url', url])
    expect(gone.code).toBe(1)
    expect(gone.stderr).toMatch(/cannot reach the node at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/)
  })

  it('SIGTERM drains queued ingest events into the log before exiting 0', async () => {
    const dir = join(await tempDir(), 'a')
    const node = await startNode(['--data', dir, '--port', '0', '--log-level', 'warn'])
    await queueIngest(node.url, 1)
    expect(await node.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    // The level was warn: a clean start and stop log nothing.
    expect(node.logs()).toEqual([])
    const entries = ndjson((await runMain(['read', '--data', dir, '--all'])).stdout)
    expect(entries.filter((e) => e.kind === 'event' && e.type === 'ingested')).toHaveLength(2000)
    expect(entries.filter((e) => e.kind === 'gap')).toEqual([])
  })

  it('counts the entries in its "node stopped" line after the ingest drain', async () => {
    const dir = join(await tempDir(), 'a')
    const node = await startNode(['--data', dir, '--port', '0'])
    // A full bus (10 000 events) takes a while to drain: the signal arrives while it is queued.
    await queueIngest(node.url, 5)
    expect(await node.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    const held = ndjson((await runMain(['read', '--data', dir, '--all'])).stdout).length
    expect(held).toBe(10_000)
    expect(node.logs().find((l) => l.msg === 'node stopped')).toMatchObject({ entries: held })
  })

  it('refuses a data directory another node holds, in one line naming it, exit 1', async () => {
    const dir = join(await tempDir(), 'a')
    const first = await startNode(['--data', dir, '--port', '0'])
    const second = await runCli(['node', '--data', dir, '--port', '0'])
    expect(second.code).toBe(1)
    expect(second.stdout).toBe('')
    const lines = second.stderr.trim().split('\n')
    expect(lines.at(-1)).toBe(
      `sledlog node: ${dir} is in use by another process, most likely a running node (its database is locked): ` +
        'stop it, or give this node its own --data directory',
    )
    // The JSON log line says the same, without a stack trace.
    expect(lines.slice(0, -1).map((l) => JSON.parse(l) as Record<string, unknown>)).toMatchObject([
      { level: 'fatal', data: dir },
    ])
    expect(second.stderr).not.toMatch(/Database failed to open|\n\s+at /)
    // The running node is untouched.
    expect(await first.stop('SIGTERM')).toEqual({ code: 0, signal: null })
  })

  it('reads its settings from a config file and the environment', async () => {
    const base = await tempDir()
    const conf = join(base, 'sledlog.json')
    await writeFile(conf, JSON.stringify({ data: 'node-data', port: 7399, logLevel: 'debug' }))
    // The env overrides the file's port (0: any free one); the file's relative data path is
    // relative to the file.
    const node = await startNode(['--config', conf], { SLEDLOG_PORT: '0', SLEDLOG_LOG_LEVEL: 'info' })
    expect(node.url).not.toContain(':7399')
    const id = await runMain(['id', '--data', join(base, 'node-data')])
    expect(id.stdout.trim()).toBe(node.sled)
    expect(await node.stop('SIGINT')).toEqual({ code: 0, signal: null })
    const started = node.logs().find((l) => l.msg === 'node started')
    expect(started).toMatchObject({ level: 'info', from: { data: 'file', port: 'env', logLevel: 'env' } })
    expect(node.logs().some((l) => l.level === 'debug')).toBe(false)
  })
})

describe('sledlog verify', () => {
  it('passes a clean directory, finds a corrupted record, and never modifies the directory', async () => {
    const dir = join(await tempDir(), 'a')
    await runMain(['keygen', '--data', dir])
    await runMain(['append', '--data', dir, '--batch', '50'], { input: events(200) })
    await runMain(['append', '--data', dir, '--type', 'last'])

    const clean = await runCli(['verify', '--data', dir])
    expect(clean.code, clean.stderr).toBe(0)
    expect(clean.stdout).toMatch(/201 entries checked, every signature verified/)
    expect(clean.stdout).toContain('OK: no problems found')
    expect(clean.stderr).toBe('') // no progress bar: stderr is not a terminal

    // Flip one byte inside the last stored update (the record text of the last entry).
    const db = new Level<string, Uint8Array>(dbPath(dir), { keyEncoding: 'utf8', valueEncoding: 'view' })
    const keys: string[] = []
    for await (const k of db.keys({ gte: 'u:', lt: 'u;' })) keys.push(k)
    const last = keys.at(-1) as string
    const value = Buffer.from((await db.get(last)) as Uint8Array)
    value.writeUInt8((value.at(-10) as number) ^ 0x01, value.length - 10)
    await db.put(last, value)
    await db.close()

    const before = await dbContents(dir)
    const key = await readFile(keyPath(dir), 'utf8')
    const bad = await runCli(['verify', '--data', dir, '--json'])
    expect(bad.code).toBe(1)
    const report = JSON.parse(bad.stdout) as Record<string, unknown>
    expect(report).toMatchObject({ ok: false, entries: 200, macFailed: 1, ownHeadBehind: { have: 200, written: 201 } })
    expect(Object.keys((report.rejected as { byCode: object }).byCode)).toHaveLength(1)
    expect(report.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^1 stored record rejected: [A-Z_]+$/),
        expect.stringMatching(/^own head behind: .*OWN_HEAD_BEHIND/),
      ]),
    )
    const text = await runMain(['verify', '--data', dir])
    expect(text.code).toBe(1)
    expect(text.stdout).toMatch(/PROBLEMS \(2\):\n {2}- 1 stored record rejected: [A-Z_]+\n {2}- own head behind/)
    expect(await dbContents(dir)).toEqual(before)
    expect(await readFile(keyPath(dir), 'utf8')).toBe(key)

    const nokey = await runMain(['verify', '--data', join(dir, 'db')])
    expect(nokey.code).toBe(1)
    expect(nokey.stderr).toMatch(/not a sledlog data directory/)
  })
})
