// The benchmark: `npm run bench` (builds first). Not a test.
//
// For every scenario and round, each server is started in its own child
// process (bench/servers/<name>.js), the load client runs in another
// (bench/load.js), and the server is stopped again. The server's peak RSS is
// sampled from /proc/<pid>/status every 50 ms, and its RSS when the load begins
// is kept beside it (peak minus start is what the load added: the gap between
// servers there is their upload paths', not their libraries' idle footprint); its CPU time is read from
// /proc/<pid>/stat when the load is done, before it is stopped (minus what it
// had used when the load started, so start-up and HEAD's setup are not counted),
// in all and for its main thread alone (JavaScript and the socket reads, apart
// from libuv's pool, where file writes and fsync run).
// A run counts only if every upload's final offset (as answered) equals its
// length and the upload directory holds exactly the bytes sent.
//
// The IETF draft "Resumable Uploads for HTTP" (interop version 9), which ours serves
// on the same routes, is measured beside tus for the same uploads, ours only:
// small-draft is small-cwu's uploads each made by one creation POST with
// `Upload-Complete: ?1` and the whole body; large-8m-draft is large-8m's upload
// created by a POST with `Upload-Complete: ?0` and no body, then appended in
// 8 MiB PATCHes in application/partial-upload (`Upload-Complete: ?1` on the last).
// Ours sends its 104 interim responses (draftInterimResponses, default on): the
// upload's URL at creation, progress during a long append; the load client counts
// them. The opt-in server ours-no104 turns them off, to see what they cost.
//
// Environment:
//   BENCH_QUICK=1                 smaller sizes, for a smoke run
//   BENCH_ROUNDS=3                rounds per scenario (servers alternate their order)
//   BENCH_ONLY=small,head         scenarios to run
//   BENCH_SERVERS=raw,ours        servers to run (also opt-in: ours-nofsync, ours-pg1, ours-metrics, ours-metrics-prom,
//                                 ours-progress, ours-no104)
//   BENCH_POSTGRES_URL=url        PostgreSQL for ours-pg2 / ours-pg1 (default: TUS_TEST_POSTGRES_URL,
//                                 else postgres://postgres@127.0.0.1:5432/test); without a
//                                 reachable server they are left out with a line saying so
//   BENCH_CPU_PROF=dir            run our server(s) with --cpu-prof into dir
//   BENCH_CPU_PROF_ALL=1          ... and the other servers too (to compare where the time goes)
//   BENCH_RESULTS=file            JSON output (default bench/results/latest.json)
//   BENCH_QUIET_WAIT=120          before each run, wait up to this many seconds for the
//                                 machine to be idle (other processes < 0.25 cores); 0 = don't
//   BENCH_RUN_TIMEOUT=600         a load run without a result after this many seconds fails
//   BENCH_NOISY_RETRIES=2         a run during which other processes used > 0.25 cores is
//                                 run again, up to this many times (the last one counts)
//   BENCH_IDLE_BEFORE=0           seconds each server idles between its start and the load:
//                                 with 15, V8's memory reducer has shrunk the young generation
//                                 a start-up grew (about 8 s after it), as in a server that has
//                                 been up a while; peak RSS is then measured from the end of the wait
//
// Object storage (S3), a group of its own: its servers run its scenarios only.
//   BENCH_S3=1                    run the S3 group (servers ours-s3, tus-s3, raw-s3; scenarios
//                                 s3-large-64m, s3-large-8m, s3-large-5m, s3-small, s3-small-cwu,
//                                 s3-concurrent) instead of the disk one. Naming S3 servers or
//                                 scenarios in BENCH_SERVERS / BENCH_ONLY selects them too (and
//                                 narrows the group); both groups can run in one invocation.
//   BENCH_S3_ENDPOINT=url         the S3-compatible server (default http://127.0.0.1:9000),
//                                 path-style addressing, region us-east-1
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
//                                 its keys (default tusaccess / tussecret)
//   BENCH_S3_PART_SIZE=8388608    part size of all three S3 servers (at least 5 MiB on most servers)
//   BENCH_S3_PROCESSES=regex      the S3 server's processes, matched on /proc/<pid>/cmdline, whose
//                                 CPU is reported beside the server's and not counted as other
//                                 load (default: swift|minio|radosgw|memcached)
//   BENCH_S3_VERIFY_ALL=1         read back and hash every object (default: a sample of 8 per run,
//                                 every object's size is checked from the bucket listing)
// Each S3 run gets a bucket of its own, created before the server starts and emptied and
// deleted after it stopped. ours-s3 is the plugin with its s3 option (objects at
// `uploads/<id>`, SQLite metadata); tus-s3 is @tus/server with @tus/s3-store in Fastify
// (objects at `<id>`, beside `<id>.info`); raw-s3 (bench/servers/raw-s3.js, whose comment says
// what it does and does not do) streams each body into UploadPart requests (objects at `<id>`).
// All three use @aws-sdk/client-s3 with the same settings (bench/servers/common.js) and its
// default HTTP handler: keep-alive, at most 50 sockets per client (s3-concurrent's 64
// uploads share them).
// Instead of the upload directory, a run is verified by listing the bucket (every upload's
// object, with its length; nothing else but the store's own side objects, no multipart
// upload left in progress) and reading back a sample of the objects, whose sha256 must be
// that of the bytes the load client sent.
//
// Object storage (Azure Blob Storage), a group of its own the same way, on Azurite
// (Microsoft's emulator, a dev dependency) unless told otherwise:
//   BENCH_AZURE=1                 run the Azure group (servers ours-azure, tus-azure, raw-azure;
//                                 scenarios azure-large-64m, azure-large-8m, azure-small,
//                                 azure-concurrent: the same shapes as their s3- namesakes).
//                                 BENCH_SERVERS / BENCH_ONLY select them as for S3; BENCH_S3=1 and
//                                 BENCH_AZURE=1 together run both groups
//   BENCH_AZURE_CONNECTION_STRING=...
//                                 the storage account to use (default: the runner starts one
//                                 Azurite blob service for the whole group, on a free port of
//                                 127.0.0.1 with a workspace in the temp directory, and stops it
//                                 and removes the workspace at the end)
//   BENCH_AZURE_BLOCK_SIZE=8388608
//                                 block size of ours-azure and raw-azure (tus-azure has none: it
//                                 appends each PATCH body whole)
//   BENCH_AZURE_PROCESSES=regex   with BENCH_AZURE_CONNECTION_STRING: the blob service's processes,
//                                 matched on /proc/<pid>/cmdline, whose CPU is reported beside the
//                                 server's (default: azurite); the Azurite the runner starts is
//                                 counted by its pid
//   BENCH_AZURE_VERIFY_ALL=1      read back and hash every blob (default: a sample of 8 per run)
// Each Azure run gets a container of its own, created before the server starts and deleted
// after it stopped. ours-azure is the plugin with its azure option (block blobs at
// `uploads/<id>`, SQLite metadata); tus-azure is @tus/server with @tus/azure-store in Fastify
// (an append blob `<id>` per upload, bench/servers/tus-azure.js); raw-azure
// (bench/servers/raw-azure.js) streams each body into Put Block requests of the block size
// and commits the block list at the end (block blobs at `<id>`). All three use
// @azure/storage-blob with its default pipeline (keep-alive).
// A run is verified as on S3: the container's listing (every upload's blob, with its
// length; nothing else but the store's own side blobs; no blob with only uncommitted
// blocks, found by listing with and without uncommitted blobs) and a sample read back.
//
// ours-pg2 is the scale-out case: two instances of ours, one PostgreSQL schema and
// one upload directory between them, and the load client sending each request to
// the next instance in turn (no sticky sessions), as a round-robin load balancer
// would. Its CPU and RSS are the two instances' sums, and PostgreSQL's own CPU is
// reported beside them (and not counted as other load).
//
// Other processes' CPU during each measured phase (machine busy time from
// /proc/stat minus the server's, the client's, and PostgreSQL's or the object
// storage's where they are counted, as storageCpuSeconds) is recorded, and runs that
// shared the machine are flagged: on a small machine they skew the comparison.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir, cpus, totalmem, loadavg } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { createHash } from 'node:crypto'
import { createServer as createNetServer } from 'node:net'
import { createRequire } from 'node:module'

