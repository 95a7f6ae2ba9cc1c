import { describe, expect, it } from 'vitest'
import {
  peerUrlProblem,
  resolveAdminKeys,
  resolveDataDir,
  resolveNodeSettings,
  type ConfigSources,
} from '../../src/config/resolve.js'
import { testKeys } from '../helpers/keys.js'

const SLED_A = 'a'.repeat(64)
const SLED_B = 'b'.repeat(64)

function ok(sources: Partial<ConfigSources>) {
  const r = resolveNodeSettings({ flags: {}, env: {}, ...sources })
  if (!r.ok) throw new Error(`expected ok, got:\n${r.problems.join('\n')}`)
  return r
}

function problems(sources: Partial<ConfigSources>): readonly string[] {
  const r = resolveNodeSettings({ flags: {}, env: {}, ...sources })
  if (r.ok) throw new Error('expected problems')
  return r.problems
}

describe('resolveNodeSettings', () => {
  it('fills defaults around the one required setting', () => {
    const r = ok({ flags: { data: './d' } })
    expect(r.settings).toEqual({
      data: './d',
      host: '127.0.0.1',
      port: 7400,
      peers: [],
      sync: false,
      minAcks: 0,
      logLevel: 'info',
      recoveryMode: 'succession',
      insecure: false,
    })
    expect(r.origins.data).toBe('flag')
    expect(r.origins.port).toBe('default')
  })

  it('takes flags over env over file over defaults, setting by setting', () => {
    const r = ok({
      flags: { port: '1', peer: ['ws://f:1'] },
      env: { SLEDLOG_PORT: '2', SLEDLOG_HOST: '10.0.0.2', SLEDLOG_PEERS: 'ws://e:1', SLEDLOG_DATA: '/env' },
      file: {
        path: '/etc/sledlog.json',
        value: { port: 3, host: 'file-host', data: '/file', logLevel: 'debug', sync: true },
      },
    })
    expect(r.settings.port).toBe(1)
    expect(r.settings.peers).toEqual(['ws://f:1']) // a list is replaced whole, never merged
    expect(r.settings.host).toBe('10.0.0.2')
    expect(r.settings.data).toBe('/env')
    expect(r.settings.logLevel).toBe('debug')
    expect(r.settings.sync).toBe(true)
    expect(r.origins).toMatchObject({
      port: 'flag',
      peers: 'flag',
      host: 'env',
      data: 'env',
      logLevel: 'file',
      sync: 'file',
      token: 'default',
    })
  })

  it('parses env lists comma-separated and treats empty variables as unset', () => {
    const r = ok({
      flags: { data: 'd' },
      env: {
        SLEDLOG_PEERS: ' ws://a:1 , ws://b:2,',
        SLEDLOG_ALLOW: `${SLED_A},${SLED_B},${SLED_A}`,
        SLEDLOG_TOKEN: '',
        SLEDLOG_PORT: '',
      },
    })
    expect(r.settings.peers).toEqual(['ws://a:1', 'ws://b:2'])
    expect(r.settings.allow).toEqual([SLED_A, SLED_B])
    expect(r.settings.token).toBeUndefined()
    expect(r.settings.port).toBe(7400)
  })

  it('reads an empty allow-list (unset compose variables) as no allow-list', () => {
    expect(ok({ flags: { data: 'd' }, env: { SLEDLOG_ALLOW: ',' } }).settings.allow).toBeUndefined()
  })

  it('resolves a relative data path in a config file against the file, not the working dir', () => {
    expect(ok({ file: { path: '/etc/sledlog/conf.json', value: { data: 'node-a' } } }).settings.data).toBe(
      '/etc/sledlog/node-a',
    )
    expect(ok({ file: { path: '/etc/sledlog/conf.json', value: { data: '/var/a' } } }).settings.data).toBe('/var/a')
    expect(ok({ flags: { data: 'rel' }, file: { path: '/etc/c.json', value: {} } }).settings.data).toBe('rel')
  })

  it('accepts the env spellings of booleans, durations and levels', () => {
    const r = ok({
      flags: { data: 'd' },
      env: { SLEDLOG_SYNC: 'yes', SLEDLOG_RECOVERY_TIMEOUT: '2500', SLEDLOG_LOG_LEVEL: 'WARN' },
    })
    expect(r.settings).toMatchObject({ sync: true, recoveryTimeoutMs: 2500, logLevel: 'warn' })
    expect(ok({ flags: { data: 'd' }, env: { SLEDLOG_SYNC: 'off' } }).settings.sync).toBe(false)
  })

  it('takes the ingest bus capacity from any source and refuses one below 1', () => {
    expect(ok({ flags: { data: 'd', 'ingest-capacity': '64' } }).settings.ingestCapacity).toBe(64)
    expect(ok({ flags: { data: 'd' }, env: { SLEDLOG_INGEST_CAPACITY: '32' } }).settings.ingestCapacity).toBe(32)
    expect(
      ok({ flags: { data: 'd' }, file: { path: 'c.json', value: { ingestCapacity: 8 } } }).settings.ingestCapacity,
    ).toBe(8)
    expect(ok({ flags: { data: 'd' } }).settings.ingestCapacity).toBeUndefined()
    expect(problems({ flags: { data: 'd', 'ingest-capacity': '0' } })).toEqual([
      '--ingest-capacity: "0" is not an ingest bus capacity (an integer >= 1)',
    ])
  })

  it('takes --min-acks up to the configured peers, and --ack-timeout in range', () => {
    const two = { peer: ['ws://b:1', 'ws://c:1'] }
    expect(ok({ flags: { data: 'd', ...two, 'min-acks': '2' } }).settings.minAcks).toBe(2)
    expect(ok({ flags: { data: 'd', ...two }, env: { SLEDLOG_MIN_ACKS: '1' } }).settings.minAcks).toBe(1)
    // With an allow-list, its sleds are the configured peers (a node may only be dialed by them).
    const allowed = ok({
      flags: { data: 'd', allow: [SLED_A, SLED_B] },
      file: { path: 'c.json', value: { minAcks: 2 } },
    })
    expect(allowed.settings.minAcks).toBe(2)
    expect(ok({ flags: { data: 'd', 'ack-timeout': '2500' } }).settings.ackTimeoutMs).toBe(2500)
    expect(ok({ flags: { data: 'd' } }).settings.ackTimeoutMs).toBeUndefined()
    expect(problems({ flags: { data: 'd', ...two, 'min-acks': '3', 'ack-timeout': '0' } })).toEqual([
      '--min-acks: 3 is more than the 2 configured peers (allow-listed sleds, or --peer URLs without an ' +
        'allow-list): no write could be acknowledged',
      '--ack-timeout: "0" is not a duration in ms (an integer 1..600000)',
    ])
    expect(problems({ flags: { data: 'd', 'min-acks': 'one' } })).toEqual([
      '--min-acks: "one" is not a number of peers (an integer >= 0)',
    ])
  })

  it('takes the recovery quorum from any source; refuses 0 and more peers than are configured', () => {
    const peers = ['ws://a:1', 'ws://b:1']
    expect(ok({ flags: { data: 'd', peer: peers, 'recovery-quorum': '2' } }).settings.recoveryQuorum).toBe(2)
    expect(
      ok({ flags: { data: 'd', peer: peers }, env: { SLEDLOG_RECOVERY_QUORUM: '1' } }).settings.recoveryQuorum,
    ).toBe(1)
    const allow = ['a'.repeat(64)]
    expect(
      ok({ flags: { data: 'd', allow }, file: { path: 'c.json', value: { recoveryQuorum: 1 } } }).settings
        .recoveryQuorum,
    ).toBe(1)
    expect(ok({ flags: { data: 'd' } }).settings.recoveryQuorum).toBeUndefined()
    expect(problems({ flags: { data: 'd', peer: peers, 'recovery-quorum': '0' } })).toEqual([
      '--recovery-quorum: "0" is not a number of peers (an integer >= 1)',
    ])
    expect(problems({ flags: { data: 'd', peer: peers, 'recovery-quorum': '3' } })).toEqual([
      '--recovery-quorum: 3 peers can never answer: only 2 are configured (--peer, --allow), ' +
        'so a recovery would wait for an operator every time',
    ])
  })

  it('--recovery-mode: succession (default) or resume, from flag, env or file', () => {
    expect(ok({ flags: { data: 'd' } }).settings.recoveryMode).toBe('succession')
    expect(ok({ flags: { data: 'd', 'recovery-mode': 'resume' } }).settings.recoveryMode).toBe('resume')
    expect(ok({ flags: { data: 'd' }, env: { SLEDLOG_RECOVERY_MODE: 'resume' } }).settings.recoveryMode).toBe('resume')
    expect(
      ok({ flags: { data: 'd' }, file: { path: 'c.json', value: { recoveryMode: 'resume' } } }).settings.recoveryMode,
    ).toBe('resume')
    expect(problems({ flags: { data: 'd', 'recovery-mode': 'yolo' } })).toEqual([
      '--recovery-mode: "yolo" is not a recovery mode (succession, resume)',
    ])
  })

  it('reports every problem at once, each naming where the value came from', () => {
    const p = problems({
      flags: { port: 'abc', peer: ['http://x:1', 'ws://ok:1', 'ws://ok:1'], allow: ['zz'] },
      env: {
        SLEDLOG_LOG_LEVEL: 'loud',
        SLEDLOG_RECOVERY_TIMEOUT: '-5',
        SLEDLOG_SYNC: 'maybe',
        SLEDLOG_HOST: 'http://h',
      },
      file: { path: 'c.json', value: { prot: 1, token: '' } },
    })
    expect(p).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^c\.json: unknown key "prot"/),
        expect.stringMatching(/^data directory missing/),
        '--port: "abc" is not a port (an integer 0..65535)',
        '--peer: "http://x:1" must be a ws:// or wss:// URL, not http://',
        '--peer: "ws://ok:1" is listed twice',
        expect.stringMatching(/^--allow: "zz" is not a sled id/),
        expect.stringMatching(/^SLEDLOG_LOG_LEVEL: "loud" is not a log level/),
        expect.stringMatching(/^SLEDLOG_RECOVERY_TIMEOUT: "-5" is not a duration/),
        expect.stringMatching(/^SLEDLOG_SYNC: "maybe" is not a boolean/),
        expect.stringMatching(/^SLEDLOG_HOST: "http:\/\/h" is not a host/),
        'c.json: token: token must not be empty',
      ]),
    )
    expect(p).toHaveLength(11)
  })

  it('checks types in the config file', () => {
    const p = problems({
      file: { path: 'c.json', value: { data: 7, port: 70000, peers: 'ws://a:1', allow: [1], sync: 'true' } },
    })
    expect(p).toEqual(
      expect.arrayContaining([
        'c.json: data: data directory must be a string, got 7',
        'c.json: port: 70000 is not a port (an integer 0..65535)',
        'c.json: peers: must be a list of strings, got "ws://a:1"',
        'c.json: allow: must be a list of strings, got [1]',
      ]),
    )
    // "true" in a file is a string, but the env spellings are accepted everywhere for booleans.
    expect(p.some((x) => x.includes('sync'))).toBe(false)
  })

  it('reports an unreadable or malformed config file with the rest', () => {
    expect(problems({ flags: { port: 'x' }, file: { path: 'gone.json', error: 'config file not found' } })).toEqual([
      'gone.json: config file not found',
      expect.stringMatching(/^data directory missing/),
      '--port: "x" is not a port (an integer 0..65535)',
    ])
    expect(problems({ flags: { data: 'd' }, file: { path: 'arr.json', value: [] } })).toEqual([
      'arr.json: a config file must hold a JSON object, got an array',
    ])
  })

  it('lets a flag override an invalid env value without complaint', () => {
    expect(ok({ flags: { data: 'd', port: '0' }, env: { SLEDLOG_PORT: 'nonsense' } }).settings.port).toBe(0)
  })
})

