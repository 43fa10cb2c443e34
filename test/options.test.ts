/** Bad plugin options fail at register time with a TypeError naming the option. */
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Fastify from 'fastify'
import tus, { type TusPluginOptions } from '../lib/index.js'
import { tempDir } from './helpers/server.js'

async function register (t: { teardown (fn: () => unknown): void }, options: Record<string, unknown>): Promise<void> {
  const dir = tempDir(t)
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  await app.register(tus, { uploadDir: join(dir, 'uploads'), db: join(dir, 'uploads.db'), ...options } as TusPluginOptions)
  await app.ready()
}

const bad: Array<[string, Record<string, unknown>, RegExp]> = [
  ['maxSize: -1', { maxSize: -1 }, /maxSize/],
  ['maxSize: "x"', { maxSize: 'x' }, /maxSize/],
  ['maxSize: 1.5', { maxSize: 1.5 }, /maxSize/],
  ['maxChunkSize: NaN', { maxChunkSize: Number.NaN }, /maxChunkSize/],
  ['expiration: -5', { expiration: -5 }, /expiration/],
  ['cleanupInterval: "1s"', { cleanupInterval: '1s' }, /cleanupInterval/],
  ['maxMetadataSize: -1', { maxMetadataSize: -1 }, /maxMetadataSize/],
  ['checksumAlgorithms: ["crc32"]', { checksumAlgorithms: ['crc32'] }, /checksumAlgorithms.*crc32/],
  ['checksumAlgorithms: "sha1"', { checksumAlgorithms: 'sha1' }, /checksumAlgorithms/],
  ['unknown option uploaddir', { uploaddir: './x' }, /uploaddir/],
  ['cors: "yes"', { cors: 'yes' }, /cors/],
  ['cors: null', { cors: null }, /cors/],
  ['onCreate: 5', { onCreate: 5 }, /onCreate/],
  ['onComplete: [fn, "x"]', { onComplete: [() => {}, 'x'] }, /onComplete/],
  ['onTerminate: {}', { onTerminate: {} }, /onTerminate/],
  ['fsync: "yes"', { fsync: 'yes' }, /fsync/],
  ['prefix: "files"', { prefix: 'files' }, /prefix/],
  ['prefix: "/a b"', { prefix: '/a b' }, /prefix/],
  ['uploadDir: ""', { uploadDir: '' }, /uploadDir/],
  ['db: 42', { db: 42 }, /\bdb\b/],
  ['poolSize on SQLite', { poolSize: 5 }, /poolSize/],
  ['poolSize: 0', { db: 'postgres://127.0.0.1:1/x', poolSize: 0 }, /poolSize/],
  ['schema on SQLite', { schema: 'tus' }, /schema/],
  ['schema: "a;b"', { db: 'postgres://127.0.0.1:1/x', schema: 'a;b' }, /schema/],
  ['locker: "redis"', { locker: 'redis' }, /locker/],
  ['lockLease: 10', { lockLease: 10 }, /lockLease/],
  ['lockLease: "10s"', { lockLease: '10s' }, /lockLease/]
]

for (const [label, options, pattern] of bad) {
  t.test(`rejects ${label}`, async (t) => {
    const err = await register(t, options).then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof TypeError, `a TypeError (${String(err)})`)
    t.match((err as Error | undefined)?.message ?? '', pattern, 'the message names the option')
    t.match((err as Error | undefined)?.message ?? '', /^fastify-tus: /)
  })
}

t.test('good options register', async (t) => {
  await register(t, {
    prefix: '/up',
    maxSize: 0,
    maxChunkSize: 1024,
    maxMetadataSize: 100,
    expiration: 1000,
    cleanupInterval: 0,
    checksumAlgorithms: ['sha256', 'sha256'],
    fsync: false,
    cors: { origin: ['https://a.example'], credentials: true },
    onCreate: [() => {}],
    onComplete: () => {},
    onTerminate: [],
    logLevel: 'warn'
  })
  await register(t, { cors: false, checksumAlgorithms: [] })
  t.pass('registered')
})

t.test('an unknown option is caught before anything is created', async (t) => {
  const dir = tempDir(t)
  const app = Fastify({ logger: false })
  t.teardown(() => app.close())
  const err = await app.register(tus, { uploadDir: join(dir, 'never'), db: join(dir, 'never.db'), maxsize: 5 } as TusPluginOptions)
    .then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof TypeError)
  t.match((err as Error).message, /unknown option "maxsize"/)
  t.notOk(existsSync(join(dir, 'never')), 'no upload dir created')
  t.notOk(existsSync(join(dir, 'never.db')), 'no database created')
})