const here = dirname(fileURLToPath(import.meta.url))
const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

const QUICK = process.env.BENCH_QUICK === '1'
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error('BENCH_ROUNDS must be a positive integer')
const CPU_PROF = process.env.BENCH_CPU_PROF ? resolve(process.env.BENCH_CPU_PROF) : undefined
const CPU_PROF_ALL = process.env.BENCH_CPU_PROF_ALL === '1'
const RESULTS = resolve(process.env.BENCH_RESULTS ?? join(here, 'results', 'latest.json'))
const CLK_TCK = clockTicks()
const QUIET_WAIT = Number(process.env.BENCH_QUIET_WAIT ?? 120)
const QUIET_CORES = 0.25
const NOISY_RETRIES = Number(process.env.BENCH_NOISY_RETRIES ?? 2)
const RUN_TIMEOUT = Number(process.env.BENCH_RUN_TIMEOUT ?? 600)
const IDLE_BEFORE = Number(process.env.BENCH_IDLE_BEFORE ?? 0)
if (!(IDLE_BEFORE >= 0)) throw new Error('BENCH_IDLE_BEFORE must be a number of seconds, 0 or more')

const S3_MODE = process.env.BENCH_S3 === '1'
const S3_ENDPOINT = process.env.BENCH_S3_ENDPOINT || 'http://127.0.0.1:9000'
const S3_PART_SIZE = Number(process.env.BENCH_S3_PART_SIZE ?? 8 * MiB)
if (!Number.isInteger(S3_PART_SIZE) || S3_PART_SIZE < 1) throw new Error('BENCH_S3_PART_SIZE must be a positive integer')
const S3_CREDENTIALS = { accessKeyId: process.env.AWS_ACCESS_KEY_ID || 'tusaccess', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY || 'tussecret' }
const S3_PROCESSES = new RegExp(process.env.BENCH_S3_PROCESSES || 'swift|minio|radosgw|memcached')
const S3_VERIFY_ALL = process.env.BENCH_S3_VERIFY_ALL === '1'
const VERIFY_SAMPLE = 8

const AZURE_MODE = process.env.BENCH_AZURE === '1'
// Without it the runner starts an Azurite, and its connection string is set then.
let azureConnectionString = process.env.BENCH_AZURE_CONNECTION_STRING || undefined
const AZURE_BLOCK_SIZE = Number(process.env.BENCH_AZURE_BLOCK_SIZE ?? 8 * MiB)
if (!Number.isInteger(AZURE_BLOCK_SIZE) || AZURE_BLOCK_SIZE < 1) throw new Error('BENCH_AZURE_BLOCK_SIZE must be a positive integer')
const AZURE_PROCESSES = new RegExp(process.env.BENCH_AZURE_PROCESSES || 'azurite')
const AZURE_VERIFY_ALL = process.env.BENCH_AZURE_VERIFY_ALL === '1'

const LARGE = QUICK ? 64 * MiB : 1 * GiB
const SMALL_UPLOADS = QUICK ? 200 : 2000
const CONCURRENT_SIZE = QUICK ? 1 * MiB : 16 * MiB
const HEAD_REQUESTS = QUICK ? 2000 : 20000
const OBJECT_LARGE = QUICK ? 64 * MiB : 256 * MiB
// Small uploads are slow on object storage (several requests each): fewer of them than on disk.
const OBJECT_SMALL_UPLOADS = QUICK ? 200 : 500
const OBJECT_SMALL_SIZES = [1 * KiB, 4 * KiB, 16 * KiB, 64 * KiB]
const OBJECT_CONCURRENT = QUICK ? 16 : 64
const OBJECT_CONCURRENT_SIZE = 16 * MiB

const SERVERS = {
  raw: { file: 'raw.js' },
  // The baseline plus fdatasync before each answer: the limit for a server that,
  // like ours by default, answers an offset only once its bytes are on disk.
  // A reference beside the baseline, not the baseline: the issue's targets are set against raw.
  'raw-fsync': { file: 'raw.js', env: { BENCH_RAW_FSYNC: '1' }, scenarios: ['large-64m', 'large-8m', 'small', 'small-cwu', 'concurrent'] },
  // The baseline's handler inside a Fastify app: the least a Fastify plugin can cost,
  // the framework's own memory and per-request work included. A reference beside the baseline.
  'raw-fastify': { file: 'raw.js', env: { BENCH_RAW_FASTIFY: '1' }, scenarios: ['large-64m', 'large-8m', 'small', 'small-cwu', 'concurrent', 'head'] },
  'tus-node': { file: 'tus-node.js' },
  'tus-fastify': { file: 'tus-fastify.js' },
  ours: { file: 'ours.js', ours: true },
  // Opt-in (BENCH_SERVERS=...,ours-nofsync): ours with fsync off, like the peers, which never fsync.
  'ours-nofsync': { file: 'ours.js', ours: true, optIn: true, env: { BENCH_OURS_OPTIONS: JSON.stringify({ fsync: false }) } },
  // Opt-in: ours with Prometheus metrics on, and with an onProgress handler, for what each costs beside ours.
  'ours-metrics': { file: 'ours.js', ours: true, optIn: true, env: { BENCH_OURS_METRICS: '1' } },
  // ... and in a prom-client Registry, as an app passing its own (prom-client loaded in the process).
  'ours-metrics-prom': { file: 'ours.js', ours: true, optIn: true, env: { BENCH_OURS_METRICS: 'prom' } },
  'ours-progress': { file: 'ours.js', ours: true, optIn: true, env: { BENCH_OURS_PROGRESS: '1' } },
  // Opt-in: ours without the IETF draft's 104 interim responses (what they cost in small-draft and large-8m-draft).
  'ours-no104': { file: 'ours.js', ours: true, optIn: true, env: { BENCH_OURS_OPTIONS: JSON.stringify({ draftInterimResponses: false }) } },
  // Scale-out: two instances on PostgreSQL (the uploads/s and MB/s scenarios only).
  'ours-pg2': { file: 'ours.js', ours: true, postgres: true, instances: 2, scenarios: ['large-64m', 'large-8m', 'small', 'small-cwu', 'concurrent'] },
  // Opt-in: one instance on PostgreSQL, to separate the database's cost from the second instance's.
  'ours-pg1': { file: 'ours.js', ours: true, postgres: true, instances: 1, optIn: true, scenarios: ['large-64m', 'large-8m', 'small', 'small-cwu', 'concurrent'] },
  // The object-storage groups: S3 (BENCH_S3=1), one bucket per run on BENCH_S3_ENDPOINT,
  // and Azure (BENCH_AZURE=1), one container per run. `key` maps an upload's id (the
  // last segment of its URL) to its object; `side` matches the store's own objects
  // that may sit beside the uploads' at the end.
  'ours-s3': { file: 'ours-s3.js', ours: true, group: 's3', objects: { prefix: 'uploads/', key: (id) => `uploads/${id}` } },
  'tus-s3': { file: 'tus-s3.js', group: 's3', objects: { key: (id) => id, side: /^[^/]+\.info$/ } },
  'raw-s3': { file: 'raw-s3.js', group: 's3', objects: { key: (id) => id } },
  'ours-azure': { file: 'ours-azure.js', ours: true, group: 'azure', objects: { prefix: 'uploads/', key: (id) => `uploads/${id}` } },
  'tus-azure': { file: 'tus-azure.js', group: 'azure', objects: { key: (id) => id } },
  'raw-azure': { file: 'raw-azure.js', group: 'azure', objects: { key: (id) => id } }
}
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL || process.env.TUS_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test'