describe('peerUrlProblem', () => {
  it.each([
    ['ws://node-b:7400', undefined],
    ['wss://example.org', undefined],
    ['ws://10.0.0.2:7400/prefix', undefined],
    ['node-b:7400', 'must be a ws:// or wss:// URL, not node-b://'],
    ['not a url', 'is not a URL (expected ws://host:port)'],
    ['ws://h:1/?x=1', 'must not carry a query or fragment (the sync path is added by the node)'],
    ['ws://u:p@h:1', 'must not carry credentials (use the token setting)'],
  ])('%s', (url, why) => {
    expect(peerUrlProblem(url)).toBe(why)
  })
})

describe('resolveDataDir', () => {
  it('takes the flag, else SLEDLOG_DATA, else nothing', () => {
    expect(resolveDataDir('f', { SLEDLOG_DATA: 'e' })).toBe('f')
    expect(resolveDataDir(undefined, { SLEDLOG_DATA: 'e' })).toBe('e')
    expect(resolveDataDir(undefined, { SLEDLOG_DATA: '' })).toBeUndefined()
  })
})

describe('security settings', () => {
  const PIN = 'AB:'.repeat(31) + 'CD'

  it('come from flags, environment and config file, normalised', () => {
    const flags = ok({
      flags: {
        data: 'd',
        insecure: true,
        'api-tokens': '/etc/sledlog/tokens.json',
        'tls-cert': 'c.pem',
        'tls-key': 'k.pem',
        'peer-ca': 'ca.pem',
        'peer-pin': [PIN, 'ab'.repeat(31) + 'cd', 'f'.repeat(64)],
        'allowed-host': ['Sledlog.Example.COM', '10.0.0.5:7400', 'h:80'],
        'cors-origin': ['https://App.Example.com/', 'http://localhost:3000', 'https://x.example:443'],
      },
    }).settings
    expect(flags).toMatchObject({
      insecure: true,
      apiTokensFile: '/etc/sledlog/tokens.json',
      tlsCert: 'c.pem',
      tlsKey: 'k.pem',
      peerCa: 'ca.pem',
      // Both spellings of one fingerprint are one pin.
      peerPins: ['ab'.repeat(31) + 'cd', 'f'.repeat(64)],
      allowedHosts: ['sledlog.example.com', '10.0.0.5:7400', 'h'],
      corsOrigins: ['https://app.example.com', 'http://localhost:3000', 'https://x.example'],
    })
    const env = ok({
      flags: { data: 'd' },
      env: {
        SLEDLOG_INSECURE: 'yes',
        SLEDLOG_API_TOKENS_FILE: 't.json',
        SLEDLOG_TLS_CERT: 'c.pem',
        SLEDLOG_TLS_KEY: 'k.pem',
        SLEDLOG_PEER_CA: 'ca.pem',
        SLEDLOG_PEER_PINS: `${PIN},${'0'.repeat(64)}`,
        SLEDLOG_ALLOWED_HOSTS: 'a.example, b.example',
        SLEDLOG_CORS_ORIGINS: 'https://a.example',
      },
    })
    expect(env.settings).toMatchObject({
      insecure: true,
      apiTokensFile: 't.json',
      peerPins: ['ab'.repeat(31) + 'cd', '0'.repeat(64)],
      allowedHosts: ['a.example', 'b.example'],
      corsOrigins: ['https://a.example'],
    })
    expect(env.origins).toMatchObject({ insecure: 'env', tlsCert: 'env', corsOrigins: 'env' })
    // Paths in a config file are relative to it, like the data directory.
    const file = ok({
      flags: { data: 'd' },
      file: {
        path: '/etc/sledlog/conf.json',
        value: { tlsCert: 'tls/c.pem', tlsKey: '/abs/k.pem', apiTokensFile: 'tokens.json', insecure: false },
      },
    })
    expect(file.settings).toMatchObject({
      tlsCert: '/etc/sledlog/tls/c.pem',
      tlsKey: '/abs/k.pem',
      apiTokensFile: '/etc/sledlog/tokens.json',
      insecure: false,
    })
    expect(file.files).toEqual([
      { setting: 'apiTokensFile', label: '/etc/sledlog/conf.json: apiTokensFile', path: '/etc/sledlog/tokens.json' },
      { setting: 'tlsCert', label: '/etc/sledlog/conf.json: tlsCert', path: '/etc/sledlog/tls/c.pem' },
      { setting: 'tlsKey', label: '/etc/sledlog/conf.json: tlsKey', path: '/abs/k.pem' },
    ])
    // Unset: the safe defaults, and nothing else.
    const none = ok({ flags: { data: 'd' } })
    expect(none.settings.insecure).toBe(false)
    for (const k of ['apiTokensFile', 'tlsCert', 'tlsKey', 'peerCa', 'peerPins', 'allowedHosts', 'corsOrigins'])
      expect(none.settings).not.toHaveProperty(k)
  })

  it('are all checked, every problem at once', () => {
    const p = problems({
      flags: {
        data: 'd',
        'tls-cert': 'c.pem',
        'peer-pin': ['abc', 'AB:CD'],
        'allowed-host': ['http://h', 'h/x', 'bücher.example', 'a b'],
        'cors-origin': ['*', 'null', 'https://a.example/app', 'ftp://a.example', 'https://u:p@a.example', 'a.example'],
      },
      env: { SLEDLOG_INSECURE: 'maybe' },
    })
    expect(p).toHaveLength(14)
    expect(p).toEqual(
      expect.arrayContaining([
        '--tls-cert: TLS needs both a certificate and its key; give --tls-key FILE too (or SLEDLOG_TLS_KEY)',
        expect.stringMatching(/^--peer-pin: "abc" is not a SHA-256 fingerprint/),
        expect.stringMatching(/^--peer-pin: "AB:CD" is not a SHA-256 fingerprint/),
        expect.stringMatching(/^--allowed-host: "http:\/\/h" must be a bare host name/),
        expect.stringMatching(/^--allowed-host: "h\/x" must be a bare host name/),
        '--allowed-host: "bücher.example" must be written in ASCII, as the Host header carries it: ' +
          'xn--bcher-kva.example',
        expect.stringMatching(/^--allowed-host: "a b" is not a host name/),
        expect.stringMatching(/^--cors-origin: "\*" is not allowed: list each origin/),
        expect.stringMatching(/^--cors-origin: "null" is not allowed/),
        expect.stringMatching(/^--cors-origin: "https:\/\/a\.example\/app" must be an origin only/),
        '--cors-origin: "ftp://a.example" must be an http:// or https:// origin',
        '--cors-origin: "https://***@a.example" must not carry credentials',
        expect.stringMatching(/^--cors-origin: "a\.example" is not an origin/),
        expect.stringMatching(/^SLEDLOG_INSECURE: "maybe" is not a boolean/),
      ]),
    )
    expect(problems({ flags: { data: 'd' }, env: { SLEDLOG_TLS_KEY: 'k.pem' } })).toEqual([
      'SLEDLOG_TLS_KEY: TLS needs both a certificate and its key; give --tls-cert FILE too (or SLEDLOG_TLS_CERT)',
    ])
  })
})

