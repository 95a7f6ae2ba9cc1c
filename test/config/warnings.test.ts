import { describe, expect, it } from 'vitest'
import { resolveNodeSettings } from '../../src/config/resolve.js'
import { isLoopbackHost, settingsWarnings } from '../../src/config/warnings.js'

function warnings(flags: Record<string, string | boolean | string[]>, env: Record<string, string> = {}): string[] {
  const r = resolveNodeSettings({ flags: { data: 'd', ...flags }, env })
  if (!r.ok) throw new Error(r.problems.join('\n'))
  return settingsWarnings(r.settings, r.origins)
}

describe('settingsWarnings', () => {
  it('warns when the sync token would cross plain ws:// to another machine, and only then', () => {
    const env = { SLEDLOG_TOKEN: 't' }
    expect(warnings({ peer: ['ws://10.0.0.2:7400', 'wss://b.example', 'ws://127.0.0.1:7401'] }, env)).toEqual([
      'peer ws://10.0.0.2:7400 dialed over plain ws://: the token proof (open to offline guessing) and every ' +
        'replicated entry cross the network unencrypted; use wss:// for peers off this machine',
    ])
    expect(warnings({ peer: ['ws://localhost:1', 'ws://[::1]:2', 'wss://b.example'] }, env)).toEqual([])
    expect(warnings({ peer: ['ws://10.0.0.2:7400'] })).toEqual([]) // no token, nothing to leak
  })

  it('warns about a token on the command line and peer TLS settings that apply to no peer', () => {
    expect(warnings({ token: 't' })).toEqual([expect.stringMatching(/^the token was given with --token/)])
    expect(warnings({ 'peer-ca': 'ca.pem', peer: ['ws://127.0.0.1:1'] })).toEqual([
      '--peer-ca and --peer-pin only apply to wss:// peers, and no peer is wss://: they have no effect',
    ])
    expect(warnings({ 'peer-pin': ['a'.repeat(64)], peer: ['wss://h:1'] })).toEqual([])
  })
})

describe('isLoopbackHost', () => {
  it.each([
    ['localhost', true],
    ['LOCALHOST.', true],
    ['app.localhost', true],
    ['127.0.0.1', true],
    ['127.1.2.3', true],
    ['[::1]', true],
    ['10.0.0.1', false],
    ['127.example.com', false],
    ['0.0.0.0', false],
  ])('%s', (host, want) => {
    expect(isLoopbackHost(host)).toBe(want)
  })
})