// Why a scenario is ours only (its `oursOnly`), said under its table.
const CHECKSUM_ONLY = 'raw and @tus/server do not support Upload-Checksum: ours only'
const DRAFT_ONLY = 'raw and @tus/server do not speak the IETF draft: ours only'
const size = (n) => n >= GiB ? `${n / GiB} GiB` : n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`
const SCENARIOS = [
  { name: 'large-64m', kind: 'large', total: LARGE, chunk: 64 * MiB, bytes: true, what: `one ${size(LARGE)} upload in 64 MiB PATCHes` },
  { name: 'large-8m', kind: 'large', total: LARGE, chunk: 8 * MiB, bytes: true, what: `one ${size(LARGE)} upload in 8 MiB PATCHes` },
  // Memory must not grow with the upload's size: the same as large-8m, four times longer.
  { name: 'large-4x', kind: 'large', total: 4 * LARGE, chunk: 8 * MiB, bytes: true, servers: ['raw', 'ours'], relativeTo: 'large-8m', what: `one ${size(4 * LARGE)} upload in 8 MiB PATCHes` },
  { name: 'small', kind: 'uploads', uploads: SMALL_UPLOADS, size: 16 * KiB, concurrency: 32, what: `${SMALL_UPLOADS} uploads of 16 KiB, 32 at a time, POST + PATCH` },
  { name: 'small-cwu', kind: 'uploads', uploads: SMALL_UPLOADS, size: 16 * KiB, concurrency: 32, cwu: true, what: `${SMALL_UPLOADS} uploads of 16 KiB, 32 at a time, creation-with-upload` },
  { name: 'concurrent', kind: 'uploads', uploads: 64, size: CONCURRENT_SIZE, concurrency: 64, bytes: true, what: `64 uploads of ${size(CONCURRENT_SIZE)} at once` },
  { name: 'head', kind: 'head', uploads: 32, size: 16 * KiB, requests: HEAD_REQUESTS, concurrency: 32, what: `${HEAD_REQUESTS} HEAD requests on 32 existing uploads, 32 at a time` },
  { name: 'checksum-sha1', kind: 'large', total: LARGE, chunk: 8 * MiB, checksum: 'sha1', bytes: true, oursOnly: CHECKSUM_ONLY, relativeTo: 'large-8m', what: `large-8m with Upload-Checksum sha1` },
  { name: 'checksum-sha256', kind: 'large', total: LARGE, chunk: 8 * MiB, checksum: 'sha256', bytes: true, oursOnly: CHECKSUM_ONLY, relativeTo: 'large-8m', what: `large-8m with Upload-Checksum sha256` },
  // The IETF draft (interop 9) for the same uploads as small-cwu and large-8m.
  { name: 'small-draft', kind: 'uploads', uploads: SMALL_UPLOADS, size: 16 * KiB, concurrency: 32, cwu: true, draft: true, oursOnly: DRAFT_ONLY, relativeTo: 'small-cwu', what: `${SMALL_UPLOADS} uploads of 16 KiB, 32 at a time, one IETF draft POST each (Upload-Complete: ?1)` },
  { name: 'large-8m-draft', kind: 'large', total: LARGE, chunk: 8 * MiB, bytes: true, draft: true, oursOnly: DRAFT_ONLY, relativeTo: 'large-8m', what: `one ${size(LARGE)} upload, IETF draft: POST (Upload-Complete: ?0) + 8 MiB PATCHes` },
  ...objectScenarios('s3', 'S3', ['large-64m', 'large-8m', 'large-5m', 'small', 'small-cwu', 'concurrent']),
  ...objectScenarios('azure', 'Azure', ['large-64m', 'large-8m', 'small', 'concurrent'])
]
for (const s of SCENARIOS) {
  s.unit = s.bytes ? 'MiB/s' : s.kind === 'head' ? 'req/s' : 'uploads/s'
  s.concurrency ??= 1
  s.bufferSize = Math.max(s.chunk ?? 0, s.size ?? 0, ...(s.sizes ?? []))
  s.group ??= 'disk'
  // The servers each scenario's ratios are taken against: raw and ours, or raw-s3 and ours-s3, ...
  const suffix = s.group === 'disk' ? '' : `-${s.group}`
  s.baseline = { raw: `raw${suffix}`, ours: `ours${suffix}` }
}

/**
 * An object-storage group's scenarios, named `<group>-<name>`, picked from these
 * shapes. PATCHes of 64 and 8 MiB are whole multiples of the default part size;
 * 5 MiB PATCHes are not, so every PATCH but the last leaves a tail that the next
 * one must take up (ours-s3 and tus-s3 store it as an object, raw-s3 keeps it in
 * memory).
 */
function objectScenarios (group, where, names) {
  const shapes = [
    { name: 'large-64m', kind: 'large', total: OBJECT_LARGE, chunk: 64 * MiB, bytes: true, what: `one ${size(OBJECT_LARGE)} upload in 64 MiB PATCHes to ${where}` },
    { name: 'large-8m', kind: 'large', total: OBJECT_LARGE, chunk: 8 * MiB, bytes: true, what: `one ${size(OBJECT_LARGE)} upload in 8 MiB PATCHes to ${where}` },
    { name: 'large-5m', kind: 'large', total: OBJECT_LARGE, chunk: 5 * MiB, bytes: true, what: `one ${size(OBJECT_LARGE)} upload in 5 MiB PATCHes to ${where} (not a multiple of the part size)` },
    { name: 'small', kind: 'uploads', uploads: OBJECT_SMALL_UPLOADS, sizes: OBJECT_SMALL_SIZES, concurrency: 32, what: `${OBJECT_SMALL_UPLOADS} uploads of 1, 4, 16, 64 KiB in turn to ${where}, 32 at a time, POST + PATCH` },
    { name: 'small-cwu', kind: 'uploads', uploads: OBJECT_SMALL_UPLOADS, sizes: OBJECT_SMALL_SIZES, concurrency: 32, cwu: true, what: `${OBJECT_SMALL_UPLOADS} uploads of 1, 4, 16, 64 KiB in turn to ${where}, 32 at a time, creation-with-upload` },
    { name: 'concurrent', kind: 'uploads', uploads: OBJECT_CONCURRENT, size: OBJECT_CONCURRENT_SIZE, concurrency: OBJECT_CONCURRENT, bytes: true, what: `${OBJECT_CONCURRENT} uploads of ${size(OBJECT_CONCURRENT_SIZE)} to ${where} at once` }
  ]
  return names.map((name) => ({ ...shapes.find((s) => s.name === name), name: `${group}-${name}`, group }))
}

function list (env, known, label) {
  if (!env) return undefined
  const names = env.split(',').map((n) => n.trim()).filter(Boolean)
  for (const n of names) if (!known.includes(n)) throw new Error(`${label}: unknown "${n}" (known: ${known.join(', ')})`)
  return names
}
const onlyScenarios = list(process.env.BENCH_ONLY, SCENARIOS.map((s) => s.name), 'BENCH_ONLY')
const onlyServers = list(process.env.BENCH_SERVERS, Object.keys(SERVERS), 'BENCH_SERVERS')
const groupOf = (name) => SERVERS[name].group ?? 'disk'
// Without BENCH_SERVERS: the disk group's default servers, or the object-storage groups asked
// for (BENCH_S3=1, BENCH_AZURE=1), or, when BENCH_ONLY names only object-storage scenarios,
// their groups.
const objectGroups = new Set([S3_MODE && 's3', AZURE_MODE && 'azure'].filter(Boolean))
if (objectGroups.size === 0 && onlyScenarios !== undefined) {
  const groups = onlyScenarios.map((n) => SCENARIOS.find((s) => s.name === n).group)
  if (!groups.includes('disk')) for (const g of groups) objectGroups.add(g)
}
let servers = Object.keys(SERVERS).filter((n) => onlyServers !== undefined ? onlyServers.includes(n) : objectGroups.size > 0 ? objectGroups.has(groupOf(n)) : !SERVERS[n].optIn && groupOf(n) === 'disk')
// Without BENCH_ONLY: every scenario of the groups the servers belong to.
const scenarios = SCENARIOS.filter((s) => onlyScenarios !== undefined ? onlyScenarios.includes(s.name) : servers.some((n) => groupOf(n) === s.group))
const runsScenario = (name, scenario) => groupOf(name) === scenario.group && (!scenario.oursOnly || SERVERS[name].ours) &&
  (SERVERS[name].scenarios === undefined || SERVERS[name].scenarios.includes(scenario.name)) &&
  (scenario.servers === undefined || scenario.servers.includes(name))

/** Runs one statement on the benchmark's PostgreSQL (pg is a dependency of the plugin). */
async function postgresQuery (text) {
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 })
  await client.connect()
  try { return (await client.query(text)).rows } finally { await client.end() }
}

/** CPU seconds of the processes (but this one) that `matches(pid)` picks. */
function processesCpuSeconds (matches) {
  let total = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue
    try {
      if (matches(entry)) total += cpuSeconds(entry)
    } catch {} // gone meanwhile
  }
  return total
}

/** CPU seconds of PostgreSQL's processes (the postmaster, its backends and workers). */
const postgresCpuSeconds = () => processesCpuSeconds((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres')

/** CPU seconds of the processes whose command lines match `pattern` (BENCH_S3_PROCESSES, BENCH_AZURE_PROCESSES). */
const cpuSecondsMatching = (pattern) => processesCpuSeconds((pid) => pattern.test(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')))

/** The runner's own S3 client (bucket set-up, verification, clean-up), loaded only for the S3 group. */
let s3Runner
async function s3 () {
  if (s3Runner === undefined) {
    const sdk = await import('@aws-sdk/client-s3')
    const client = new sdk.S3Client({
      endpoint: S3_ENDPOINT,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: S3_CREDENTIALS,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED'
    })
    s3Runner = { sdk, client, send: (command, input) => client.send(new sdk[command](input)) }
  }
  return s3Runner
}

let storeSerial = 0
/** A name for one run's bucket or container (lower case, digits and hyphens: valid for both). */
const runStoreName = () => `tus-bench-${process.pid}-${Date.now().toString(36)}-${storeSerial++}`

/** sha256 (hex) of a stream's bytes. */
async function sha256Of (stream) {
  const hash = createHash('sha256')
  for await (const chunk of stream) hash.update(chunk)
  return hash.digest('hex')
}

/**
 * A fresh, empty bucket for one run, primed with one multipart upload (created
 * and aborted). Swift's s3api keeps parts in a hidden `<bucket>+segments`
 * container that the bucket's first CreateMultipartUpload creates; several
 * first ones at once (32 POSTs on a new bucket) can fail with NoSuchBucket for
 * that container. A bucket per run would make that race a regular event here
 * and a rare one in use, so every server starts on a bucket past it. Elsewhere
 * the priming is one harmless request pair before the measurement.
 */
async function createBucket () {
  const { send } = await s3()
  const bucket = runStoreName()
  await send('CreateBucketCommand', { Bucket: bucket })
  const { UploadId } = await send('CreateMultipartUploadCommand', { Bucket: bucket, Key: 'bench-priming' })
  await send('AbortMultipartUploadCommand', { Bucket: bucket, Key: 'bench-priming', UploadId })
  return bucket
}

/** Every object in the bucket: key -> size. */
async function listObjects (bucket) {
  const { send } = await s3()
  const objects = new Map()
  let ContinuationToken
  do {
    const page = await send('ListObjectsV2Command', { Bucket: bucket, ContinuationToken })
    for (const o of page.Contents ?? []) objects.set(o.Key, o.Size)
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (ContinuationToken !== undefined)
  return objects
}

/** Multipart uploads still in progress in the bucket. */
async function listMultipart (bucket) {
  const { send } = await s3()
  const found = []
  let KeyMarker
  let UploadIdMarker
  for (;;) {
    const page = await send('ListMultipartUploadsCommand', { Bucket: bucket, KeyMarker, UploadIdMarker })
    for (const u of page.Uploads ?? []) found.push({ Key: u.Key, UploadId: u.UploadId })
    if (!page.IsTruncated) return found
    KeyMarker = page.NextKeyMarker
    UploadIdMarker = page.NextUploadIdMarker
  }
}

/** Aborts what is in progress, deletes every object, then the bucket. */
async function removeBucket (bucket) {
  const { send } = await s3()
  for (const { Key, UploadId } of await listMultipart(bucket)) await send('AbortMultipartUploadCommand', { Bucket: bucket, Key, UploadId })
  const keys = [...(await listObjects(bucket)).keys()]
  for (let i = 0; i < keys.length; i += 1000) {
    const res = await send('DeleteObjectsCommand', { Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } })
    if (res.Errors?.length) throw new Error(`could not delete ${res.Errors.length} object(s) of ${bucket}: ${res.Errors[0].Code} ${res.Errors[0].Message}`)
  }
  await send('DeleteBucketCommand', { Bucket: bucket })
}

/** sha256 (hex) of an object's bytes, read back from the bucket. */
async function objectDigest (bucket, Key) {
  const { send } = await s3()
  return sha256Of((await send('GetObjectCommand', { Bucket: bucket, Key })).Body)
}

/** The runner's own client of the Azure account (container set-up, verification, clean-up), loaded only for the Azure group. */
let azureRunner
async function azureService () {
  if (azureRunner === undefined) {
    const { BlobServiceClient } = await import('@azure/storage-blob')
    azureRunner = BlobServiceClient.fromConnectionString(azureConnectionString)
  }
  return azureRunner
}
const containerClient = async (container) => (await azureService()).getContainerClient(container)

/** The Azurite the runner started (undefined with BENCH_AZURE_CONNECTION_STRING): { child, location, stderr }. */
let azurite

/** A port nothing listens on right now (bound on 127.0.0.1:0, then released). */
function freePort () {
  return new Promise((resolve, reject) => {
    const server = createNetServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/**
 * Starts Azurite's blob service for the Azure group (a workspace in the temp
 * directory) and waits until it answers; sets azureConnectionString to its
 * development account. Answers what the results record of it.
 */
async function startAzurite () {
  const manifest = createRequire(import.meta.url).resolve('azurite/package.json')
  const { version, bin } = JSON.parse(readFileSync(manifest, 'utf8'))
  const port = await freePort()
  const location = mkdtempSync(join(tmpdir(), 'fastify-tus-bench-azurite-'))
  const child = spawn(process.execPath, [join(dirname(manifest), bin['azurite-blob']), '--blobHost', '127.0.0.1', '--blobPort', String(port),
    '--location', location, '--silent', '--disableTelemetry', '--skipApiVersionCheck', '--loose'], { stdio: ['ignore', 'ignore', 'pipe'] })
  azurite = { child, location, stderr: '' }
  child.stderr.on('data', (d) => { azurite.stderr = (azurite.stderr + d).slice(-2000) })
  // Not left behind when the runner ends early (a failure, Ctrl-C); a SIGKILLed runner leaves it running.
  process.once('exit', stopAzuriteNow)
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) process.once(signal, () => { stopAzuriteNow(); process.exit(code) })
  azureConnectionString = 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;' +
    'AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;' +
    `BlobEndpoint=http://127.0.0.1:${port}/devstoreaccount1;`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`Azurite exited (${child.exitCode ?? child.signalCode}): ${azurite.stderr.trim()}`)
    try {
      await (await azureService()).getProperties()
      return { azurite: version, endpoint: `http://127.0.0.1:${port}/devstoreaccount1`, pid: child.pid }
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`Azurite did not answer in 30 s (${err.message}): ${azurite.stderr.trim()}`)
      await sleep(200)
    }
  }
}

