/**
 * Which node a client command works on: a running one (`--url`, over HTTP) or a stopped one's
 * data directory (`--data`, opened in-process). Exactly one must be given.
 */
import { urlFlag } from './args.js'
import { UsageError } from './cli-error.js'
import { NodeClient } from './http-client.js'

/** A running node or a data directory. */
export type Target =
  | { readonly kind: 'url'; readonly client: NodeClient }
  | { readonly kind: 'data'; readonly dir: string }

/** The target of a command from its `--url` and `--data` flags. */
export function targetOf(
  values: { readonly url?: string | undefined; readonly data?: string | undefined },
  command: string,
): Target {
  if (values.url !== undefined && values.data !== undefined)
    throw new UsageError('give either --url (a running node) or --data (a stopped node), not both')
  if (values.url !== undefined) return { kind: 'url', client: new NodeClient(urlFlag(values.url)) }
  if (values.data !== undefined) return { kind: 'data', dir: values.data }
  throw new UsageError(`${command} needs --url URL (a running node) or --data DIR (a stopped node's data directory)`)
}
