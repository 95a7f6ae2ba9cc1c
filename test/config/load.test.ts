/**
 * The I/O half of configuration: the files settings name are read and checked before a node
 * starts (with every other problem, in one CONFIG_INVALID), and a config file that is not JSON is
 * reported by place, never by quoting it.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { checkNamedFiles } from '../../src/config/files.js'
import { jsonErrorPlace, loadNodeSettings, readConfigFile } from '../../src/config/load.js'
import type { NamedFile } from '../../src/config/resolve.js'
import { isSledlogError } from '../../src/errors.js'
import { tempDir } from '../helpers/tmp.js'
import { tlsFile } from '../helpers/tls.js'

const named = (setting: NamedFile['setting'], path: string): NamedFile => ({ setting, label: `--${setting}`, path })

describe('checkNamedFiles', () => {
  it('accepts a certificate with its key, a CA bundle and a readable tokens file', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'tokens.json'), '{}')
    expect(
      await checkNamedFiles([
        named('tlsCert', tlsFile('node.pem')),
        named('tlsKey', tlsFile('node.key')),
        named('peerCa', tlsFile('ca.pem')),
        named('apiTokensFile', join(dir, 'tokens.json')),
      ]),
    ).toEqual([])
  })

  it('reports missing files, non-certificates, unusable keys and a key that is not the certificate’s', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'junk.pem'), 'hello\n')
    await mkdir(join(dir, 'sub'))
    const p = await checkNamedFiles([
      named('apiTokensFile', join(dir, 'nope.json')),
      named('peerCa', join(dir, 'junk.pem')),
      named('tlsCert', tlsFile('node.pem')),
      named('tlsKey', tlsFile('stranger.key')),
    ])
    expect(p).toEqual([
      `--apiTokensFile: file not found: ${join(dir, 'nope.json')}`,
      `--peerCa: ${join(dir, 'junk.pem')} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`,
      `--tlsKey: ${tlsFile('stranger.key')} is not the key of the certificate in ${tlsFile('node.pem')} ` +
        '(subject CN=127.0.0.1 (test only))',
    ])
    const q = await checkNamedFiles([named('tlsCert', join(dir, 'sub')), named('tlsKey', tlsFile('node.pem'))])
    expect(q).toEqual([
      `--tlsCert: ${join(dir, 'sub')} is a directory, not a file`,
      expect.stringMatching(new RegExp(`^--tlsKey: ${tlsFile('node.pem')} is not a usable PEM private key \\(`)),
    ])
    // A message about a key file never quotes the key.
    const keyAsCert = await checkNamedFiles([named('tlsCert', tlsFile('node.key'))])
    expect(keyAsCert.join('\n')).not.toMatch(/PRIVATE KEY|MHc/)
  })
})

describe('config file errors', () => {
  it('name the line and column of bad JSON without quoting the text', async () => {
    const dir = await tempDir()
    const path = join(dir, 'conf.json')
    await writeFile(path, '{\n  "data": "a",\n  "token": hunter2-secret\n}\n')
    const file = await readConfigFile(path)
    expect(file).toEqual({ path, error: 'config file is not valid JSON: unexpected character at line 3, column 12' })
    expect(jsonErrorPlace('')).toBe('the file is empty')
    expect(jsonErrorPlace('{"a": 1')).toBe('it ends before the JSON value is complete')
    expect(jsonErrorPlace('{"a": 1}}')).toBe('unexpected character at line 1, column 9')
  })

  it('come with every resolution and file problem in one CONFIG_INVALID', async () => {
    const dir = await tempDir()
    const err = await loadNodeSettings(
      { data: dir, port: 'x', 'tls-cert': join(dir, 'c.pem'), 'tls-key': tlsFile('node.key') },
      { SLEDLOG_PEER_CA: join(dir, 'ca.pem') },
    ).catch((e: unknown) => e)
    expect(isSledlogError(err, 'CONFIG_INVALID')).toBe(true)
    expect((err as { details: { problems: string[] } }).details.problems).toEqual([
      '--port: "x" is not a port (an integer 0..65535)',
      `--tls-cert: file not found: ${join(dir, 'c.pem')}`,
      `SLEDLOG_PEER_CA: file not found: ${join(dir, 'ca.pem')}`,
    ])
    const ok = await loadNodeSettings(
      { data: dir, 'tls-cert': tlsFile('node.pem'), 'tls-key': tlsFile('node.key'), 'peer-ca': tlsFile('ca.pem') },
      {},
    )
    expect(ok.settings).toMatchObject({ tlsCert: tlsFile('node.pem'), tlsKey: tlsFile('node.key') })
  })
})