/** Stops the Azurite the runner started, and removes its workspace. */
async function stopAzurite () {
  if (azurite === undefined) return
  const { child, location } = azurite
  child.kill('SIGTERM')
  if (!await waitExit(child, 10_000)) { child.kill('SIGKILL'); await waitExit(child, 5000) }
  rmSync(location, { recursive: true, force: true })
  azurite = undefined
}

function stopAzuriteNow () {
  if (azurite === undefined) return
  azurite.child.kill('SIGKILL')
  rmSync(azurite.location, { recursive: true, force: true })
  azurite = undefined
}

/** Every blob in the container: name -> length; with `uncommitted`, blobs that have only uncommitted blocks too. */
async function listBlobs (container, uncommitted = false) {
  const blobs = new Map()
  for await (const blob of (await containerClient(container)).listBlobsFlat({ includeUncommitedBlobs: uncommitted })) blobs.set(blob.name, blob.properties.contentLength)
  return blobs
}

/**
 * How each object-storage group sets up, stores, checks and cleans up, for the
 * runner's shared code (per-run store, verification, CPU counting, the table).
 */
const STORAGES = {
  s3: {
    name: 'S3',
    service: 'the S3 server',
    where: 'bucket',
    verifyAll: S3_VERIFY_ALL,
    unfinishedWhat: 'multipart upload(s) still in progress',
    async setUp () {
      try {
        await (await s3()).send('ListBucketsCommand', {})
      } catch (err) {
        throw new Error(`S3 at ${S3_ENDPOINT} did not answer (${err.message})`)
      }
      return { endpoint: S3_ENDPOINT, partSize: S3_PART_SIZE, processes: S3_PROCESSES.source, verifyAll: S3_VERIFY_ALL }
    },
    async tearDown () {},
    note: 'S3 group: ratios against raw-s3 and ours-s3; the S3 server\'s CPU (storageCpuSeconds) is not in the server\'s CPU nor in other load',
    create: createBucket,
    remove: removeBucket,
    list: listObjects,
    unfinished: async (bucket) => (await listMultipart(bucket)).map((u) => u.Key),
    digest: objectDigest,
    cpuSeconds: () => cpuSecondsMatching(S3_PROCESSES),
    cpuWhat: () => `S3 server's own CPU on top (${S3_ENDPOINT}, processes /${S3_PROCESSES.source}/)`,
    partWhat: `part size ${size(S3_PART_SIZE)}`,
    serverEnv: (def, bucket) => ({
      BENCH_S3_BUCKET: bucket,
      BENCH_S3_PREFIX: def.objects.prefix ?? '',
      BENCH_S3_ENDPOINT: S3_ENDPOINT,
      BENCH_S3_PART_SIZE: String(S3_PART_SIZE),
      AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey
    })
  },
  azure: {
    name: 'Azure',
    service: 'the blob service',
    where: 'container',
    verifyAll: AZURE_VERIFY_ALL,
    unfinishedWhat: 'blob(s) with only uncommitted blocks',
    async setUp () {
      const settings = { blockSize: AZURE_BLOCK_SIZE, verifyAll: AZURE_VERIFY_ALL }
      if (azureConnectionString === undefined) {
        try {
          return { ...settings, ...await startAzurite() }
        } catch (err) {
          await stopAzurite()
          throw new Error(`Azurite did not start (${err.message})`)
        }
      }
      // The account's endpoint only: no key in the results.
      const endpoint = /BlobEndpoint=([^;]+)/.exec(azureConnectionString)?.[1] ?? /AccountName=([^;]+)/.exec(azureConnectionString)?.[1]
      try {
        await (await azureService()).getProperties()
      } catch (err) {
        throw new Error(`Azure at ${endpoint} (BENCH_AZURE_CONNECTION_STRING) did not answer (${err.message})`)
      }
      return { ...settings, endpoint, processes: AZURE_PROCESSES.source }
    },
    tearDown: stopAzurite,
    note: 'Azure group: ratios against raw-azure and ours-azure; the blob service\'s CPU (storageCpuSeconds) is not in the server\'s CPU nor in other load',
    async create () {
      const container = runStoreName()
      await (await containerClient(container)).create()
      return container
    },
    remove: async (container) => { await (await containerClient(container)).delete() },
    list: (container) => listBlobs(container),
    async unfinished (container) {
      const committed = await listBlobs(container)
      return [...(await listBlobs(container, true)).keys()].filter((name) => !committed.has(name))
    },
    digest: async (container, name) => sha256Of((await (await containerClient(container)).getBlobClient(name).download()).readableStreamBody),
    cpuSeconds: () => azurite !== undefined ? cpuSeconds(azurite.child.pid) : cpuSecondsMatching(AZURE_PROCESSES),
    cpuWhat: () => azurite !== undefined ? `Azurite's own CPU on top (pid ${azurite.child.pid})` : `the blob service's own CPU on top (processes /${AZURE_PROCESSES.source}/)`,
    partWhat: `block size ${size(AZURE_BLOCK_SIZE)}`,
    serverEnv: (def, container) => ({
      BENCH_AZURE_CONTAINER: container,
      BENCH_AZURE_PREFIX: def.objects.prefix ?? '',
      BENCH_AZURE_CONNECTION_STRING: azureConnectionString,
      BENCH_AZURE_BLOCK_SIZE: String(AZURE_BLOCK_SIZE)
    })
  }
}
/** The object storage of a server's group (undefined for the disk group). */
const storageOf = (name) => STORAGES[groupOf(name)]

