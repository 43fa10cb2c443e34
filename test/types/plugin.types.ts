// Type tests for the public typings: compiled (never run) by `npm run typecheck`.
// A line marked @ts-expect-error must fail to compile, or the typecheck fails.
import type { Readable } from 'node:stream'
import Fastify, { type FastifyRequest } from 'fastify'
import tus, {
  TusError, tusClientErrorHandler, tusFrameworkErrors,
  type CompleteHookStatus, type ListUploadsOptions, type TerminationReason, type TusDecorator, type TusPluginOptions, type UploadMetadata, type UploadRecord
} from '../../lib/index.js'
import type { PLUGIN_OPTION_NAMES } from '../../lib/options.js'

/** Compiles only when A and B are the same type (not merely assignable). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
function expectType<T extends true> (): T | void {}

const app = Fastify()
await app.register(tus, { prefix: '/files', uploadDir: './u', maxSize: 1024, checksumAlgorithms: ['sha256'] })

/* ---------------- app.tus is typed after register ---------------- */

expectType<Equal<typeof app.tus, TusDecorator>>()
expectType<Equal<ReturnType<typeof app.tus.get>, Promise<UploadRecord | undefined>>>()
expectType<Equal<ReturnType<typeof app.tus.list>, Promise<UploadRecord[]>>>()
expectType<Equal<Parameters<typeof app.tus.list>, [options?: ListUploadsOptions]>>()
expectType<Equal<ReturnType<typeof app.tus.createReadStream>, Promise<Readable>>>()
expectType<Equal<ReturnType<typeof app.tus.delete>, Promise<boolean>>>()
expectType<Equal<ReturnType<typeof app.tus.cleanupExpired>, Promise<number>>>()
expectType<Equal<ReturnType<typeof app.tus.runDueCompleteHooks>, Promise<number>>>()
expectType<Equal<ReturnType<typeof app.tus.addHook>, void>>()
expectType<Equal<typeof app.tus.prefix, string>>()
// @ts-expect-error prefix is read-only
app.tus.prefix = '/other'

const record: UploadRecord | undefined = await app.tus.get('id')
if (record !== undefined) {
  expectType<Equal<typeof record.id, string>>()
  expectType<Equal<typeof record.offset, number>>()
  expectType<Equal<typeof record.length, number | null>>()
  expectType<Equal<typeof record.metadata, UploadMetadata>>()
  expectType<Equal<typeof record.metadata.filename, string | null | undefined>>()
  expectType<Equal<typeof record.concat, 'partial' | 'final' | null>>()
  expectType<Equal<typeof record.parts, string[] | null>>()
  expectType<Equal<typeof record.createdAt, Date>>()
  expectType<Equal<typeof record.expiresAt, Date | null>>()
  expectType<Equal<typeof record.completedAt, Date | null>>()
  expectType<Equal<typeof record.completeHook, CompleteHookStatus | null>>()
  expectType<Equal<NonNullable<typeof record.completeHook>['state'], 'pending' | 'running' | 'delivered' | 'rejected' | 'failed'>>()
}
await app.tus.list({ status: 'unfinished', limit: 10, offset: 20 })
// @ts-expect-error status is 'finished', 'unfinished' or 'all'
await app.tus.list({ status: 'done' })
await app.tus.createReadStream('id', { start: 0, end: 99 })
// @ts-expect-error a range has both ends
await app.tus.createReadStream('id', { start: 0 })

/* ---------------- hook payloads are typed ---------------- */

app.tus.addHook('onCreate', ({ request, upload }) => {
  expectType<Equal<typeof request, FastifyRequest>>()
  expectType<Equal<typeof upload.length, number | null>>()
  expectType<Equal<typeof upload.metadata, UploadMetadata>>()
  expectType<Equal<typeof upload.concat, 'partial' | 'final' | null>>()
  expectType<Equal<typeof upload.parts, string[] | null>>()
  if (upload.metadata.filetype === 'text/html') throw new TusError(415, 'no html')
  return { metadata: { ...upload.metadata, owner: 'me' }, id: 'custom-id' }
})
app.tus.addHook('onCreate', async () => {})
app.tus.addHook('onComplete', async ({ upload, request, idempotencyKey, attempt }) => {
  expectType<Equal<typeof request, FastifyRequest | null>>()
  expectType<Equal<typeof upload, UploadRecord>>()
  expectType<Equal<typeof upload.length, number | null>>()
  expectType<Equal<typeof idempotencyKey, string>>()
  expectType<Equal<typeof attempt, number>>()
})
app.tus.addHook('onTerminate', ({ reason, request, upload }) => {
  expectType<Equal<typeof reason, TerminationReason>>()
  expectType<Equal<TerminationReason, 'client' | 'expired' | 'server'>>()
  expectType<Equal<typeof request, FastifyRequest | null>>()
  expectType<Equal<typeof upload, UploadRecord>>()
})
// Handlers given as options get the same payload types.
await app.register(tus, {
  onCreate: ({ request, upload }) => {
    expectType<Equal<typeof request, FastifyRequest>>()
    expectType<Equal<typeof upload.length, number | null>>()
  },
  onComplete: [async ({ request }) => { expectType<Equal<typeof request, FastifyRequest | null>>() }],
  onTerminate: async ({ reason }) => { expectType<Equal<typeof reason, TerminationReason>>() }
})