describe('messages', () => {
  it('never show the token, nor the credentials of a URL', () => {
    const secret = 'hunter2-very-secret'
    const p = problems({
      flags: { data: 'd', peer: [`ws://admin:${secret}@h:1`, `ws://admin:${secret}/x@h:1`] },
      file: { path: 'c.json', value: { token: 12345678, peers: `ws://u:${secret}@h` } },
    })
    expect(p).toEqual([
      '--peer: "ws://***@h:1" must not carry credentials (use the token setting)',
      '--peer: "ws://***@h:1" must not carry credentials (use the token setting)',
      'c.json: token: token must be a string, got (value hidden: a secret)',
    ])
    expect(problems({ file: { path: 'c.json', value: { data: 'd', peers: `ws://u:${secret}@h` } } })).toEqual([
      'c.json: peers: must be a list of strings, got "ws://***@h"',
    ])
    expect(p.join('\n')).not.toContain(secret)
    expect(p.join('\n')).not.toContain('12345678')
  })
})

describe('admin keys (PROTOCOL.md §6.5)', () => {
  const ADMIN = testKeys(701).sled
  const IDENTITY = `01${'00'.repeat(31)}`

  it('come from --admin-key, SLEDLOG_ADMIN_KEYS or adminKeys, deduplicated', () => {
    expect(ok({ flags: { data: 'd', 'admin-key': [ADMIN, ADMIN] } }).settings.adminKeys).toEqual([ADMIN])
    expect(ok({ flags: { data: 'd' }, env: { SLEDLOG_ADMIN_KEYS: `${ADMIN},` } }).settings.adminKeys).toEqual([ADMIN])
    const file = { path: 'c.json', value: { data: 'd', adminKeys: [ADMIN] } }
    expect(ok({ file }).settings.adminKeys).toEqual([ADMIN])
    expect(ok({ flags: { data: 'd' }, env: { SLEDLOG_ADMIN_KEYS: ',' } }).settings.adminKeys).toBeUndefined()
  })

  it('refuses what is not a key, and a weak key anyone could sign for', () => {
    expect(problems({ flags: { data: 'd', 'admin-key': ['zz', IDENTITY] } })).toEqual([
      '--admin-key: "zz" is not a public key (64 lowercase hex characters)',
      `--admin-key: "${IDENTITY}" is a weak key anyone could sign for; it is never an admin key`,
    ])
  })

  it('resolveAdminKeys reads SLEDLOG_ADMIN_KEYS for the offline commands', () => {
    expect(resolveAdminKeys({})).toEqual([])
    expect(resolveAdminKeys({ SLEDLOG_ADMIN_KEYS: ` ${ADMIN} ,${ADMIN}` })).toEqual([ADMIN])
    expect(() => resolveAdminKeys({ SLEDLOG_ADMIN_KEYS: 'nope' })).toThrow(/SLEDLOG_ADMIN_KEYS: "nope" is not/)
  })
})
