// Prints the README's Performance table (markdown) from a results file of
// `npm run bench`: one row per scenario, every server of the run.
//   node bench/readme-table.js [bench/results/latest.json]
// Columns: the raw baseline of the scenario's group (absolute), the other
// servers as ratios to it, ours ÷ @tus/server, the cost of ours' variants as
// ratios to ours itself (fsync off, metrics on, onProgress, two instances on
// PostgreSQL), and ours' peak RSS (beside raw in Fastify's, each with the RSS
// it had when the load began) and CPU. A scenario measured
// against another one (relativeTo: checksums, the IETF draft, 4 GiB) shows
// ours against ours in that one.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const file = process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), 'results', 'latest.json')
const { meta, scenarios } = JSON.parse(readFileSync(file, 'utf8'))

/** Each column's server, per group (disk, S3, Azure); undefined where the group has none. */
const ROLES = {
  baseline: ['raw', 'raw-s3', 'raw-azure'],
  fsync: ['raw-fsync'],
  fastify: ['raw-fastify'],
  peerNode: ['tus-node'],
  peer: ['tus-fastify', 'tus-s3', 'tus-azure'],
  ours: ['ours', 'ours-s3', 'ours-azure'],
  metrics: ['ours-metrics'],
  nofsync: ['ours-nofsync'],
  progress: ['ours-progress'],
  pg2: ['ours-pg2']
}
const pick = (servers, role) => ROLES[role].map((name) => [name, servers[name]]).find(([, s]) => s !== undefined && s.median !== undefined)

const num = (x) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2))
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? '–' : `${(a / b).toFixed(2)}×`)
const unitOf = (s) => (s.unit === 'MiB/s' ? 'MiB/s' : '/s')
const cpuOf = (s, unit) => {
  if (s.cpuMsPerOp !== undefined && unit !== 'MiB/s') return `${s.cpuMsPerOp.toFixed(2)} ms/op`
  if (s.cpuPerGiB !== undefined) return `${s.cpuPerGiB.toFixed(2)} s/GiB`
  return '–'
}

/** Peak RSS, and the RSS at the start of the load where the results file has it. */
const rssOf = (s) => `${Math.round(s.peakRssMiB)} MiB${s.startRssMiB === undefined ? '' : ` (${Math.round(s.startRssMiB)} at start)`}`

const rows = []
for (const [name, scenario] of Object.entries(scenarios)) {
  const servers = scenario.servers ?? {}
  const get = (role) => pick(servers, role)?.[1]
  const ours = get('ours')
  if (ours === undefined) continue
  const base = get('baseline')
  const cells = [
    `${name}`,
    base === undefined ? '–' : `${num(base.median)} ${unitOf(scenario)}`,
    ratio(get('fsync')?.median, base?.median),
    ratio(get('fastify')?.median, base?.median),
    ratio(get('peerNode')?.median, base?.median),
    ratio(get('peer')?.median, base?.median),
    base === undefined
      ? (ours.relative === undefined ? `${num(ours.median)} ${unitOf(scenario)}` : `${num(ours.median)} ${unitOf(scenario)}: **${ours.relative.throughputRatio.toFixed(2)}× its ${ours.relative.to}**`)
      : `**${ratio(ours.median, base.median)}**`,
    ratio(ours.median, get('peer')?.median),
    ratio(get('nofsync')?.median, ours.median),
    ratio(get('metrics')?.median, ours.median),
    ratio(get('progress')?.median, ours.median),
    ratio(get('pg2')?.median, ours.median),
    rssOf(ours),
    get('fastify') === undefined ? '–' : rssOf(get('fastify')),
    cpuOf(ours, scenario.unit)
  ]
  const noisy = Object.values(servers).reduce((n, s) => n + (s.noisyRuns ?? 0), 0)
  rows.push(`| ${cells.join(' | ')} |${noisy > 0 ? ` ${noisy} noisy |` : ' |'}`)
}

console.log(`| scenario | baseline | raw-fsync | raw in Fastify | @tus/server | @tus/server in Fastify | **fastify-tus** | ours ÷ @tus/server in Fastify | fsync off (÷ ours) | metrics on (÷ ours) | onProgress (÷ ours) | 2 instances, PostgreSQL (÷ ours) | ours peak RSS | raw in Fastify peak RSS | ours CPU | noisy runs |`)
console.log(`|${' --- |'.repeat(16)}`)
for (const row of rows) console.log(row)
console.log(`\n${meta.rounds} rounds, medians; node ${meta.node}; ${meta.cpus}; ${meta.date}; commit ${meta.commit ?? '?'}`)
