/**
 * Which node a client command works on: a running one (`--url`, over HTTP) or a stopped one's
 * data directory (`--data`, opened in-process). Exactly one must be given.
 */
import { UsageError } from './cli-error.js'
import { type ClientFlagValues, connect, hasClientFlags } from './client-options.js'
import type { NodeClient } from './http-client.js'
import type { CliIo } from './io.js'

/** A running node or a data directory. */
export type Target =
  | { readonly kind: 'url'; readonly client: NodeClient }
  | { readonly kind: 'data'; readonly dir: string }

/** The target of a command from its `--url` and `--data` flags (and the connection flags). */
export async function targetOf(
  values: { readonly url?: string | undefined; readonly data?: string | undefined } & ClientFlagValues,
  command: string,
  io: CliIo,
): Promise<Target> {
  if (values.url !== undefined && values.data !== undefined)
    throw new UsageError('give either --url (a running node) or --data (a stopped node), not both')
  if (values.url !== undefined) return { kind: 'url', client: await connect(values.url, values, io, command) }
  if (values.data !== undefined) {
    if (hasClientFlags(values)) throw new UsageError('--api-token-file, --api-token and --ca only apply with --url')
    return { kind: 'data', dir: values.data }
  }
  throw new UsageError(`${command} needs --url URL (a running node) or --data DIR (a stopped node's data directory)`)
}
