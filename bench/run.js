// The benchmark: `npm run bench` (builds first). Not a test.
//
// For every scenario and round, each server is started in its own child
// process (bench/servers/<name>.js), the load client runs in another
// (bench/load.js), and the server is stopped again. The server's peak RSS is
// sampled from /proc/<pid>/status every 50 ms; its CPU time is read from
// /proc/<pid>/stat when the load is done, before it is stopped (minus what it
// had used when the load started, so start-up and HEAD's setup are not counted),
// in all and for its main thread alone (JavaScript and the socket reads, apart
// from libuv's pool, where file writes and fsync run).
// A run counts only if every upload's final offset (as answered) equals its
// length and the upload directory holds exactly the bytes sent.
//
// Environment:
//   BENCH_QUICK=1                 smaller sizes, for a smoke run
//   BENCH_ROUNDS=3                rounds per scenario (servers alternate their order)
//   BENCH_ONLY=small,head         scenarios to run
//   BENCH_SERVERS=raw,ours        servers to run (also opt-in: ours-nofsync, ours-pg1)
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
//
// ours-pg2 is the scale-out case: two instances of ours, one PostgreSQL schema and
// one upload directory between them, and the load client sending each request to
// the next instance in turn (no sticky sessions), as a round-robin load balancer
// would. Its CPU and RSS are the two instances' sums, and PostgreSQL's own CPU is
// reported beside them (and not counted as other load).
//
// Other processes' CPU during each measured phase (machine busy time from
// /proc/stat minus the server's and the client's) is recorded, and runs that
// shared the machine are flagged: on a small machine they skew the comparison.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir, cpus, totalmem, loadavg } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'

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

const LARGE = QUICK ? 64 * MiB : 1 * GiB
const SMALL_UPLOADS = QUICK ? 200 : 2000
const CONCURRENT_SIZE = QUICK ? 1 * MiB : 16 * MiB
const HEAD_REQUESTS = QUICK ? 2000 : 20000

const SERVERS = {
  raw: { file: 'raw.js' },
  // The baseline plus fdatasync before each answer: the limit for a server that,
  // like ours by default, answers an offset only once its bytes are on disk.
  // A reference beside the baseline, not the baseline: the issue's targets are set against raw.
  'raw-fsync': { file: 'raw.js', env: { BENCH_RAW_FSYNC: '1' }, scenarios: ['large-64m', 'large-8m', 'small', 'small-cwu', 'concurrent'] },
  'tus-node': { file: 'tus-node.js' },
  'tus-fastify': { file: 'tus-fastify.js' },
  ours: { file: 'ours.js', ours: true },
  // Opt-in (BENCH_SERVERS=...,ours-nofsync): ours with fsync off, like the peers, which never fsync.
  'ours-nofsync': { file: 'ours.js', ours: true, optIn: true, env: { BENCH_OURS_OPTIONS: JSON.stringify({ fsync: false }) } },
  // Scale-out: two instances on PostgreSQL (the uploads/s and MB/s scenarios only).
  'ours-pg2': { file: 'ours.js', ours: true, postgres: true, instances: 2, scenarios: ['large-64m', 'large-8m', 'small', 'small-cwu', 'concurrent'] },
  // Opt-in: one instance on PostgreSQL, to separate the database's cost from the second instance's.
  'ours-pg1': { file: 'ours.js', ours: true, postgres: true, instances: 1, optIn: true, scenarios: ['large-64m', 'large-8m', 'small', 'small-cwu', 'concurrent'] }
}
const POSTGRES_URL = process.env.BENCH_POSTGRES_URL || process.env.TUS_TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test'

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
  { name: 'checksum-sha1', kind: 'large', total: LARGE, chunk: 8 * MiB, checksum: 'sha1', bytes: true, oursOnly: true, relativeTo: 'large-8m', what: `large-8m with Upload-Checksum sha1` },
  { name: 'checksum-sha256', kind: 'large', total: LARGE, chunk: 8 * MiB, checksum: 'sha256', bytes: true, oursOnly: true, relativeTo: 'large-8m', what: `large-8m with Upload-Checksum sha256` }
]
for (const s of SCENARIOS) {
  s.unit = s.bytes ? 'MiB/s' : s.kind === 'head' ? 'req/s' : 'uploads/s'
  s.concurrency ??= 1
  s.bufferSize = Math.max(s.chunk ?? 0, s.size ?? 0)
}

