/**
 * Prometheus metrics, as a subscriber of the plugin's events (events.ts) plus
 * one gauge read from the table at scrape time. prom-client is loaded only when
 * metrics are on, and metrics go only into the registry given (get or create by
 * name: two plugin instances, or a re-register, share them instead of throwing).
 * No label takes unbounded values: never an upload id, file name, metadata value
 * or error message. docs/reference.md lists every metric.
 */
import type * as Prom from 'prom-client'
import type { TusMetricsRegistry } from '../../types/index.js'
import { HOOK_NAMES } from '../hooks/registry.js'
import { subscribe, type EventSource } from './events.js'

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
  deliveries: () => Promise<Record<(typeof DELIVERY_STATES)[number], number>>
}

export interface InstalledMetrics {
  /** Count one answered request (HEAD and OPTIONS included). */
  request: (method: string, status: number) => void
  /** Stop listening (the app closes); the metrics stay in the registry. */
  close: () => void
}

export async function installMetrics (registry: TusMetricsRegistry, source: EventSource, settings: MetricsSettings): Promise<InstalledMetrics> {
  let prom: typeof Prom
  try {
    prom = await import('prom-client')
  } catch (err) {
    throw new Error(`fastify-tus: option metrics needs the package prom-client (npm install prom-client): ${(err as Error).message}`)
  }
  const get = <M>(name: string, make: () => M): M => {
    const existing = registry.getSingleMetric(name)
    if (existing !== undefined) return existing as M
    const metric = make()
    registry.registerMetric(metric)
    return metric
  }
  const counter = <L extends string>(name: string, help: string, labelNames: L[] = []): Prom.Counter<L> =>
    get(name, () => new prom.Counter({ name, help, labelNames, registers: [] }))
  const histogram = <L extends string>(name: string, help: string, buckets: number[], labelNames: L[] = []): Prom.Histogram<L> =>
    get(name, () => new prom.Histogram({ name, help, buckets, labelNames, registers: [] }))

  const created = counter('tus_uploads_created_total', 'Uploads created.')
  const completed = counter('tus_uploads_completed_total', 'Uploads whose last byte was stored (partial uploads of a concatenation included).')
  const terminated = counter('tus_uploads_terminated_total', 'Uploads removed, by reason: client (DELETE), expired, server (app.tus.delete).', ['reason'])
  const interrupted = counter('tus_uploads_interrupted_total', 'PATCH requests that ended before their body did (client gone, shutdown, lost lock, storage failure).')
  const received = counter('tus_received_bytes_total', 'Bytes of request bodies kept in uploads.')
  const requests = counter('tus_requests_total', 'Requests answered by the upload routes, by method (after X-HTTP-Method-Override) and status.', ['method', 'status'])
  const inFlight = get('tus_patch_requests_in_flight', () => new prom.Gauge({ name: 'tus_patch_requests_in_flight', help: 'PATCH requests being served.', registers: [] }))
  const patchDuration = histogram('tus_patch_duration_seconds', 'Duration of PATCH requests.', PATCH_BUCKETS)
  const uploadDuration = histogram('tus_upload_duration_seconds', 'Time from an upload\'s creation to its last byte.', UPLOAD_BUCKETS)
  const hookInvocations = counter('tus_hook_invocations_total', 'Hook handler runs, by hook.', ['hook'])
  const hookErrors = counter('tus_hook_errors_total', 'Hook handler runs that threw, by hook.', ['hook'])
  const hookDuration = histogram('tus_hook_duration_seconds', 'Duration of hook handler runs, by hook.', HOOK_BUCKETS, ['hook'])
  const lockConflicts = counter('tus_lock_conflicts_total', 'Requests answered 423 because another request was writing the upload.')
  const storeDuration = histogram('tus_store_operation_duration_seconds', 'Duration of data store operations, by store and operation.', STORE_BUCKETS, ['store', 'operation'])
  get('tus_complete_deliveries', () => new prom.Gauge({
    name: 'tus_complete_deliveries',
    help: 'onComplete deliveries by state (pending, running, failed), read from the uploads table when scraped: the same on every instance sharing it.',
    labelNames: ['state'],
    registers: [],
    async collect () {
      const counts = await settings.deliveries()
      for (const state of DELIVERY_STATES) this.set({ state }, counts[state])
    }
  }))

  // Series known in advance start at 0, so that rates and alerts see them from the first scrape.
  for (const reason of TERMINATION_REASONS) terminated.inc({ reason }, 0)
  for (const hook of HOOK_NAMES) { hookInvocations.inc({ hook }, 0); hookErrors.inc({ hook }, 0) }
  for (const operation of settings.store.operations) storeDuration.zero({ store: settings.store.name, operation })

  const mine = (message: { source: EventSource }): boolean => message.source === source
  const unsubscribe = [
    subscribe('upload:created', (m) => { if (mine(m)) created.inc() }),
    subscribe('upload:completed', (m) => {
      if (!mine(m)) return
      completed.inc()
      if (m.upload.completedAt !== null) uploadDuration.observe(Math.max(m.upload.completedAt.getTime() - m.upload.createdAt.getTime(), 0) / 1000)
    }),
    subscribe('upload:terminated', (m) => { if (mine(m)) terminated.inc({ reason: m.reason }) }),
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
      hookInvocations.inc({ hook: m.hook })
      hookDuration.observe({ hook: m.hook }, m.durationMs / 1000)
      if (m.error !== undefined) hookErrors.inc({ hook: m.hook })
    }),
    subscribe('store:operation', (m) => { if (mine(m)) storeDuration.observe({ store: m.store, operation: m.operation }, m.durationMs / 1000) })
  ]

  return {
    request: (method, status) => { requests.inc({ method: (METHODS as readonly string[]).includes(method) ? method : 'other', status: String(status) }) },
    close: () => { for (const off of unsubscribe) off() }
  }
}
