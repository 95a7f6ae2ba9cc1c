import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES, isSledlogError, sledlogError, type ErrorCode } from '../src/errors.js'
import { HTTP_STATUS } from '../src/http/status-codes.js'

describe('error codes', () => {
  it('are each documented in docs/ERRORS.md with the status the HTTP table gives', async () => {
    const doc = await readFile(new URL('../docs/ERRORS.md', import.meta.url), 'utf8')
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const row = doc.split('\n').find((l) => l.startsWith(`| ${code} |`))
      expect(row, `${code} missing from docs/ERRORS.md`).toBeDefined()
      expect(row?.split('|')[2]?.trim(), `${code} status in docs/ERRORS.md`).toBe(String(HTTP_STATUS[code]))
    }
  })

  it('carry their code, details and cause', () => {
    const cause = new Error('disk')
    const err = sledlogError('STORE_WRITE_FAILED', 'write failed', { n: 1 }, cause)
    expect(isSledlogError(err, 'STORE_WRITE_FAILED')).toBe(true)
    expect(isSledlogError(err, 'LOG_CLOSED')).toBe(false)
    expect(err.details).toEqual({ n: 1 })
    expect(err.cause).toBe(cause)
  })
})