/**
 * A run on object storage counts only if the bucket (container) holds exactly the
 * uploads the load client made (each one's object, with its length; besides them
 * only the store's own side objects, and nothing unfinished: no multipart upload
 * in progress, no blob with only uncommitted blocks) and the sampled objects hold
 * the bytes sent (sha256). Answers what was checked.
 */
async function verifyObjects (name, bucket, uploads) {
  const def = SERVERS[name].objects
  const storage = storageOf(name)
  const check = `${storage.where} check`
  const objects = await storage.list(bucket)
  const expected = new Map()
  for (const u of uploads) expected.set(def.key(u.path.slice(u.path.lastIndexOf('/') + 1)), u)
  const problems = []
  let bad = 0
  for (const [key, u] of expected) {
    const got = objects.get(key)
    if (got === u.size) continue
    if (bad++ < 3) problems.push(got === undefined ? `${key} missing` : `${key} has ${got} bytes, not ${u.size}`)
  }
  if (bad > 3) problems.push(`${bad - 3} more`)
  const extra = [...objects.keys()].filter((key) => !expected.has(key) && !(def.side?.test(key) ?? false))
  if (extra.length > 0) problems.push(`${extra.length} object(s) besides the uploads' (${extra.slice(0, 3).join(', ')}${extra.length > 3 ? ', ...' : ''})`)
  const unfinished = await storage.unfinished(bucket)
  if (unfinished.length > 0) problems.push(`${unfinished.length} ${storage.unfinishedWhat} (${unfinished.slice(0, 3).join(', ')})`)
  if (problems.length > 0) throw new Error(`${check}: ${expected.size} uploads expected: ${problems.join('; ')}`)
  // First, last and evenly between (or all).
  const all = [...expected]
  const n = storage.verifyAll ? all.length : Math.min(all.length, VERIFY_SAMPLE)
  const picked = [...new Set(Array.from({ length: n }, (_, i) => n === 1 ? 0 : Math.round(i * (all.length - 1) / (n - 1))))].map((i) => all[i])
  let next = 0
  await Promise.all(Array.from({ length: Math.min(4, picked.length) }, async () => {
    while (next < picked.length) {
      const [key, u] = picked[next++]
      const digest = await storage.digest(bucket, key)
      if (digest !== u.sha256) throw new Error(`${check}: ${key} (${u.size} bytes) does not hold the bytes sent (sha256 ${digest}, expected ${u.sha256})`)
    }
  }))
  return { objects: expected.size, sideObjects: objects.size - expected.size, hashed: picked.length }
}

function clockTicks () {
  try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100 } catch { return 100 }
}

/** utime + stime of a live process, in seconds (all its threads; with `mainThread`, its main thread only). */
function cpuSeconds (pid, mainThread = false) {
  const stat = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK // utime, stime: fields 14 and 15
}

/** Machine-wide busy CPU seconds (all cores), from /proc/stat. */
function machineBusySeconds () {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number)
  return (user + nice + system + irq + softirq + steal) / CLK_TCK
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits (at most QUIET_WAIT s) until other processes use less than QUIET_CORES; answers the last reading. */
async function waitForQuiet () {
  const deadline = Date.now() + QUIET_WAIT * 1000
  let busy
  for (;;) {
    const b0 = machineBusySeconds()
    await sleep(1000)
    busy = machineBusySeconds() - b0
    if (busy < QUIET_CORES || Date.now() >= deadline) return busy
  }
}

function rssKiB (pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch { return 0 }
}

function waitExit (child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    child.once('exit', () => { clearTimeout(timer); resolve(true) })
  })
}

/**
 * Starts a server (all its instances, one after the other, so they do not race
 * through the migrations) and resolves once each printed `listening at <url>`.
 */
