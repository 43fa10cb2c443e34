/**
 * Prometheus metrics: after a known mix of uploads (plain, checksummed,
 * concatenated, terminated, interrupted, a 409, a 423), the registry holds
 * exactly those counts and the byte total; `fastify-tus serve --metrics` serves
 * them as valid exposition text without loading prom-client; two plugin instances share one registry. The
 * metrics are our own classes (lib/observe/prometheus.ts), so what prom-client
 * does with a registry's metrics is checked too: OpenMetrics output, default
 * labels, resetMetrics, and a name already taken by someone else's metric.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { connect } from 'node:net'
import Fastify, { type FastifyInstance } from 'fastify'
import { Counter as PromCounter, Registry, type OpenMetricsContentType } from 'prom-client'
import tus, { type TusPluginOptions } from '../lib/index.js'
import { startServer, tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, bytes, create, digest, patch, send } from './helpers/http.js'
import { sleep, waitFor } from './helpers/tus.js'

type Values = Map<string, number>

/** Every sample of the registry as `name{label="value",...}` → value. */
async function samples (registry: Pick<Registry, 'getMetricsAsJSON'>): Promise<Values> {
  const values: Values = new Map()
  for (const metric of await registry.getMetricsAsJSON()) {
    for (const v of metric.values as Array<{ metricName?: string; labels: Record<string, string | number>; value: number }>) {
      const labels = Object.entries(v.labels).filter(([k]) => k !== 'le' || v.metricName?.endsWith('_bucket') === true).sort(([a], [b]) => a.localeCompare(b))
      values.set(`${v.metricName ?? metric.name}${labels.length === 0 ? '' : `{${labels.map(([k, x]) => `${k}="${x}"`).join(',')}}`}`, v.value)
    }
  }
  return values
}

/** A PATCH whose client goes away after `sent` of `declared` bytes. */
async function abandonedPatch (url: string, offset: number, sent: Buffer, declared: number): Promise<void> {
  const { hostname, port, pathname } = new URL(url)
  await new Promise<void>((resolve) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(`PATCH ${pathname} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nContent-Type: application/offset+octet-stream\r\nUpload-Offset: ${offset}\r\nContent-Length: ${declared}\r\n\r\n`)
      socket.write(sent, () => setTimeout(() => { socket.destroy(); resolve() }, 100))
    })
    socket.on('error', () => resolve())
  })
}

