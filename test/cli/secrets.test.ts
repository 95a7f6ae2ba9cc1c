/**
 * No secret reaches a message or a log: the sync token and URL credentials stay out of config
 * errors, start-up logs and warnings of a real node process.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { tempDir } from '../helpers/tmp.js'
import { runCli, startNode } from './cli-process.js'

const SECRET = 'hunter2-do-not-print'

describe('secrets', () => {
  it('config errors name the problem, never the password of a peer URL or the token', async () => {
    const dir = await tempDir()
    const conf = join(dir, 'conf.json')
    await writeFile(conf, `{"data": "d", "token": ${SECRET}}`)
    const r = await runCli(['node', '--config', conf, '--peer', `ws://admin:${SECRET}@10.0.0.2:7400`])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--peer: "ws://***@10.0.0.2:7400" must not carry credentials')
    expect(r.stderr).toContain('conf.json: config file is not valid JSON: unexpected character at line 1, column 24')
    expect(r.stderr).not.toContain(SECRET)
    expect(r.stderr).not.toContain('hunter2')
  })

  it('a running node logs that it has a token and warns where it would travel in clear, never the token', async () => {
    const dir = join(await tempDir(), 'a')
    // .invalid never resolves: the dial fails at once, and the peer is not this machine.
    const node = await startNode(['--data', dir, '--port', '0', '--peer', 'ws://peer.invalid:7400'], {
      SLEDLOG_TOKEN: SECRET,
    })
    expect(await node.stop('SIGTERM')).toEqual({ code: 0, signal: null })
    const logs = node.logs()
    expect(logs.find((l) => l.msg === 'node started')).toMatchObject({ token: true, peers: ['ws://peer.invalid:7400'] })
    expect(
      logs.some(
        (l) => l.level === 'warn' && String(l.msg).startsWith('peer ws://peer.invalid:7400 dialed over plain ws://'),
      ),
    ).toBe(true)
    expect(node.stderr()).not.toContain(SECRET)
  })
})