async function startServer (name, root, profileName, bucket) {
  const def = SERVERS[name]
  const uploadDir = join(root, 'uploads')
  mkdirSync(uploadDir)
  const env = { ...def.env, BENCH_UPLOAD_DIR: uploadDir, BENCH_DB_PATH: join(root, 'uploads.db') }
  if (def.objects !== undefined) {
    // Temporary files (@tus/s3-store splits parts through them) go with the run's directory.
    const tmp = join(root, 'tmp')
    mkdirSync(tmp)
    Object.assign(env, storageOf(name).serverEnv(def, bucket), { TMPDIR: tmp })
  }
  let schema
  if (def.postgres) {
    schema = `bench_${process.pid}_${Date.now()}`
    Object.assign(env, { BENCH_POSTGRES_URL: POSTGRES_URL, BENCH_POSTGRES_SCHEMA: schema })
  }
  const instances = []
  try {
    for (let i = 0; i < (def.instances ?? 1); i++) instances.push(await startInstance(name, def, env, `${profileName}.${i}`))
  } catch (err) {
    for (const instance of instances) instance.child.kill('SIGKILL')
    throw err
  }
  return { instances, pids: instances.map((i) => i.child.pid), urls: instances.map((i) => i.url), uploadDir, schema, stderr: () => instances.map((i) => i.stderr()).join('\n') }
}

function startInstance (name, def, env, profileName) {
  const args = []
  if (CPU_PROF !== undefined && (def.ours || CPU_PROF_ALL)) args.push('--cpu-prof', '--cpu-prof-dir', CPU_PROF, '--cpu-prof-name', profileName)
  args.push(join(here, 'servers', def.file))
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000) })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${name} did not start in 30 s: ${stderr}`)) }, 30_000)
    const rl = createInterface({ input: child.stdout })
    rl.on('line', (line) => {
      const m = /listening at (http:\/\/\S+)/.exec(line)
      if (m) { clearTimeout(timer); resolve({ child, url: m[1], stderr: () => stderr }) }
    })
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited (${code}) before listening: ${stderr}`)) })
  })
}

/** Runs the load client; calls onReady when its setup is done, just before the measured phase. */
function runLoad (config, onReady) {
  const child = spawn(process.execPath, [join(here, 'load.js'), JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000) })
  return new Promise((resolve, reject) => {
    let result
    // A server that stops answering must not hang the benchmark.
    const timer = setTimeout(() => { stderr += `\nno result after ${RUN_TIMEOUT} s`; child.kill('SIGKILL') }, RUN_TIMEOUT * 1000)
    const rl = createInterface({ input: child.stdout })
    rl.on('line', (line) => {
      let msg
      try { msg = JSON.parse(line) } catch { return }
      if (msg.event === 'ready') { onReady(); child.stdin.write('go\n') }
      if (msg.event === 'result') result = msg
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      if (result !== undefined) resolve(result)
      else reject(new Error(`load client exited (${code}) without a result: ${stderr}`))
    })
  })
}

/** Data files in the upload directory (not @tus/file-store's .json side files). */
function storedData (dir) {
  let files = 0
  let bytes = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile() || entry.name.endsWith('.json')) continue
    files++
    bytes += statSync(join(dir, entry.name)).size
  }
  return { files, bytes }
}