/** Checks every line of exposition text: HELP and TYPE lines, then samples `name{labels} value` of a typed metric. */
function expositionProblems (text: string, openMetrics = false): string[] {
  const problems: string[] = []
  const typed = new Set<string>()
  for (const line of text.split('\n')) {
    if (line === '' || (openMetrics && line === '# EOF')) continue
    const type = /^# TYPE (\w+) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type !== null) { typed.add(type[1]!); continue }
    if (/^# HELP \w+ .+$/.test(line)) continue
    const sample = /^(\w+)(\{(\w+="[^"\\\n]*"(,\w+="[^"\\\n]*")*)?\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line)
    if (sample === null) { problems.push(line); continue }
    const base = sample[1]!.replace(/_(bucket|sum|count|total)$/, '')
    if (!typed.has(sample[1]!) && !typed.has(base)) problems.push(`untyped: ${line}`)
  }
  return problems
}

t.test('a known mix of uploads gives exactly those counts', async (t) => {
  const registry = new Registry()
  const { endpoint, app } = await startServer(t, { metrics: registry, onComplete: async () => {} })
  const before = await samples(registry)
  t.equal(before.get('tus_uploads_terminated_total{reason="expired"}'), 0, 'labelled series known in advance start at 0')
  t.equal(before.get('tus_hook_invocations_total{hook="onProgress"}'), 0)
  t.equal(before.get('tus_complete_deliveries{state="pending"}'), 0)

  let kept = 0
  // Two plain uploads, one in two PATCHes.
  const a = await create(endpoint, { 'Upload-Length': '3000' })
  await patch(a, 0, bytes(1000, 1)); await patch(a, 1000, bytes(2000, 2)); kept += 3000
  const b = await create(endpoint, { 'Upload-Length': '500' })
  await patch(b, 0, bytes(500, 3)); kept += 500
  // A checksummed one.
  const c = await create(endpoint, { 'Upload-Length': '700' })
  const body = bytes(700, 4)
  t.equal((await patch(c, 0, body, { 'Upload-Checksum': `sha256 ${digest('sha256', body)}` })).status, 204); kept += 700
  // A concatenation: two partials (creation-with-upload) and their final.
  const parts: string[] = []
  for (const n of [100, 200]) {
    const res = await send('POST', `${endpoint}/`, { headers: { ...TUS, ...OCTET, 'Upload-Length': String(n), 'Upload-Concat': 'partial' }, body: bytes(n, n) })
    parts.push(new URL(String(res.headers.location)).pathname); kept += n
  }
  t.equal((await send('POST', `${endpoint}/`, { headers: { ...TUS, 'Upload-Concat': `final;${parts.join(' ')}` } })).status, 201)
  // One terminated, one 409.
  const d = await create(endpoint, { 'Upload-Length': '10' })
  t.equal((await patch(d, 5, bytes(5, 5))).status, 409)
  t.equal((await send('DELETE', d, { headers: TUS })).status, 204)
  // One interrupted after 64 KiB, one 423 while it is being written.
  const e = await create(endpoint, { 'Upload-Length': String(1 << 20) })
  const interrupted = abandonedPatch(e, 0, bytes(64 << 10, 6), 1 << 20)
  await sleep(50)
  t.equal((await patch(e, 0, bytes(10, 7))).status, 423, 'a second writer meets 423')
  await interrupted
  await waitFor(async () => (await samples(registry)).get('tus_uploads_interrupted_total') === 1, 3000, 'the interruption to be counted')
  kept += (await app.tus.get(e.split('/').pop()!))!.offset

  const m = await samples(registry)
  t.equal(m.get('tus_uploads_created_total'), 8, 'created: a, b, c, two partials, the final, d, e')
  t.equal(m.get('tus_uploads_completed_total'), 6, 'completed: a, b, c, two partials, the final')
  t.equal(m.get('tus_uploads_terminated_total{reason="client"}'), 1, 'terminated by a client: d')
  t.equal(m.get('tus_uploads_terminated_total{reason="expired"}'), 0)
  t.equal(m.get('tus_uploads_interrupted_total'), 1, 'interrupted: e')
  t.equal(m.get('tus_received_bytes_total'), kept, `received bytes: every byte kept (${kept})`)
  t.equal(m.get('tus_lock_conflicts_total'), 1, 'one 423')
  t.equal(m.get('tus_requests_total{method="PATCH",status="204"}'), 4, 'PATCH 204 ×4')
  t.equal(m.get('tus_requests_total{method="PATCH",status="409"}'), 1)
  t.equal(m.get('tus_requests_total{method="PATCH",status="423"}'), 1)
  t.equal(m.get('tus_requests_total{method="POST",status="201"}'), 8)
  t.equal(m.get('tus_requests_total{method="DELETE",status="204"}'), 1)
  t.equal(m.get('tus_patch_duration_seconds_count'), 7, 'the PATCH histogram counted every PATCH (4 + 409 + 423 + the interrupted one)')
  t.equal(m.get('tus_patch_requests_in_flight'), 0, 'none in flight now')
  t.equal(m.get('tus_upload_duration_seconds_count'), 6, 'one upload duration per completion')
  t.equal(m.get('tus_hook_invocations_total{hook="onComplete"}'), 4, 'onComplete ran for a, b, c and the final (not the partials)')
  t.equal(m.get('tus_hook_errors_total{hook="onComplete"}'), 0)
  t.ok((m.get('tus_store_operation_duration_seconds_count{operation="write",store="file"}') ?? 0) >= 7, 'store writes timed')
  t.equal(m.get('tus_complete_deliveries{state="failed"}'), 0, 'the onComplete backlog, read from the table')
})

t.test('`serve --metrics` serves valid exposition text at /metrics, outside the tus prefix', async (t) => {
  const dir = tempDir(t)
  const server = await spawnServer(t, ['dist/lib/cli/main.js', 'serve', '--port', '0', '--upload-dir', `${dir}/u`, '--db-path', `${dir}/db`, '--metrics'])
  await create(`${server.origin}/files`, { 'Upload-Length': '0' })
  const res = await send('GET', `${server.origin}/metrics`)
  t.equal(res.status, 200)
  t.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/)
  t.same(expositionProblems(res.text), [], 'every line is valid exposition format')
  t.match(res.text, /^tus_uploads_created_total 1$/m, 'the creation is counted')
  t.notMatch(res.text, /process_cpu|nodejs_/, 'no default process metrics')
})

