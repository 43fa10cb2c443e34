// fastify-tus (this repository's build) in Fastify with default options.
// On its SQLite default: a fresh database file and upload directory per run.
// With BENCH_POSTGRES_URL (+ BENCH_POSTGRES_SCHEMA): metadata on PostgreSQL, for
// the several-instance runs, where each instance is one such process sharing the
// schema and the upload directory.
// BENCH_OURS_OPTIONS (JSON) may add plugin options, for the opt-in variants;
// BENCH_OURS_METRICS=1 turns Prometheus metrics on, in the registry `fastify-tus serve
// --metrics` uses (scraped by nobody: what counting costs); BENCH_OURS_METRICS=prom in a
// prom-client Registry instead (what an app that passes its own costs: prom-client is
// loaded too); BENCH_OURS_PROGRESS=1 adds an onProgress handler that does nothing
// (what the progress watch costs).
import Fastify from 'fastify'
import tus from '../../dist/lib/index.js'
import { announce, onStop, uploadDir } from './common.js'

const postgres = process.env.BENCH_POSTGRES_URL
const db = postgres
  ? { db: postgres, schema: process.env.BENCH_POSTGRES_SCHEMA }
  : { db: process.env.BENCH_DB_PATH }
if (!db.db) throw new Error('BENCH_DB_PATH or BENCH_POSTGRES_URL is required')
const extra = process.env.BENCH_OURS_OPTIONS ? JSON.parse(process.env.BENCH_OURS_OPTIONS) : {}
if (process.env.BENCH_OURS_METRICS === '1') extra.metrics = new (await import('../../dist/lib/observe/prometheus.js')).MetricsRegistry()
if (process.env.BENCH_OURS_METRICS === 'prom') extra.metrics = new (await import('prom-client')).Registry()
if (process.env.BENCH_OURS_PROGRESS === '1') extra.onProgress = () => {}
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 })
await app.register(tus, { prefix: '/files', uploadDir: uploadDir(), ...db, ...extra })
const address = await app.listen({ host: '127.0.0.1', port: 0 })
announce(new URL(address).port)
onStop(() => app.close())
