/** What every protocol handler works with: capability interfaces, not concrete stores. */
import type { FastifyBaseLogger } from 'fastify'
import type { DataStore, Locker, UploadRepository } from '../../types/index.js'
import type { HookRegistry } from '../hooks/registry.js'
import type { CompletionDelivery } from '../hooks/completion.js'
import type { ResolvedOptions } from '../options.js'
import type { Drain } from '../drain.js'
import type { Events } from '../observe/events.js'
import type { InstalledMetrics } from '../observe/metrics.js'

export interface TusContext {
  options: ResolvedOptions
  store: DataStore
  uploads: UploadRepository
  locker: Locker
  hooks: HookRegistry
  completion: CompletionDelivery
  log: FastifyBaseLogger
  /** Graceful shutdown: whether the app is closing, and the bodies to cut at its timeout. */
  drain: Drain
  /** Lifecycle events on diagnostics channels (free when nobody listens). */
  events: Events
  /** Prometheus metrics, when the `metrics` option is on. */
  metrics?: InstalledMetrics
  /** The tus discovery headers, computed on the first OPTIONS (they depend only on the options). */
  discovery?: Record<string, string>
}