t.test('`serve --metrics` does not load prom-client', async (t) => {
  const dir = tempDir(t)
  // A process of its own (this one has prom-client loaded): build the command's server with
  // --metrics, serve a scrape, then look for prom-client among the modules loaded.
  const script = `
    import { createRequire } from 'node:module'
    import { buildServer, parseServeArgs } from './dist/lib/cli/serve.js'
    const app = await buildServer(parseServeArgs(['--upload-dir', ${JSON.stringify(`${dir}/u`)}, '--db-path', ${JSON.stringify(`${dir}/db`)}, '--metrics', '--log-level', 'error']))
    const res = await app.inject({ method: 'GET', url: '/metrics' })
    await app.close()
    const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => k.includes('/node_modules/prom-client/'))
    console.log(JSON.stringify({ status: res.statusCode, created: /^tus_uploads_created_total 0$/m.test(res.body), loaded: loaded.length }))`
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
  t.same(JSON.parse(out.trim().split('\n').pop()!), { status: 200, created: true, loaded: 0 }, 'scraped, with no prom-client module loaded')
})

t.test('two plugin instances in one process share one registry without throwing; each counts its own', async (t) => {
  const registry = new Registry()
  const dir = tempDir(t)
  const app = Fastify()
  await app.register(tus, { prefix: '/a', uploadDir: `${dir}/a`, db: `${dir}/a.db`, metrics: registry })
  await app.register(async (child) => { await child.register(tus, { prefix: '/b', uploadDir: `${dir}/b`, db: `${dir}/b.db`, metrics: registry }) })
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  await create(`${origin}/a`, { 'Upload-Length': '0' })
  await create(`${origin}/b`, { 'Upload-Length': '0' })
  await create(`${origin}/b`, { 'Upload-Length': '0' })
  t.equal((await samples(registry)).get('tus_uploads_created_total'), 3, 'three creations, each counted once')
})

t.test('the registry outlives the apps reporting into it: the delivery gauge reads the open instances\' databases, each once', async (t) => {
  const registry = new Registry()
  const dir = tempDir(t)
  const failing = { completeHookAttempts: 1, onComplete: async () => { throw new Error('post-processing failed') } }
  const open = async (uploads: string, db: string, extra: TusPluginOptions = {}): Promise<{ app: FastifyInstance; endpoint: string }> => {
    const app = Fastify()
    await app.register(tus, { prefix: '/files', uploadDir: `${dir}/${uploads}`, db: `${dir}/${db}`, metrics: registry, ...extra })
    const origin = await app.listen({ host: '127.0.0.1', port: 0 })
    t.teardown(() => app.close())
    return { app, endpoint: `${origin}/files` }
  }
  const failed = async (): Promise<number | undefined> => (await samples(registry)).get('tus_complete_deliveries{state="failed"}')
  const failDelivery = async (endpoint: string, expected: number): Promise<void> => {
    const url = await create(endpoint, { 'Upload-Length': '3' })
    t.equal((await patch(url, 0, bytes(3, 1))).status, 204)
    await waitFor(async () => await failed() === expected, 3000, `${expected} failed deliveries`)
  }

  // The app whose instance made the gauge closes (its database with it); another registers on the registry.
  const first = await open('a', 'a.db')
  await first.app.close()
  const second = await open('b', 'b.db', failing)
  await failDelivery(second.endpoint, 1)
  t.equal(await failed(), 1, 'scraped after the first app closed: no error, the open instance\'s table')
  const third = await open('b', 'b.db')
  t.equal(await failed(), 1, 'a second instance on the same database file: its table counted once')
  const fourth = await open('d', 'd.db', failing)
  await failDelivery(fourth.endpoint, 2)
  t.equal(await failed(), 2, 'instances on two databases: both tables')
  await second.app.close()
  await third.app.close()
  t.equal(await failed(), 1, 'those on b.db closed: d.db alone')
  await fourth.app.close()
  t.equal(await failed(), 0, 'none open: nothing owed by anyone scraped')
})

