/**
 * `sledlog harness`: runs a local cluster of node processes under a seeded fault schedule and a
 * steady workload, checks every invariant while it runs and after a final heal, and prints a
 * report (docs/HARNESS.md). Exit 0 when every invariant held, 1 otherwise; a failing run prints
 * its seed and the command line that replays it.
 */
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { intFlag, parseFlags } from '../args.js'
import { EXIT, UsageError } from '../cli-error.js'
import { help, type Command } from '../command.js'
import { write } from '../io.js'

const OPTIONS = {
  nodes: { type: 'string' },
  duration: { type: 'string' },
  seed: { type: 'string' },
  faults: { type: 'string' },
  rate: { type: 'string' },
  'ingest-rate': { type: 'string' },
  'ingest-bus': { type: 'string' },
  attacks: { type: 'string' },
  'check-interval': { type: 'string' },
  'converge-timeout': { type: 'string' },
  'recovery-mode': { type: 'string' },
  json: { type: 'string' },
  dir: { type: 'string' },
  keep: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const

/** Parses a positive decimal flag value (seconds, rates). */
function numberFlag(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined
  const n = /^\d+(\.\d+)?$/.test(value) ? Number(value) : NaN
  if (!(Number.isFinite(n) && n >= min && n <= max))
    throw new UsageError(`--${flag} ${JSON.stringify(value)} must be a number in ${min}..${max}`)
  return n
}

/** `sledlog harness`. */
export const harness: Command = {
  name: 'harness',
  help: `Usage: sledlog harness [--nodes N] [--duration SECONDS] [--seed S] [--faults LIST] [--rate N] [--json PATH]

Starts N node processes in a full mesh (every link through a fault-injecting proxy) and, for the
given duration, appends and ingests on every node while a seeded schedule injects faults; slow
subscribers and durable consumers follow every node. Invariants are checked on every reachable
node every few seconds and, after a final heal, on every node's whole log: no acknowledged
append lost, no duplicate or missing seq, identical logs, no forged or deleted data accepted,
every ingest id accounted for, every stream and consumer complete. Progress goes to stderr,
the report to stdout. See docs/HARNESS.md.

Options:
  --nodes N               nodes (3)
  --duration SECONDS      length of the faulty part of the run (60)
  --seed S                seed of the schedule and workload (random; printed, to replay)
  --faults LIST           comma-separated: partition, kill, stop, wipe, wipe-peers-down,
                          rotate-partitioned, revoke-partitioned, wipe-holding-acks, latency,
                          hostile; or all (default) or none
  --rate N                appended events per second per node (10)
  --ingest-rate N         ingested events per second per node (half of --rate)
  --ingest-bus N          ingest bus capacity of each node (32: batches overflow it, so drops
                          and gap sentinels happen); 0 keeps the nodes' default (10000)
  --attacks LIST          hostile peer attacks: forge, tamper, delete, rebind, garbage,
                          equivocate, equivocate-one; or all (default) or none
  --check-interval MS     how often the running checks read every node (3000)
  --converge-timeout MS   how long the cluster may take to converge at the end (90000)
  --recovery-mode MODE    the nodes' --recovery-mode after a lost disk: succession (their
                          default; expected) or resume (re-signs seqs: the run must fail)
  --json PATH             also write the full report (figures, violations, schedule) as JSON
  --dir DIR               keep the nodes' data under DIR (default: a temp dir, removed after
                          a passing run, kept after a failing one)
  --keep                  keep the data directory after a passing run too
  -q, --quiet             no progress lines on stderr

Exit codes: 0 every invariant held; 1 a violation (the report lists them with the replay
command); 2 bad usage.`,
  async run(argv, io) {
    const v = parseFlags(argv, OPTIONS)
    if (v.help === true) return help(io, harness)
    const [
      { runHarness },
      { formatReport, reportJson },
      { parseFaultList },
      { HOSTILE_ATTACKS, DEFAULT_ATTACKS },
      { randomSeed },
    ] = await Promise.all([
      import('../../harness/run.js'),
      import('../../harness/report.js'),
      import('../../harness/schedule.js'),
      import('../../harness/hostile-peer.js'),
      import('../../harness/random.js'),
    ])
    const nodes = intFlag(v.nodes, 'nodes', 1, 32) ?? 3
    const duration = numberFlag(v.duration, 'duration', 1, 86_400) ?? 60
    const seed = intFlag(v.seed, 'seed', 0, 2 ** 32 - 1) ?? randomSeed()
    let faults: ReturnType<typeof parseFaultList>
    try {
      faults = parseFaultList(v.faults ?? 'all')
    } catch (err) {
      throw new UsageError(`--faults: ${(err as Error).message}`)
    }
    const rate = numberFlag(v.rate, 'rate', 0, 10_000) ?? 10
    const ingestRate = numberFlag(v['ingest-rate'], 'ingest-rate', 0, 10_000)
    const ingestBus = intFlag(v['ingest-bus'], 'ingest-bus', 0, 1_000_000)
    let attacks = DEFAULT_ATTACKS
    if (v.attacks !== undefined) {
      const t = v.attacks.trim()
      const list = t === 'all' ? [...HOSTILE_ATTACKS] : t === 'none' ? [] : t.split(',').map((s) => s.trim())
      for (const a of list)
        if (!(HOSTILE_ATTACKS as readonly string[]).includes(a))
          throw new UsageError(`--attacks: unknown attack ${JSON.stringify(a)} (known: ${HOSTILE_ATTACKS.join(', ')})`)
      attacks = list as typeof attacks
    }
    const checkIntervalMs = intFlag(v['check-interval'], 'check-interval', 100, 600_000)
    const convergeTimeoutMs = intFlag(v['converge-timeout'], 'converge-timeout', 1000, 3_600_000)
    const recoveryMode = v['recovery-mode']
    if (recoveryMode !== undefined && recoveryMode !== 'succession' && recoveryMode !== 'resume')
      throw new UsageError(`--recovery-mode ${JSON.stringify(recoveryMode)} must be succession or resume`)
    const quiet = v.quiet === true
    if (!quiet) await write(io.stderr, `sledlog harness: seed ${seed}\n`)
    // A signal would end this process without its 'exit' handlers, leaving every node process
    // (a SIGSTOPped one frozen) running: exit instead, so the cluster's exit hook kills them.
    const onSignal = (signal: NodeJS.Signals): void => {
      process.stderr.write(`sledlog harness: ${signal}: stopping the nodes (replay with --seed ${seed})\n`)
      process.exit(signal === 'SIGINT' ? 130 : 143)
    }
    process.once('SIGINT', onSignal)
    process.once('SIGTERM', onSignal)
    const result = await runHarness({
      nodes,
      durationMs: Math.round(duration * 1000),
      seed,
      faults,
      rate,
      ...(ingestRate === undefined ? {} : { ingestRate }),
      ...(ingestBus === undefined ? {} : { ingestBus }),
      attacks,
      ...(checkIntervalMs === undefined ? {} : { checkIntervalMs }),
      ...(convergeTimeoutMs === undefined ? {} : { convergeTimeoutMs }),
      ...(recoveryMode === undefined ? {} : { recoveryMode }),
      ...(v.dir === undefined ? {} : { baseDir: resolve(v.dir) }),
      keepData: v.keep === true,
      ...(quiet ? {} : { progress: (line: string) => void write(io.stderr, `${line}\n`) }),
    })
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    if (v.json !== undefined) await writeFile(v.json, reportJson(result))
    await write(io.stdout, formatReport(result))
    if (!result.ok && result.nodeLogs !== null && !quiet)
      await write(io.stderr, `\nnode state and logs:\n${result.nodeLogs}\n`)
    return result.ok ? EXIT.OK : EXIT.FAILURE
  },
}
