/**
 * Prometheus metrics, as a subscriber of the plugin's events (events.ts) plus
 * one gauge read from the table at scrape time. The metrics are our own
 * (prometheus.ts: prom-client's cost a small upload 3–4% of its CPU) and go only
 * into the registry given (get or create by name: two plugin instances, or a
 * re-register, share them instead of throwing). Every label set is resolved to
 * its series once: at start for the ones known in advance, at first use for the
 * others, all from small fixed sets. No label takes unbounded values: never an
 * upload id, file name, metadata value or error message.
 * docs/reference.md lists every metric.
 */
import type { TusMetricsRegistry } from '../../types/index.js'
import { HOOK_NAMES } from '../hooks/registry.js'
import { subscribe, type EventSource } from './events.js'
import { Counter, Gauge, Histogram, METRIC_BRAND, type Distribution, type MetricSnapshot, type Value } from './prometheus.js'

/** Uploads last from seconds to hours; a PATCH from milliseconds to hours. */
const PATCH_BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 7200]
const UPLOAD_BUCKETS = [0.1, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400]
const HOOK_BUCKETS = [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 15, 60]
const STORE_BUCKETS = [0.0005, 0.002, 0.01, 0.05, 0.25, 1, 5, 30]

export const TERMINATION_REASONS = ['client', 'expired', 'server'] as const
export const DELIVERY_STATES = ['pending', 'running', 'failed'] as const
const METHODS = ['OPTIONS', 'HEAD', 'GET', 'POST', 'PATCH', 'DELETE'] as const

export interface MetricsSettings {
  /** The data store's name (a label) and the operations it has, started at 0. */
  store: { name: string; operations: readonly string[] }
  /** onComplete deliveries by state, read from the table at scrape time. */
  deliveries: DeliveryCount
  /** The database they are read from (OpenedDatabase.identity): instances sharing a registry and a database count it once. */
  database: unknown
}

type DeliveryCount = () => Promise<Record<(typeof DELIVERY_STATES)[number], number>>

/**
 * The plugin instances reporting into each tus_complete_deliveries gauge (one per
 * registry), with the database each reads. The gauge outlives the instance that
 * made it: an app closed and another registered on the same registry (tests, a
 * reload) must read the live one's table, never the closed one's.
 */
const deliverySources = new WeakMap<object, Map<DeliveryCount, unknown>>()

/** The live instances' counts, each database once; a source that left during the read counts nothing. */
async function countDeliveries (gauge: Gauge<'state'>): Promise<void> {
  const sources = deliverySources.get(gauge) ?? new Map<DeliveryCount, unknown>()
  const databases = new Set<unknown>()
  const reads: Array<ReturnType<DeliveryCount>> = []
  for (const [read, database] of sources) {
    if (databases.has(database)) continue
    databases.add(database)
    reads.push(read().catch((err: unknown) => {
      if (sources.has(read)) throw err
      return { pending: 0, running: 0, failed: 0 }
    }))
  }
  const totals = { pending: 0, running: 0, failed: 0 }
  for (const counts of await Promise.all(reads)) for (const state of DELIVERY_STATES) totals[state] += counts[state]
  for (const state of DELIVERY_STATES) gauge.with({ state }).set(totals[state])
}

export interface InstalledMetrics {
  /** Count one answered request (HEAD and OPTIONS included). */
  request: (method: string, status: number) => void
  /** Stop listening (the app closes); the metrics stay in the registry. */
  close: () => void
}