// @ts-expect-error unknown hook name
app.tus.addHook('onFinish', async () => {})
// @ts-expect-error onCreate may not return a number as id
app.tus.addHook('onCreate', () => ({ id: 5 }))
// @ts-expect-error onCreate may not return metadata values that are numbers
app.tus.addHook('onCreate', () => ({ metadata: { size: 5 } }))
// @ts-expect-error an onComplete payload has no reason
app.tus.addHook('onComplete', ({ reason }) => { void reason })
// @ts-expect-error request may be null in onComplete
app.tus.addHook('onComplete', ({ request }) => { void request.headers })

/* ---------------- wrong options are rejected ---------------- */

// @ts-expect-error prefix is a string
const badPrefix: TusPluginOptions = { prefix: 1 }
// @ts-expect-error maxSize is a number
const badSize: TusPluginOptions = { maxSize: '10' }
// @ts-expect-error unknown algorithm
const badAlgorithm: TusPluginOptions = { checksumAlgorithms: ['crc32'] }
// @ts-expect-error fsync is a boolean
const badFsync: TusPluginOptions = { fsync: 'yes' }
// @ts-expect-error cors is an object or false
const badCors: TusPluginOptions = { cors: true }
// @ts-expect-error completeDelivery is 'wait' or 'background'
const badDelivery: TusPluginOptions = { completeDelivery: 'later' }
// @ts-expect-error unknown option key
const badKey: TusPluginOptions = { uploaddir: './x' }
void badPrefix; void badSize; void badAlgorithm; void badFsync; void badCors; void badDelivery; void badKey
// @ts-expect-error register checks the options too
await app.register(tus, { uploadDir: 42 })
// @ts-expect-error register: prefix is a string
await app.register(tus, { prefix: 1 })
// @ts-expect-error register: unknown algorithm
await app.register(tus, { checksumAlgorithms: ['crc32'] })
// @ts-expect-error register: fsync is a boolean
await app.register(tus, { fsync: 'yes' })
// @ts-expect-error register: unknown option key
await app.register(tus, { uploaddir: './x' })

// Several instances on PostgreSQL.
const scaled: TusPluginOptions = { db: 'postgres://tus@db:5432/uploads', schema: 'tus', poolSize: 20, locker: 'database', lockLease: 5000 }
// @ts-expect-error locker is 'auto', 'memory' or 'database'
const badLocker: TusPluginOptions = { locker: 'redis' }
void scaled; void badLocker

/* ---------------- the types and the runtime option list agree ---------------- */

// Every key resolveOptions accepts is a typed option, except Fastify's own register options.
type RuntimeOptionNames = typeof PLUGIN_OPTION_NAMES[number]
expectType<Equal<Exclude<RuntimeOptionNames, 'logLevel' | 'logSerializers'>, keyof TusPluginOptions>>()

/* ---------------- the exported error handlers fit Fastify's options ---------------- */

void Fastify({ clientErrorHandler: tusClientErrorHandler, frameworkErrors: tusFrameworkErrors })

/* ---------------- object storage options ---------------- */

const s3Options: TusPluginOptions = { s3: { bucket: 'uploads', prefix: 'tus/', endpoint: 'http://127.0.0.1:9000', partSize: 8 << 20 } }
const azureOptions: TusPluginOptions = { azure: { container: 'uploads', prefix: 'tus/', blockSize: 4 << 20, connectionString: 'UseDevelopmentStorage=true' } }
const azureByIdentity: TusPluginOptions = { azure: { container: 'uploads', url: 'https://acct.blob.core.windows.net', credential: {} } }
void [s3Options, azureOptions, azureByIdentity]
// @ts-expect-error the container is required
const noContainer: TusPluginOptions = { azure: { prefix: 'tus/' } }
// @ts-expect-error blockSize is a number of bytes
const textBlockSize: TusPluginOptions = { azure: { container: 'uploads', blockSize: '8MiB' } }
void [noContainer, textBlockSize]

/* ---------------- metrics: a prom-client Registry, or true ---------------- */

await app.register(tus, { metrics: new (await import('prom-client')).Registry() })
await app.register(tus, { metrics: true })
// @ts-expect-error metrics is a registry (getSingleMetric, registerMetric) or true
await app.register(tus, { metrics: 'prometheus' })