async function runOne (scenario, name, round) {
  const root = mkdtempSync(join(tmpdir(), `fastify-tus-bench-${name}-`))
  let server
  let sampler
  // The run's bucket or container, on object storage.
  let bucket
  const storage = storageOf(name)
  const objectStorage = storage !== undefined
  const busyBefore = QUIET_WAIT > 0 ? await waitForQuiet() : undefined
  try {
    if (objectStorage) bucket = await storage.create()
    server = await startServer(name, root, `${scenario.name}.${name}.r${round}.cpuprofile`, bucket)
    const pids = server.pids
    const serverCpu = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0)
    // The main thread (JavaScript, the event loop) apart from libuv's pool (file writes, fsync) and V8's helpers.
    const mainCpu = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid, true), 0)
    // With several instances: the peak of their sum, sampled at the same moments.
    const serverRss = () => pids.reduce((sum, pid) => sum + rssKiB(pid), 0)
    const database = SERVERS[name].postgres === true
    if (IDLE_BEFORE > 0) await new Promise((resolve) => setTimeout(resolve, IDLE_BEFORE * 1000))
    const startRss = serverRss()
    let peak = startRss
    sampler = setInterval(() => { peak = Math.max(peak, serverRss()) }, 50)
    let cpuStart = 0
    let mainStart = 0
    let busyStart = 0
    let dbStart = 0
    let storageStart = 0
    const load = await runLoad({ urls: server.urls, scenario, concurrency: scenario.concurrency, bufferSize: scenario.bufferSize, report: objectStorage }, () => {
      cpuStart = serverCpu()
      mainStart = mainCpu()
      busyStart = machineBusySeconds()
      if (database) dbStart = postgresCpuSeconds()
      if (objectStorage) storageStart = storage.cpuSeconds()
    })
    const cpuEnd = serverCpu()
    const mainCpuSeconds = mainCpu() - mainStart
    const busy = machineBusySeconds() - busyStart
    const dbCpu = database ? postgresCpuSeconds() - dbStart : 0
    const storageCpu = objectStorage ? storage.cpuSeconds() - storageStart : 0
    peak = Math.max(peak, serverRss())
    clearInterval(sampler)
    sampler = undefined
    if (!load.ok) throw new Error(`load failed: ${load.error.split('\n')[0]}; server stderr: ${server.stderr().trim().slice(-500)}`)

    const expectedFiles = scenario.kind === 'large' ? 1 : scenario.uploads
    let verified
    if (objectStorage) {
      if (load.uploads?.length !== expectedFiles) throw new Error(`load client reported ${load.uploads?.length} uploads, expected ${expectedFiles}`)
      verified = await verifyObjects(name, bucket, load.uploads)
    } else {
      const stored = storedData(server.uploadDir)
      if (stored.bytes !== load.stored || stored.files !== expectedFiles) {
        throw new Error(`storage check: ${stored.files} data files with ${stored.bytes} bytes, expected ${expectedFiles} with ${load.stored}`)
      }
    }
    const cpu = cpuEnd - cpuStart
    const run = {
      round,
      ok: true,
      seconds: load.seconds,
      throughput: scenario.bytes ? load.bytes / MiB / load.seconds : load.ops / load.seconds,
      peakRssMiB: peak / 1024,
      startRssMiB: startRss / 1024,
      cpuSeconds: cpu,
      mainThreadCpuSeconds: mainCpuSeconds,
      cpuSecondsTotal: cpuEnd,
      clientCpuSeconds: load.clientCpuSeconds,
      connections: load.connections,
      // 1xx interim responses the client received, by status (the draft's 104s).
      interims: load.interims ?? {},
      instances: pids.length,
      // Cores used by everything else (the runner included) during the measured phase.
      otherCores: Math.max(0, (busy - cpu - dbCpu - storageCpu - load.clientCpuSeconds) / load.seconds),
      busyCoresBefore: busyBefore
    }
    if (database) run.databaseCpuSeconds = dbCpu
    if (objectStorage) {
      run.storageCpuSeconds = storageCpu
      run.verified = verified
    }
    run.noisy = run.otherCores > QUIET_CORES
    if (scenario.bytes) run.cpuPerGiB = cpu / (load.bytes / GiB)
    else run.cpuMsPerOp = cpu * 1000 / load.ops
    return run
  } finally {
    if (sampler !== undefined) clearInterval(sampler)
    if (server !== undefined) {
      await Promise.all(server.instances.map(async ({ child }) => {
        child.kill('SIGTERM')
        if (!await waitExit(child, 10_000)) { child.kill('SIGKILL'); await waitExit(child, 5000) }
      }))
      if (server.schema !== undefined) await postgresQuery(`DROP SCHEMA IF EXISTS "${server.schema}" CASCADE`).catch((err) => console.error(`  could not drop schema ${server.schema}: ${err.message}`))
    }
    if (bucket !== undefined) await storage.remove(bucket).catch((err) => console.error(`  could not remove ${storage.where} ${bucket}: ${err.message}`))
    rmSync(root, { recursive: true, force: true })
    // Do not let the next run pay for this one's writeback.
    spawnSync('sync')
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

function summarise (runs) {
  const ok = runs.filter((r) => r.ok)
  if (ok.length === 0) return { runs, failed: runs.length }
  const pick = (k) => ok.map((r) => r[k]).filter((v) => v !== undefined)
  const out = {
    runs,
    failed: runs.length - ok.length,
    median: median(pick('throughput')),
    min: Math.min(...pick('throughput')),
    max: Math.max(...pick('throughput')),
    peakRssMiB: median(pick('peakRssMiB')),
    startRssMiB: median(pick('startRssMiB')),
    cpuSeconds: median(pick('cpuSeconds')),
    mainThreadCpuSeconds: median(pick('mainThreadCpuSeconds')),
    clientCpuSeconds: median(pick('clientCpuSeconds')),
    clientCore: median(ok.map((r) => r.clientCpuSeconds / r.seconds)),
    connections: median(pick('connections')),
    seconds: median(pick('seconds')),
    otherCores: median(pick('otherCores')),
    noisyRuns: ok.filter((r) => r.noisy).length
  }
  if (pick('databaseCpuSeconds').length) out.databaseCpuSeconds = median(pick('databaseCpuSeconds'))
  if (pick('storageCpuSeconds').length) out.storageCpuSeconds = median(pick('storageCpuSeconds'))
  if (pick('cpuPerGiB').length) out.cpuPerGiB = median(pick('cpuPerGiB'))
  if (pick('cpuMsPerOp').length) out.cpuMsPerOp = median(pick('cpuMsPerOp'))
  return out
}

const fmt = (v, digits = 1) => v === undefined || Number.isNaN(v) ? '–' : v.toFixed(digits)
const pad = (s, n) => String(s).padEnd(n)
const lpad = (s, n) => String(s).padStart(n)

function table (scenario, result, all) {
  const lines = []
  const head = `${scenario.name}: ${scenario.what} — ${scenario.unit}, median of ${ROUNDS} round${ROUNDS > 1 ? 's' : ''}`
  lines.push(head, '-'.repeat(Math.max(head.length, 96)))
  const cpuLabel = scenario.bytes ? 'CPU-s/GiB' : 'CPU-ms/op'
  const storage = STORAGES[scenario.group]
  // Ratios against the scenario's group's baseline and ours (raw and ours, or raw-s3 and ours-s3, ...).
  const { raw: rawName, ours: oursName } = scenario.baseline
  const rawHead = `×${rawName}`
  const oursHead = `${oursName}÷this`
  const rawWidth = Math.max(7, rawHead.length + 2)
  const oursWidth = Math.max(11, oursHead.length + 2)
  lines.push(pad('server', 14) + lpad('median', 10) + lpad('min–max', 20) + lpad(rawHead, rawWidth) + lpad(oursHead, oursWidth) + lpad('peak RSS', 11) + lpad('at start', 10) + lpad(cpuLabel, 11) + lpad('client core', 13))
  const raw = result.servers[rawName]
  const ours = result.servers[oursName]
  for (const [name, s] of Object.entries(result.servers)) {
    if (s.median === undefined) { lines.push(pad(name, 14) + '  FAILED: ' + s.runs.map((r) => r.error).join('; ')); continue }
    lines.push(
      pad(name, 14) +
      lpad(fmt(s.median), 10) +
      lpad(`${fmt(s.min)}–${fmt(s.max)}`, 20) +
      lpad(s.ratioToRaw === undefined ? '–' : fmt(s.ratioToRaw, 2), rawWidth) +
      lpad(s.oursOverThis === undefined || name === oursName ? '–' : fmt(s.oursOverThis, 2), oursWidth) +
      lpad(`${fmt(s.peakRssMiB, 0)} MiB`, 11) +
      lpad(`${fmt(s.startRssMiB, 0)} MiB`, 10) +
      lpad(scenario.bytes ? fmt(s.cpuPerGiB, 2) : fmt(s.cpuMsPerOp, 3), 11) +
      lpad(`${fmt(100 * s.clientCore, 0)}%`, 13) +
      (s.failed ? `  (${s.failed} failed run${s.failed > 1 ? 's' : ''})` : '') +
      (s.noisyRuns ? `  (${s.noisyRuns} noisy)` : '')
    )
  }
  if (raw?.median !== undefined) {
    const others = Object.entries(result.servers).filter(([n, s]) => n !== rawName && s.median !== undefined)
    const beaten = others.filter(([, s]) => s.median >= raw.median).map(([n]) => n)
    lines.push(beaten.length === 0
      ? `${rawName} baseline is the fastest (${fmt(raw.median)} ${scenario.unit}): the load client is not the bottleneck for the servers measured against it.`
      : storage !== undefined
        ? `NOTE: ${rawName} is NOT the fastest (${beaten.join(', ')} ≥ ${rawName}): it is a reference, not a bound, on ${storage.name}: ${storage.service} (its CPU below) or the machine is the limit, and ${rawName} makes its own kind of ${storage.name} requests (bench/servers/${rawName}.js).`
        : `WARNING: ${rawName} baseline is NOT the fastest (${beaten.join(', ')} ≥ ${rawName}): the client or the machine may be the limit here.`)
    if (raw.clientCore > 0.85) lines.push(`(the client used ${fmt(100 * raw.clientCore, 0)}% of a core against ${rawName}: ${rawName} may be capped by the client, so its lead is a lower bound)`)
  }
  // Each instance of a server gets its own keep-alive pool of `concurrency` connections.
  const churn = Object.entries(result.servers).filter(([n, s]) => s.connections > scenario.concurrency * (SERVERS[n].instances ?? 1))
  if (churn.length > 0) {
    lines.push(`NOTE: connections opened by the client in the measured phase: ${churn.map(([n, s]) => `${n} ${s.connections}`).join(', ')} ` +
      `(for ${scenario.concurrency} at a time)` + (scenario.kind === 'head'
      ? `: Node's http client keeps a connection after a HEAD response only if it has a Content-Length, and none of these servers sends one, so every HEAD here pays a TCP connect.`
      : '.'))
  }
  const noisy = Object.values(result.servers).reduce((n, s) => n + (s.noisyRuns ?? 0), 0)
  if (noisy > 0) lines.push(`NOTE: ${noisy} run(s) shared the machine with other processes (> ${QUIET_CORES} cores): see "other load" in the JSON.`)
  if (scenario.relativeTo !== undefined) {
    const baseRes = all[scenario.relativeTo]?.servers
    for (const [name, s] of Object.entries(result.servers)) {
      const b = baseRes?.[name]
      if (s.median === undefined) continue
      if (b?.median === undefined) { lines.push(`${name} vs its ${scenario.relativeTo}: not measured in this run (add ${scenario.relativeTo} to BENCH_ONLY)`); continue }
      // CPU per GiB for the byte scenarios, per upload for the others.
      const [cpuKey, cpuUnit, digits] = scenario.bytes ? ['cpuPerGiB', 'CPU-s/GiB', 2] : ['cpuMsPerOp', 'CPU-ms/op', 3]
      s.relative = { to: scenario.relativeTo, throughputRatio: s.median / b.median, [`${cpuKey}Delta`]: s[cpuKey] - b[cpuKey], peakRssMiBDelta: s.peakRssMiB - b.peakRssMiB }
      lines.push(`${name} vs its ${scenario.relativeTo}: ${fmt(s.median / b.median, 2)}× the throughput (${fmt(s.median)} vs ${fmt(b.median)} ${scenario.unit}), ` +
        `${s[cpuKey] >= b[cpuKey] ? '+' : ''}${fmt(s[cpuKey] - b[cpuKey], digits)} ${cpuUnit} (${fmt(s[cpuKey], digits)} vs ${fmt(b[cpuKey], digits)}), ` +
        `peak RSS ${fmt(s.peakRssMiB, 0)} vs ${fmt(b.peakRssMiB, 0)} MiB`)
    }
  }
  for (const [name, s] of Object.entries(result.servers)) {
    if (!SERVERS[name].postgres || s.median === undefined) continue
    const n = SERVERS[name].instances
    lines.push(`${name}: ${n} instance${n > 1 ? 's' : ''} on PostgreSQL${n > 1 ? ', requests round-robin (RSS and CPU are their sums)' : ''}` +
      (ours?.median === undefined ? '' : `: ${fmt(s.median / ours.median, 2)}× ours on SQLite`) +
      `; PostgreSQL's own CPU ${scenario.bytes ? `${fmt(s.databaseCpuSeconds / (scenario.total ?? scenario.uploads * scenario.size) * GiB, 2)} s/GiB` : `${fmt(s.databaseCpuSeconds * 1000 / scenario.uploads, 3)} ms/op`} on top`)
  }
  if (scenario.oursOnly) lines.push(`(${scenario.oursOnly})`)
  if (scenario.draft) {
    const counts = Object.entries(result.servers).filter(([, s]) => s.median !== undefined).map(([n, s]) => {
      const per = {}
      for (const r of s.runs.filter((r) => r.ok)) for (const k of Object.keys(r.interims ?? {})) per[k] = true
      const statuses = Object.keys(per)
      return `${n} ${statuses.length === 0 ? 'none' : statuses.map((k) => `${fmt(median(s.runs.filter((r) => r.ok).map((r) => r.interims?.[k] ?? 0)), 0)} × ${k}`).join(', ')}`
    })
    if (counts.length > 0) lines.push(`interim responses received per run (median): ${counts.join('; ')}`)
  }
  const storageCpu = Object.entries(result.servers).filter(([, s]) => s.storageCpuSeconds !== undefined)
  if (storage !== undefined && storageCpu.length > 0) {
    lines.push(`${storage.cpuWhat()}: ` + storageCpu.map(([n, s]) => `${n} ${scenario.bytes
      ? `${fmt(s.storageCpuSeconds / (scenario.total ?? scenario.uploads * scenario.size) * GiB, 2)} s/GiB`
      : `${fmt(s.storageCpuSeconds * 1000 / scenario.uploads, 3)} ms/op`}`).join(', ') + `; ${storage.partWhat}`)
    const verified = Object.entries(result.servers).filter(([, s]) => s.median !== undefined).map(([n, s]) => {
      const v = s.runs.find((r) => r.ok)?.verified
      return v === undefined ? undefined : `${n} ${v.objects} object(s)${v.sideObjects ? ` (+${v.sideObjects} side)` : ''}, ${v.hashed} hashed`
    }).filter(Boolean)
    if (verified.length > 0) lines.push(`verified in the ${storage.where} (per run): ${verified.join('; ')}`)
  }
  return lines.join('\n')
}

function git (...args) {
  try { return execFileSync('git', args, { cwd: join(here, '..'), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() } catch { return undefined }
}

async function main () {
  const started = Date.now()
  const meta = {
    date: new Date().toISOString(),
    commit: git('rev-parse', '--short', 'HEAD'),
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? '?'}`,
    memoryGiB: Math.round(totalmem() / GiB),
    tmpdir: tmpdir(),
    quick: QUICK,
    rounds: ROUNDS,
    idleBeforeSeconds: IDLE_BEFORE,
    servers,
    clockTicks: CLK_TCK,
    loadAverageAtStart: loadavg(),
    cpuProfileDir: CPU_PROF,
    notes: [
      'throughput = work / wall time of the measured phase, timed by the load client',
      'CPU = server utime+stime over the measured phase (start-up and HEAD setup excluded)',
      `peak RSS = max of the server VmRSS sampled every 50 ms over the whole run, "at start" its VmRSS when the load began${IDLE_BEFORE > 0 ? ` (from the end of a ${IDLE_BEFORE} s idle wait after the start)` : ''}`,
      'ours runs with its default options (fsync on); the peers do not fsync'
    ]
  }
  for (const group of new Set(servers.map(groupOf))) {
    const storage = STORAGES[group]
    if (storage === undefined) continue
    try {
      meta[group] = await storage.setUp()
      meta.notes.push(storage.note)
    } catch (err) {
      const left = servers.filter((n) => groupOf(n) === group)
      servers = servers.filter((n) => groupOf(n) !== group)
      meta.servers = servers
      console.error(`${err.message}: ${left.join(', ')} left out`)
    }
  }
  if (CPU_PROF !== undefined) mkdirSync(CPU_PROF, { recursive: true })
  if (servers.some((n) => SERVERS[n].postgres)) {
    try {
      await postgresQuery('SELECT 1')
      meta.postgres = POSTGRES_URL.replace(/\/\/[^@/]*@/, '//') // no credentials in the results
    } catch (err) {
      const left = servers.filter((n) => SERVERS[n].postgres)
      servers = servers.filter((n) => !SERVERS[n].postgres)
      meta.servers = servers
      console.error(`PostgreSQL at ${POSTGRES_URL} did not answer (${err.message}): ${left.join(', ')} left out`)
    }
  }
  console.error(`fastify-tus bench: ${scenarios.map((s) => s.name).join(', ')} × ${servers.join(', ')}, ${ROUNDS} round(s)${QUICK ? ', QUICK' : ''}`)
  const results = {}
  let failures = 0
  for (const scenario of scenarios) {
    const names = servers.filter((n) => runsScenario(n, scenario))
    if (names.length === 0) continue
    const runs = Object.fromEntries(names.map((n) => [n, []]))
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternate the order, so no server always runs first or last.
      const order = round % 2 === 1 ? names : [...names].reverse()
      for (const name of order) {
        const t0 = Date.now()
        let run
        for (let attempt = 0; ; attempt++) {
          try {
            run = await runOne(scenario, name, round)
          } catch (err) {
            run = { round, ok: false, error: String(err?.message ?? err) }
          }
          if (!run.ok || !run.noisy || attempt >= NOISY_RETRIES) break
          console.error(`  [${scenario.name} r${round} ${name}] other processes used ${fmt(run.otherCores, 2)} cores: ${fmt(run.throughput)} ${scenario.unit} discarded, running again`)
          run = undefined
        }
        if (!run.ok) failures++
        runs[name].push(run)
        console.error(`  [${scenario.name} r${round} ${name}] ` + (run.ok
          ? `${fmt(run.throughput)} ${scenario.unit}, peak RSS ${fmt(run.peakRssMiB, 0)} MiB, server CPU ${fmt(run.cpuSeconds, 2)} s (main thread ${fmt(run.mainThreadCpuSeconds, 2)}), client CPU ${fmt(run.clientCpuSeconds, 2)} s, other load ${fmt(run.otherCores, 2)} cores${run.noisy ? ' NOISY' : ''} (${((Date.now() - t0) / 1000).toFixed(1)} s)`
          : `FAILED: ${run.error}`))
      }
    }
    const result = {
      description: scenario.what,
      unit: scenario.unit,
      config: { kind: scenario.kind, total: scenario.total, chunk: scenario.chunk, uploads: scenario.uploads, size: scenario.size, concurrency: scenario.concurrency, requests: scenario.requests, checksum: scenario.checksum, cwu: scenario.cwu, draft: scenario.draft },
      servers: Object.fromEntries(names.map((n) => [n, summarise(runs[n])]))
    }
    const raw = result.servers[scenario.baseline.raw]?.median
    const ours = result.servers[scenario.baseline.ours]?.median
    for (const s of Object.values(result.servers)) {
      if (s.median === undefined) continue
      if (raw !== undefined) s.ratioToRaw = s.median / raw
      if (ours !== undefined) s.oursOverThis = ours / s.median
    }
    if (raw !== undefined) result.rawIsFastest = Object.entries(result.servers).every(([n, s]) => n === scenario.baseline.raw || s.median === undefined || s.median < raw)
    results[scenario.name] = result
    result.table = table(scenario, result, results)
    console.log('\n' + result.table)
  }
  // Stops the Azurite the runner started, if any (on a failure, the exit handler does).
  for (const storage of Object.values(STORAGES)) await storage.tearDown()
  meta.totalSeconds = (Date.now() - started) / 1000
  meta.loadAverageAtEnd = loadavg()
  mkdirSync(dirname(RESULTS), { recursive: true })
  const json = JSON.stringify({ meta, scenarios: results }, null, 2) + '\n'
  writeFileSync(RESULTS, json)
  // A dated copy too, so the next run does not erase this one.
  writeFileSync(join(dirname(RESULTS), `run-${meta.date.replace(/[:.]/g, '-')}.json`), json)
  console.log(`\n${servers.join(', ')}; ${ROUNDS} round(s)${QUICK ? ' (QUICK)' : ''}; node ${process.version}; ${meta.cpus}`)
  console.log(`total ${meta.totalSeconds.toFixed(0)} s; results in ${RESULTS}${CPU_PROF ? `; CPU profiles in ${CPU_PROF}` : ''}`)
  if (failures > 0) {
    console.log(`${failures} run(s) FAILED (see above); failed runs are left out of the medians`)
    process.exitCode = 1
  }
}

await main()