export function installMetrics (registry: TusMetricsRegistry, source: EventSource, settings: MetricsSettings): InstalledMetrics {
  // Looked up by name before anything is built: a second plugin instance sharing the registry gets the first one's.
  const get = <M extends Counter<string> | Gauge<string> | Histogram<string>>(type: MetricSnapshot['type'], name: string, make: () => M): M => {
    const existing = registry.getSingleMetric(name) as (M & { [METRIC_BRAND]?: true }) | undefined
    if (existing === undefined) {
      const metric = make()
      registry.registerMetric(metric)
      return metric
    }
    if (existing[METRIC_BRAND] !== true || existing.type !== type) {
      throw new TypeError(`fastify-tus: option metrics: the registry already has a metric named ${name} that fastify-tus did not create`)
    }
    return existing
  }
  const counter = <L extends string = never>(name: string, help: string, labelNames: L[] = []): Counter<L> => get('counter', name, () => new Counter<L>(name, help, labelNames))
  const histogram = <L extends string = never>(name: string, help: string, buckets: number[], labelNames: L[] = []): Histogram<L> => get('histogram', name, () => new Histogram<L>(name, help, buckets, labelNames))

  const created = counter('tus_uploads_created_total', 'Uploads created.').with({})
  const completed = counter('tus_uploads_completed_total', 'Uploads whose last byte was stored (partial uploads of a concatenation included).').with({})
  const terminated = counter('tus_uploads_terminated_total', 'Uploads removed, by reason: client (DELETE), expired, server (app.tus.delete).', ['reason'])
  const interrupted = counter('tus_uploads_interrupted_total', 'PATCH requests that ended before their body did (client gone, shutdown, lost lock, storage failure).').with({})
  const received = counter('tus_received_bytes_total', 'Bytes of request bodies kept in uploads.').with({})
  const requests = counter('tus_requests_total', 'Requests answered by the upload routes, by method (after X-HTTP-Method-Override) and status.', ['method', 'status'])
  const inFlight = get('gauge', 'tus_patch_requests_in_flight', () => new Gauge('tus_patch_requests_in_flight', 'PATCH requests being served.')).with({})
  const patchDuration = histogram('tus_patch_duration_seconds', 'Duration of PATCH requests.', PATCH_BUCKETS).with({})
  const uploadDuration = histogram('tus_upload_duration_seconds', 'Time from an upload\'s creation to its last byte.', UPLOAD_BUCKETS).with({})
  const hookInvocations = counter('tus_hook_invocations_total', 'Hook handler runs, by hook.', ['hook'])
  const hookErrors = counter('tus_hook_errors_total', 'Hook handler runs that threw, by hook.', ['hook'])
  const hookDuration = histogram('tus_hook_duration_seconds', 'Duration of hook handler runs, by hook.', HOOK_BUCKETS, ['hook'])
  const lockConflicts = counter('tus_lock_conflicts_total', 'Requests answered 423 because another request was writing the upload.').with({})
  const storeDuration = histogram('tus_store_operation_duration_seconds', 'Duration of data store operations, by store and operation.', STORE_BUCKETS, ['store', 'operation'])
  const deliveries = get('gauge', 'tus_complete_deliveries', () => new Gauge('tus_complete_deliveries',
    'onComplete deliveries by state (pending, running, failed), read from the uploads table when scraped: the same on every instance sharing it.',
    ['state'], countDeliveries))
  let sources = deliverySources.get(deliveries)
  if (sources === undefined) deliverySources.set(deliveries, sources = new Map())

  // Series known in advance exist from the start, at 0, so that rates and alerts see them from the first scrape.
  const byReason = new Map(TERMINATION_REASONS.map((reason) => [reason as string, terminated.with({ reason })]))
  const byHook = new Map<string, { runs: Value; errors: Value; duration: Distribution }>(HOOK_NAMES.map((hook) => [hook, {
    runs: hookInvocations.with({ hook }), errors: hookErrors.with({ hook }), duration: hookDuration.with({ hook })
  }]))
  const byOperation = new Map<string, Distribution>(settings.store.operations.map((operation) => [operation, storeDuration.with({ store: settings.store.name, operation })]))
  const byRequest = new Map<string, Map<number, Value>>([...METHODS, 'other'].map((method) => [method, new Map()]))

  // The series of a value outside the sets above is resolved once too, on first use.
  const series = <K, V>(map: Map<K, V>, key: K, make: () => V): V => {
    let found = map.get(key)
    if (found === undefined) map.set(key, found = make())
    return found
  }

  sources.set(settings.deliveries, settings.database)
  const mine = (message: { source: EventSource }): boolean => message.source === source
  const unsubscribe = [
    subscribe('upload:created', (m) => { if (mine(m)) created.inc() }),
    subscribe('upload:completed', (m) => {
      if (!mine(m)) return
      completed.inc()
      if (m.upload.completedAt !== null) uploadDuration.observe(Math.max(m.upload.completedAt.getTime() - m.upload.createdAt.getTime(), 0) / 1000)
    }),
    subscribe('upload:terminated', (m) => { if (mine(m)) series(byReason, m.reason, () => terminated.with({ reason: m.reason })).inc() }),
    subscribe('upload:interrupted', (m) => { if (mine(m)) interrupted.inc() }),
    subscribe('upload:received', (m) => { if (mine(m)) received.inc(m.bytes) }),
    subscribe('patch:start', (m) => { if (mine(m)) inFlight.inc() }),
    subscribe('patch:end', (m) => {
      if (!mine(m)) return
      inFlight.dec()
      patchDuration.observe(m.durationMs / 1000)
    }),
    subscribe('lock:conflict', (m) => { if (mine(m)) lockConflicts.inc() }),
    subscribe('hook:end', (m) => {
      if (!mine(m)) return
      const hook = series(byHook, m.hook, () => ({ runs: hookInvocations.with({ hook: m.hook }), errors: hookErrors.with({ hook: m.hook }), duration: hookDuration.with({ hook: m.hook }) }))
      hook.runs.inc()
      hook.duration.observe(m.durationMs / 1000)
      if (m.error !== undefined) hook.errors.inc()
    }),
    subscribe('store:operation', (m) => {
      if (!mine(m)) return
      // Only this plugin's store reports here (mine), so its name is the one label value.
      series(byOperation, m.operation, () => storeDuration.with({ store: m.store, operation: m.operation })).observe(m.durationMs / 1000)
    })
  ]

  return {
    request: (method, status) => {
      const byStatus = byRequest.get(method)
      if (byStatus !== undefined) series(byStatus, status, () => requests.with({ method, status: String(status) })).inc()
      else series(byRequest.get('other')!, status, () => requests.with({ method: 'other', status: String(status) })).inc()
    },
    close: () => {
      sources.delete(settings.deliveries)
      for (const off of unsubscribe) off()
    }
  }
}
