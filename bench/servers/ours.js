// fastify-tus (this repository's build) in Fastify, on its SQLite default with
// default options: a fresh database file and upload directory per run.
// BENCH_OURS_OPTIONS (JSON) may add plugin options, for the opt-in variants.
import Fastify from 'fastify'
import tus from '../../dist/lib/index.js'
import { announce, onStop, uploadDir } from './common.js'

const dbPath = process.env.BENCH_DB_PATH
if (!dbPath) throw new Error('BENCH_DB_PATH is required')
const extra = process.env.BENCH_OURS_OPTIONS ? JSON.parse(process.env.BENCH_OURS_OPTIONS) : {}
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
await app.register(tus, { prefix: '/files', uploadDir: uploadDir(), db: dbPath, ...extra })
const address = await app.listen({ host: '127.0.0.1', port: 0 })
announce(new URL(address).port)
onStop(() => app.close())
