import { describe, expect, it } from 'vitest'
import { hasUrlCredentials, redactUrls } from '../../src/config/redact.js'

describe('redactUrls', () => {
  it.each([
    ['http://user:pass@host:1/x', 'http://***@host:1/x'],
    ['ws://user@host', 'ws://***@host'],
    ['wss://:pass@host', 'wss://***@host'],
    ['http://u:p@ss@host/a', 'http://***@host/a'],
    // Unparseable (a "/" in the password): still redacted, over-redacting the host.
    ['http://u:pa/ss@host', 'http://***@host'],
    ['connect failed to ws://a:b@h:1 and http://c:d@e', 'connect failed to ws://***@h:1 and http://***@e'],
    ['"https://x:y@h"', '"https://***@h"'],
    ['http://host:1/path', 'http://host:1/path'],
    ['no url at all: user@example.com', 'no url at all: user@example.com'],
  ])('%s', (text, want) => {
    expect(redactUrls(text)).toBe(want)
    expect(hasUrlCredentials(text)).toBe(text !== want)
  })
})
