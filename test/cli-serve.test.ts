// `fastify-tus serve`: flags reach the plugin, bad flags fail with a one-line reason.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { tempDir } from './helpers/server.js'
import { spawnServer } from './helpers/spawn.js'
import { TUS, send } from './helpers/http.js'
import { POSTGRES_URL, query, testSchema } from './helpers/postgres.js'

const BIN = 'dist/lib/cli/main.js'

t.test('--help lists every flag', async (t) => {
  const run = spawnSync(process.execPath, [BIN, 'serve', '--help'], { encoding: 'utf8' })
  t.equal(run.status, 0)
  for (const flag of ['--host', '--port', '--base-path', '--upload-dir', '--db-path', '--db ', '--db-schema', '--db-pool-size', '--lock-lease', '--max-size', '--max-chunk-size',
    '--upload-expiry', '--cors-origin', '--log-level', '--checksum-algorithms', '--help']) {
    t.match(run.stdout, flag)
  }
})

t.test('bad flags exit non-zero with a reason', async (t) => {
  for (const args of [['--port', 'abc'], ['--max-size', '-1'], ['--nope'], ['--checksum-algorithms', 'crc32'], ['--log-level', 'loud'],
    ['--db', 'a.db', '--db-path', 'b.db'], ['--db-schema', 'x'], ['--db-pool-size', '5'], ['--db', 'postgres://h/db', '--db-pool-size', '0'],
    ['--db', 'postgres://h/db', '--db-schema', 'bad-name']]) {
    const run = spawnSync(process.execPath, [BIN, 'serve', ...args], { encoding: 'utf8', timeout: 10_000 })
    t.not(run.status, 0, args.join(' '))
    t.match(run.stderr.split('\n')[0], /^fastify-tus: \S/, `${args.join(' ')}: ${run.stderr.split('\n')[0]}`)
  }
  const unknown = spawnSync(process.execPath, [BIN, 'frobnicate'], { encoding: 'utf8' })
  t.equal(unknown.status, 2)
})

t.test('serve applies its flags', async (t) => {
  const dir = tempDir(t)
  const uploadDir = join(dir, 'store')
  const dbPath = join(dir, 'meta.db')
  const { origin } = await spawnServer(t, [BIN, 'serve', '--port', '0', '--base-path', '/up', '--upload-dir', uploadDir,
    '--db-path', dbPath, '--max-size', '1000', '--max-chunk-size', '100', '--upload-expiry', '60',
    '--checksum-algorithms', 'sha256,md5', '--cors-origin', 'https://a.example', '--cors-origin', 'https://b.example'])
  const options = await send('OPTIONS', `${origin}/up/`)
  t.equal(options.status, 204)
  t.equal(options.headers['tus-max-size'], '1000')
  t.equal(options.headers['tus-checksum-algorithm'], 'sha256,md5')
  t.match(options.headers['tus-extension'], 'expiration')

  const created = await send('POST', `${origin}/up/`, { headers: { ...TUS, 'Upload-Length': '500', Origin: 'https://b.example' } })
  t.equal(created.status, 201)
  t.equal(created.headers['access-control-allow-origin'], 'https://b.example')
  t.ok(created.headers['upload-expires'], 'expiry set')
  t.match(created.headers.location, `${origin}/up/`)
  const tooBig = await send('PATCH', created.headers.location as string, {
    headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body: Buffer.alloc(101)
  })
  t.equal(tooBig.status, 413, 'max chunk size applies')
  t.equal((await send('POST', `${origin}/up/`, { headers: { ...TUS, 'Upload-Length': '1001' } })).status, 413, 'max size applies')
  t.ok(existsSync(dbPath), 'metadata in --db-path')
  t.ok(existsSync(uploadDir), 'bytes in --upload-dir')
})

t.test('--db takes a SQLite file too', async (t) => {
  const dir = tempDir(t)
  const dbPath = join(dir, 'via-db.sqlite')
  const { origin } = await spawnServer(t, [BIN, 'serve', '--port', '0', '--upload-dir', join(dir, 'up'), '--db', dbPath])
  t.equal((await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '1' } })).status, 201)
  t.ok(existsSync(dbPath), 'metadata in the --db file')
})

t.test('--db postgres://... keeps the metadata in PostgreSQL', { skip: POSTGRES_URL === undefined ? 'TUS_TEST_POSTGRES_URL is not set' : false }, async (t) => {
  const schema = testSchema(t)
  const dir = tempDir(t)
  const { origin } = await spawnServer(t, [BIN, 'serve', '--port', '0', '--upload-dir', join(dir, 'up'), '--log-level', 'warn',
    '--db', POSTGRES_URL!, '--db-schema', schema, '--db-pool-size', '3', '--lock-lease', '5'])
  const created = await send('POST', `${origin}/files/`, { headers: { ...TUS, 'Upload-Length': '3' } })
  t.equal(created.status, 201)
  const rows = await query<{ id: string, upload_length: string }>('SELECT id, upload_length FROM tus_uploads', [], schema)
  t.same(rows.map((r) => [r.id, Number(r.upload_length)]), [[String(created.headers.location).split('/').pop(), 3]], 'the row is in the schema')
  t.notOk(existsSync(join(dir, 'uploads.db')), 'no SQLite file')
})
