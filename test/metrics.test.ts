/**
 * Prometheus metrics: after a known mix of uploads (plain, checksummed,
 * concatenated, terminated, interrupted, a 409, a 423), the registry holds
 * exactly those counts and the byte total; `fastify-tus serve --metrics` serves
 * them as valid exposition text; two plugin instances share one registry.
 */
import t from 'tap'
import { connect } from 'node:net'
import Fastify from 'fastify'
import { Registry } from 'prom-client'
import tus from '../lib/index.js'
import { startServer, tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { OCTET, TUS, bytes, create, digest, patch, send } from './helpers/http.js'
import { sleep, waitFor } from './helpers/tus.js'

type Values = Map<string, number>

/** Every sample of the registry as `name{label="value",...}` → value. */
async function samples (registry: Registry): Promise<Values> {
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
  // The exposition format: HELP and TYPE lines, then samples `name{labels} value`.
  const problems: string[] = []
  const typed = new Set<string>()
  for (const line of res.text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE (\w+) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type !== null) { typed.add(type[1]!); continue }
    if (/^# HELP \w+ .+$/.test(line)) continue
    const sample = /^(\w+)(\{(\w+="[^"\\\n]*"(,\w+="[^"\\\n]*")*)?\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line)
    if (sample === null) { problems.push(line); continue }
    const base = sample[1]!.replace(/_(bucket|sum|count)$/, '')
    if (!typed.has(sample[1]!) && !typed.has(base)) problems.push(`untyped: ${line}`)
  }
  t.same(problems, [], 'every line is valid exposition format')
  t.match(res.text, /^tus_uploads_created_total 1$/m, 'the creation is counted')
  t.notMatch(res.text, /process_cpu|nodejs_/, 'no default process metrics')
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
