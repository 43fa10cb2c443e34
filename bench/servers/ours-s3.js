// fastify-tus (this repository's build) in Fastify with its S3 store: the
// bytes go to the bucket the runner created for this run (objects at
// `<BENCH_S3_PREFIX><id>`), the metadata to a fresh SQLite file. Otherwise the
// plugin's defaults. Endpoint, keys and part size: see s3Settings() in common.js.
import Fastify from 'fastify'
import tus from '../../dist/lib/index.js'
import { announce, logFailure, onStop, s3Settings } from './common.js'

const s3 = s3Settings()
const dbPath = process.env.BENCH_DB_PATH
if (!dbPath) throw new Error('BENCH_DB_PATH is required')
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
// Without a logger a failure is answered 500 silently: say why on stderr, which
// the runner quotes when a run fails. Observes only; the answer is unchanged.
app.addHook('onError', async (_request, _reply, err) => { if ((err.statusCode ?? 500) >= 500) logFailure('ours-s3', err) })
await app.register(tus, {
  prefix: '/files',
  db: dbPath,
  s3: {
    bucket: s3.bucket,
    prefix: s3.prefix,
    endpoint: s3.endpoint,
    region: s3.region,
    partSize: s3.partSize,
    // The plugin sets forcePathStyle with an endpoint and the WHEN_REQUIRED checksums itself.
    clientOptions: { credentials: s3.credentials }
  }
})
const address = await app.listen({ host: '127.0.0.1', port: 0 })
announce(new URL(address).port)
onStop(() => app.close())
