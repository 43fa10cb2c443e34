/**
 * Lifecycle events on `node:diagnostics_channel`, named after the package.
 * Every publish is guarded by `hasSubscribers`, and the message is built only
 * then, so events cost a property read when nobody listens. Metrics are one
 * subscriber (lib/observe/metrics.ts); APM tools can be others.
 *
 * Every message carries `source`: the plugin instance that published it (its
 * prefix, and an object whose identity tells instances apart), since channels
 * are process-wide and two plugin instances may run in one process.
 * docs/reference.md lists the channels and their messages.
 */
import { channel } from 'node:diagnostics_channel'
import type { TerminationReason, UploadRecord } from '../../types/index.js'

/** Which plugin instance published an event. */
export interface EventSource {
  /** The upload endpoint's path, e.g. '/files'. */
  readonly prefix: string
}

export type InterruptionReason = 'client' | 'shutdown' | 'lock-lost' | 'storage'

/** The channels and the message each carries. */
export interface TusEvents {
  /** An upload was created (its row exists; the 201 is on its way). */
  'upload:created': { source: EventSource; upload: UploadRecord }
  /** An upload's last byte was stored and its row says complete (partial uploads included). */
  'upload:completed': { source: EventSource; upload: UploadRecord }
  /** An upload was removed. */
  'upload:terminated': { source: EventSource; upload: UploadRecord; reason: TerminationReason }
  /** A PATCH (or creation-with-upload) ended before its body did; `upload.offset` is the offset kept. */
  'upload:interrupted': { source: EventSource; upload: UploadRecord; reason: InterruptionReason }
  /** Bytes of a request body that were kept (committed to the upload's offset). */
  'upload:received': { source: EventSource; id: string; bytes: number }
  /** A PATCH began (after its headers were checked). */
  'patch:start': { source: EventSource; id: string }
  /** A PATCH ended, answered or not. */
  'patch:end': { source: EventSource; id: string; durationMs: number }
  /** A request for an upload found it locked by another writer (423). */
  'lock:conflict': { source: EventSource; id: string }
  /** One run of one hook handler. */
  'hook:end': { source: EventSource; hook: string; durationMs: number; error?: unknown }
  /** A hook handler threw (also reported by 'hook:end'). */
  'hook:error': { source: EventSource; hook: string; error: unknown; upload?: string }
  /** One operation of the data store. */
  'store:operation': { source: EventSource; store: string; operation: string; durationMs: number; error?: unknown }
}

export type TusEventName = keyof TusEvents

/** The channel names, `fastify-tus:<event>`. */
export const CHANNEL_NAMES = Object.freeze(Object.fromEntries(
  (['upload:created', 'upload:completed', 'upload:terminated', 'upload:interrupted', 'upload:received', 'patch:start', 'patch:end',
    'lock:conflict', 'hook:end', 'hook:error', 'store:operation'] as const).map((name) => [name, `fastify-tus:${name}`])
) as { readonly [K in TusEventName]: string })

const channels = Object.fromEntries(Object.entries(CHANNEL_NAMES).map(([name, full]) => [name, channel(full)])) as { [K in TusEventName]: ReturnType<typeof channel> }

/** Publishes events of one plugin instance. */
export class Events {
  constructor (readonly source: EventSource) {}

  /** True when someone listens to `name` (so that callers can skip building what the message needs). */
  listened (name: TusEventName): boolean {
    return channels[name].hasSubscribers
  }

  /**
   * Publish `name`; the message is built only when someone listens, and is
   * given its `source` in place (a spread into a new object cost more than
   * the rest of publishing).
   */
  publish<K extends TusEventName> (name: K, build: () => Omit<TusEvents[K], 'source'>): void {
    const ch = channels[name]
    if (!ch.hasSubscribers) return
    const message = build() as TusEvents[K]
    message.source = this.source
    ch.publish(message)
  }
}

/** Subscribe to one event; answers the unsubscribe function. */
export function subscribe<K extends TusEventName> (name: K, listener: (message: TusEvents[K]) => void): () => void {
  const ch = channels[name]
  const wrapped = (message: unknown): void => listener(message as TusEvents[K])
  ch.subscribe(wrapped)
  return () => { ch.unsubscribe(wrapped) }
}
