/**
 * `sledlog recover`: the operator's way out of a recovery that cannot be proven (docs/README
 * "After a lost disk"). `--accept-head-risking-fork` tells a recovering node to append from the
 * head it holds now, without a quorum's proof; the flag's name is the warning.
 */
import type { NoRecoveryStatus } from '../../http/recovery.js'
import type { RecoveryStatus } from '../../sync/recovery.js'
import { intFlag, parseFlags } from '../args.js'
import { CliError, EXIT, UsageError } from '../cli-error.js'
import { CLIENT_FLAGS, CLIENT_HELP, connect } from '../client-options.js'
import { help, type Command } from '../command.js'
import { notice, write } from '../io.js'
import { recoverCommand } from './rotate-key.js'
import { jsonLine, visible } from '../visible.js'

const OPTIONS = {
  url: { type: 'string' },
  'accept-head-risking-fork': { type: 'boolean' },
  head: { type: 'string' },
  json: { type: 'boolean' },
  ...CLIENT_FLAGS,
  help: { type: 'boolean', short: 'h' },
} as const

/**
 * `sledlog recover`: the two ways out of a lost disk. `--new-key` (a stopped node moves to a
 * successor key: rotate-key.ts) and `--accept-head-risking-fork` (a running node appends from
 * the head it holds) are one command because an operator looks for one.
 */
export const recover: Command = {
  name: 'recover',
  get help(): string {
    return `${acceptHead.help}\n\nOr, instead (the old key's history stays as it is):\n\n${recoverCommand.help}`
  },
  async run(argv, io) {
    if (argv.includes('--help') || argv.includes('-h')) return help(io, recover)
    if (argv.includes('--new-key')) return recoverCommand.run(argv, io)
    if (argv.some((a) => a === '--data' || a.startsWith('--data=')))
      throw new UsageError(
        'recover --data moves a stopped node to a new key: give --new-key too ' +
          '(or --accept-head-risking-fork --url URL to decide for a running node)',
      )
    return acceptHead.run(argv, io)
  },
}

const acceptHead: Command = {
  name: 'recover',
  help: `Usage: sledlog recover --accept-head-risking-fork --url URL [--head N] [--json]

A node whose database is new but whose key is not (a lost disk, a key restored from backup)
refuses writes (503 RECOVERING) until enough of its configured peers signed how many of its
entries they hold and it holds that many again: it must never sign a seq twice. When those
peers cannot come back, an operator decides:

  --accept-head-risking-fork  append from the own entries the node holds now, without proof.
                              Any entry at that seq or later that another node holds (a peer
                              that is down, an old replica) becomes a fork of this sled: every
                              node then reads the sled only below that seq, for good. Bringing
                              the peers back, or moving the node to a new key, risks nothing.
  --head N                    the head you accept: the own entries the node holds (status:
                              recovery.holding); default what it holds when asked. If it holds
                              another number when the decision arrives, it is refused.
  --json                      print the node's recovery status afterwards as one JSON line

The decision needs an API token with the admin scope; it is logged by the node and shown in
its status (recovery.decision), also after a restart.

${CLIENT_HELP}

Exit codes: 0 the node accepted; 1 it refused (not recovering, head moved, no admin token) or
is unreachable; 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, acceptHead)
    if (v['accept-head-risking-fork'] !== true)
      throw new UsageError('give --accept-head-risking-fork (see sledlog recover --help for what it risks)')
    if (v.url === undefined) throw new UsageError('recover needs --url URL (the running, recovering node)')
    const wanted = intFlag(v.head, 'head')
    const client = await connect(v.url, v, io, 'recover')
    const say = notice(io, 'recover')
    try {
      const st = ((await client.get('/v1/status')) as { recovery?: RecoveryStatus | NoRecoveryStatus }).recovery
      if (st === undefined) throw new CliError('the node reports no recovery state (an older version?)')
      if (st.state !== 'waiting') throw new CliError(`the node is not recovering (recovery: ${st.state})`)
      const head = wanted ?? st.holding
      say(
        `accepting head ${head}: appends resume at seq ${head}; ` +
          (st.missing.length > 0 ? `not heard from: ${st.missing.join(', ')}` : 'every configured peer answered'),
      )
      if (st.need > head)
        say(
          `warning: a peer signed that it holds ${st.need} of this node's entries: ` +
            `seqs ${head}..${st.need - 1} will be forked for certain`,
        )
      const answer = (await client.post('/v1/recovery/accept-head-risking-fork', { head })) as {
        recovery: RecoveryStatus
      }
      await write(io.stdout, v.json === true ? `${jsonLine(answer.recovery)}\n` : describe(answer.recovery))
      return EXIT.OK
    } finally {
      client.close()
    }
  },
}

function describe(r: RecoveryStatus): string {
  const d = r.decision
  const by = d === null ? '' : ` by ${d.by}`
  return `${visible(`recovery ${r.state}${by}: appends resume at seq ${d?.head ?? r.holding}`)}\n`
}
