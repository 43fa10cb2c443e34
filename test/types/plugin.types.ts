// Type tests for the public typings: compiled (never run) by `npm run typecheck`.
// A line marked @ts-expect-error must fail to compile, or the typecheck fails.
import Fastify from 'fastify'
import tus, { TusError, type UploadRecord, type TusPluginOptions } from '../../lib/index.js'

const app = Fastify()
await app.register(tus, { prefix: '/files', uploadDir: './u', maxSize: 1024, checksumAlgorithms: ['sha256'] })

// app.tus is typed after register.
const record: UploadRecord | undefined = await app.tus.get('id')
if (record !== undefined) {
  const offset: number = record.offset
  const length: number | null = record.length
  const filename: string | null | undefined = record.metadata.filename
  void offset; void length; void filename
}
app.tus.addHook('onComplete', async ({ upload, request }) => {
  const id: string = upload.id
  const done: Date | null = upload.completedAt
  void id; void done; void request?.headers
})
app.tus.addHook('onCreate', ({ upload }) => {
  if (upload.metadata.filetype === 'text/html') throw new TusError(415, 'no html')
  return { metadata: { ...upload.metadata, owner: 'me' }, id: 'custom-id' }
})
app.tus.addHook('onTerminate', ({ reason }) => {
  const r: 'client' | 'expired' | 'server' = reason
  void r
})
const removed: number = await app.tus.cleanupExpired()
void removed

// @ts-expect-error unknown hook name
app.tus.addHook('onFinish', async () => {})
// @ts-expect-error onCreate may not return a number as id
app.tus.addHook('onCreate', () => ({ id: 5 }))
// @ts-expect-error maxSize is a number
const badSize: TusPluginOptions = { maxSize: '10' }
// @ts-expect-error unknown algorithm
const badAlgorithm: TusPluginOptions = { checksumAlgorithms: ['crc32'] }
// @ts-expect-error cors is an object or false
const badCors: TusPluginOptions = { cors: true }
void badSize; void badAlgorithm; void badCors
// @ts-expect-error register checks the options too
await app.register(tus, { uploadDir: 42 })

// Several instances on PostgreSQL.
const scaled: TusPluginOptions = { db: 'postgres://tus@db:5432/uploads', schema: 'tus', poolSize: 20, locker: 'database', lockLease: 5000 }
// @ts-expect-error locker is 'memory' or 'database'
const badLocker: TusPluginOptions = { locker: 'redis' }
void scaled; void badLocker
