/**
 * Writing responses: JSON bodies and the one error format, `{"error": {"code", "message"}}`,
 * with the status from the single code→status table.
 */
import type { ServerResponse } from 'node:http'
import { isSledlogError } from '../errors.js'
import { HTTP_STATUS } from './status-codes.js'

/** Sends a JSON response. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  })
  res.end(text)
}

/** Sends a plain-text response. */
export function sendText(res: ServerResponse, status: number, contentType: string, text: string): void {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/**
 * Sends an error with the status from {@link HTTP_STATUS}. Anything that is not a SledlogError
 * is a bug: it answers 500 INTERNAL without leaking its message.
 */
export function sendError(res: ServerResponse, err: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (res.headersSent) {
    // A streaming response already started: the only way left to signal failure is to cut it.
    res.destroy()
    return
  }
  if (!isSledlogError(err)) {
    sendJson(res, 500, { error: { code: 'INTERNAL', message: 'internal error' } }, headers)
    return
  }
  const body: { code: string; message: string; details?: unknown } = { code: err.code, message: err.message }
  if (err.details !== undefined) body.details = err.details
  sendJson(res, HTTP_STATUS[err.code], { error: body }, headers)
}