t.test('what a prom-client registry does with its metrics works on ours: OpenMetrics, default labels, resetMetrics', async (t) => {
  const registry = new Registry<OpenMetricsContentType>()
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
  registry.setDefaultLabels({ instance: 'a' })
  const { endpoint } = await startServer(t, { metrics: registry })
  const url = await create(endpoint, { 'Upload-Length': '5' })
  t.equal((await patch(url, 0, bytes(5, 1))).status, 204)

  const text = await registry.metrics()
  t.same(expositionProblems(text, true), [], 'every line is valid')
  t.match(text, /^# TYPE tus_uploads_created counter$/m, 'OpenMetrics names a counter without _total...')
  t.match(text, /^tus_uploads_created_total\{instance="a"\} 1$/m, '...and its sample with it, with the default label')
  t.match(text, /^tus_patch_duration_seconds_bucket\{le="\+Inf",instance="a"\} 1$/m, 'a histogram\'s +Inf bucket')
  t.match(text, /^tus_patch_duration_seconds_count\{instance="a"\} 1$/m)
  t.match(text, /^tus_requests_total\{method="PATCH",status="204",instance="a"\} 1$/m)
  t.ok(text.endsWith('# EOF\n'))

  registry.resetMetrics()
  const after = await registry.metrics()
  t.match(after, /^tus_uploads_created_total\{instance="a"\} 0$/m, 'reset to 0')
  t.match(after, /^tus_requests_total\{method="PATCH",status="204",instance="a"\} 0$/m, 'a labelled series stays listed, at 0')
  t.match(after, /^tus_patch_duration_seconds_bucket\{le="\+Inf",instance="a"\} 0$/m)
  await create(endpoint, { 'Upload-Length': '0' })
  t.match(await registry.metrics(), /^tus_uploads_created_total\{instance="a"\} 1$/m, 'counting goes on after a reset')
})

t.test('histogram buckets: an observation equal to a bound counts in that bound\'s bucket; buckets are cumulative', async (t) => {
  const { Histogram } = await import('../lib/observe/prometheus.js')
  const registry = new Registry()
  const histogram = new Histogram('h_seconds', 'h', [0.1, 1, 10], ['kind'])
  registry.registerMetric(histogram as never)
  const a = histogram.with({ kind: 'a' })
  for (const v of [0.05, 0.1, 0.5, 1, 20]) a.observe(v)
  histogram.with({ kind: 'b' })
  const m = await samples(registry)
  t.same([0.1, 1, 10, '+Inf'].map((le) => m.get(`h_seconds_bucket{kind="a",le="${le}"}`)), [2, 4, 4, 5])
  t.equal(m.get('h_seconds_sum{kind="a"}'), 21.65)
  t.equal(m.get('h_seconds_count{kind="a"}'), 5)
  t.equal(m.get('h_seconds_count{kind="b"}'), 0, 'a series resolved and never observed is listed at 0')
  t.throws(() => new Histogram('x', 'x', [1], ['le']), /le is reserved/)
})

t.test('a metric name already taken by another library\'s metric: the plugin refuses to start, with the name', async (t) => {
  const registry = new Registry()
  registry.registerMetric(new PromCounter({ name: 'tus_requests_total', help: 'not ours', registers: [] }))
  const dir = tempDir(t)
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(async () => { await app.register(tus, { uploadDir: `${dir}/u`, db: `${dir}/db`, metrics: registry }) }, /registry already has a metric named tus_requests_total that fastify-tus did not create/)
})