function list (env, known, label) {
  if (!env) return undefined
  const names = env.split(',').map((n) => n.trim()).filter(Boolean)
  for (const n of names) if (!known.includes(n)) throw new Error(`${label}: unknown "${n}" (known: ${known.join(', ')})`)
  return names
}
const onlyScenarios = list(process.env.BENCH_ONLY, SCENARIOS.map((s) => s.name), 'BENCH_ONLY')
const onlyServers = list(process.env.BENCH_SERVERS, Object.keys(SERVERS), 'BENCH_SERVERS')
const scenarios = SCENARIOS.filter((s) => onlyScenarios === undefined || onlyScenarios.includes(s.name))
let servers = Object.keys(SERVERS).filter((n) => onlyServers === undefined ? !SERVERS[n].optIn : onlyServers.includes(n))
const runsScenario = (name, scenario) => (!scenario.oursOnly || SERVERS[name].ours) &&
  (SERVERS[name].scenarios === undefined || SERVERS[name].scenarios.includes(scenario.name)) &&
  (scenario.servers === undefined || scenario.servers.includes(name))

/** Runs one statement on the benchmark's PostgreSQL (pg is a dependency of the plugin). */
async function postgresQuery (text) {
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 })
  await client.connect()
  try { return (await client.query(text)).rows } finally { await client.end() }
}

/** CPU seconds of PostgreSQL's processes (the postmaster, its backends and workers). */
function postgresCpuSeconds () {
  let total = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue
      total += cpuSeconds(entry)
    } catch {} // gone meanwhile
  }
  return total
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
async function startServer (name, root, profileName) {
  const def = SERVERS[name]
  const uploadDir = join(root, 'uploads')
  mkdirSync(uploadDir)
  const env = { ...def.env, BENCH_UPLOAD_DIR: uploadDir, BENCH_DB_PATH: join(root, 'uploads.db') }
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
  const busyBefore = QUIET_WAIT > 0 ? await waitForQuiet() : undefined
  try {
    server = await startServer(name, root, `${scenario.name}.${name}.r${round}.cpuprofile`)
    const pids = server.pids
    const serverCpu = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0)
    // The main thread (JavaScript, the event loop) apart from libuv's pool (file writes, fsync) and V8's helpers.
    const mainCpu = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid, true), 0)
    // With several instances: the peak of their sum, sampled at the same moments.
    const serverRss = () => pids.reduce((sum, pid) => sum + rssKiB(pid), 0)
    const database = SERVERS[name].postgres === true
    let peak = serverRss()
    sampler = setInterval(() => { peak = Math.max(peak, serverRss()) }, 50)
    let cpuStart = 0
    let mainStart = 0
    let busyStart = 0
    let dbStart = 0
    const load = await runLoad({ urls: server.urls, scenario, concurrency: scenario.concurrency, bufferSize: scenario.bufferSize }, () => {
      cpuStart = serverCpu()
      mainStart = mainCpu()
      busyStart = machineBusySeconds()
      if (database) dbStart = postgresCpuSeconds()
    })
    const cpuEnd = serverCpu()
    const mainCpuSeconds = mainCpu() - mainStart
    const busy = machineBusySeconds() - busyStart
    const dbCpu = database ? postgresCpuSeconds() - dbStart : 0
    peak = Math.max(peak, serverRss())
    clearInterval(sampler)
    sampler = undefined
    if (!load.ok) throw new Error(`load failed: ${load.error.split('\n')[0]}; server stderr: ${server.stderr().trim().slice(-500)}`)

    const expectedFiles = scenario.kind === 'large' ? 1 : scenario.uploads
    const stored = storedData(server.uploadDir)
    if (stored.bytes !== load.stored || stored.files !== expectedFiles) {
      throw new Error(`storage check: ${stored.files} data files with ${stored.bytes} bytes, expected ${expectedFiles} with ${load.stored}`)
    }
    const cpu = cpuEnd - cpuStart
    const run = {
      round,
      ok: true,
      seconds: load.seconds,
      throughput: scenario.bytes ? load.bytes / MiB / load.seconds : load.ops / load.seconds,
      peakRssMiB: peak / 1024,
      cpuSeconds: cpu,
      mainThreadCpuSeconds: mainCpuSeconds,
      cpuSecondsTotal: cpuEnd,
      clientCpuSeconds: load.clientCpuSeconds,
      connections: load.connections,
      instances: pids.length,
      // Cores used by everything else (the runner included) during the measured phase.
      otherCores: Math.max(0, (busy - cpu - dbCpu - load.clientCpuSeconds) / load.seconds),
      busyCoresBefore: busyBefore
    }
    if (database) run.databaseCpuSeconds = dbCpu
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
  lines.push(pad('server', 14) + lpad('median', 10) + lpad('min–max', 20) + lpad('×raw', 7) + lpad('ours÷this', 11) + lpad('peak RSS', 11) + lpad(cpuLabel, 11) + lpad('client core', 13))
  const raw = result.servers.raw
  const ours = result.servers.ours
  for (const [name, s] of Object.entries(result.servers)) {
    if (s.median === undefined) { lines.push(pad(name, 14) + '  FAILED: ' + s.runs.map((r) => r.error).join('; ')); continue }
    lines.push(
      pad(name, 14) +
      lpad(fmt(s.median), 10) +
      lpad(`${fmt(s.min)}–${fmt(s.max)}`, 20) +
      lpad(s.ratioToRaw === undefined ? '–' : fmt(s.ratioToRaw, 2), 7) +
      lpad(s.oursOverThis === undefined || name === 'ours' ? '–' : fmt(s.oursOverThis, 2), 11) +
      lpad(`${fmt(s.peakRssMiB, 0)} MiB`, 11) +
      lpad(scenario.bytes ? fmt(s.cpuPerGiB, 2) : fmt(s.cpuMsPerOp, 3), 11) +
      lpad(`${fmt(100 * s.clientCore, 0)}%`, 13) +
      (s.failed ? `  (${s.failed} failed run${s.failed > 1 ? 's' : ''})` : '') +
      (s.noisyRuns ? `  (${s.noisyRuns} noisy)` : '')
    )
  }
  if (raw?.median !== undefined) {
    const others = Object.entries(result.servers).filter(([n, s]) => n !== 'raw' && s.median !== undefined)
    const beaten = others.filter(([, s]) => s.median >= raw.median).map(([n]) => n)
    lines.push(beaten.length === 0
      ? `raw baseline is the fastest (${fmt(raw.median)} ${scenario.unit}): the load client is not the bottleneck for the servers measured against it.`
      : `WARNING: raw baseline is NOT the fastest (${beaten.join(', ')} ≥ raw): the client or the machine may be the limit here.`)
    if (raw.clientCore > 0.85) lines.push(`(the client used ${fmt(100 * raw.clientCore, 0)}% of a core against raw: raw may be capped by the client, so its lead is a lower bound)`)
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
      s.relative = { to: scenario.relativeTo, throughputRatio: s.median / b.median, cpuPerGiBDelta: s.cpuPerGiB - b.cpuPerGiB, peakRssMiBDelta: s.peakRssMiB - b.peakRssMiB }
      lines.push(`${name} vs its ${scenario.relativeTo}: ${fmt(s.median / b.median, 2)}× the throughput (${fmt(s.median)} vs ${fmt(b.median)} MiB/s), ` +
        `${s.cpuPerGiB >= b.cpuPerGiB ? '+' : ''}${fmt(s.cpuPerGiB - b.cpuPerGiB, 2)} CPU-s/GiB (${fmt(s.cpuPerGiB, 2)} vs ${fmt(b.cpuPerGiB, 2)}), ` +
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
  if (scenario.oursOnly) lines.push('(raw and @tus/server do not support Upload-Checksum: ours only)')
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
    servers,
    clockTicks: CLK_TCK,
    loadAverageAtStart: loadavg(),
    cpuProfileDir: CPU_PROF,
    notes: [
      'throughput = work / wall time of the measured phase, timed by the load client',
      'CPU = server utime+stime over the measured phase (start-up and HEAD setup excluded)',
      'peak RSS = max of the server VmRSS sampled every 50 ms over the whole run',
      'ours runs with its default options (fsync on); the peers do not fsync'
    ]
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
      config: { kind: scenario.kind, total: scenario.total, chunk: scenario.chunk, uploads: scenario.uploads, size: scenario.size, concurrency: scenario.concurrency, requests: scenario.requests, checksum: scenario.checksum, cwu: scenario.cwu },
      servers: Object.fromEntries(names.map((n) => [n, summarise(runs[n])]))
    }
    const raw = result.servers.raw?.median
    const ours = result.servers.ours?.median
    for (const s of Object.values(result.servers)) {
      if (s.median === undefined) continue
      if (raw !== undefined) s.ratioToRaw = s.median / raw
      if (ours !== undefined) s.oursOverThis = ours / s.median
    }
    if (raw !== undefined) result.rawIsFastest = Object.entries(result.servers).every(([n, s]) => n === 'raw' || s.median === undefined || s.median < raw)
    results[scenario.name] = result
    result.table = table(scenario, result, results)
    console.log('\n' + result.table)
  }
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
