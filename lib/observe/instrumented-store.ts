/**
 * A data store whose operations are timed and reported on the
 * 'store:operation' channel (tus_store_operation_duration_seconds), when someone
 * listens; otherwise each call costs one property read more (the store's own
 * promise is answered as it is).
 */
import { performance } from 'node:perf_hooks'
import type { DataStore } from '../../types/index.js'
import type { Events } from './events.js'

/** The operations reported, by name (createReadStream is not: it answers a stream at once). */
export const STORE_OPERATIONS = ['create', 'write', 'finish', 'truncate', 'size', 'remove', 'concatenate', 'list'] as const

export function instrumentStore (store: DataStore, name: string, events: Events): DataStore {
  const timed = <A extends unknown[], R>(operation: string, run: (...args: A) => Promise<R>) => {
    const measured = async (args: A): Promise<R> => {
      const started = performance.now()
      try {
        const result = await run(...args)
        // A write reports its own failure in its result, not by throwing.
        const error = (result as { error?: unknown } | null)?.error
        events.publish('store:operation', () => error === undefined
          ? { store: name, operation, durationMs: performance.now() - started }
          : { store: name, operation, durationMs: performance.now() - started, error })
        return result
      } catch (error) {
        events.publish('store:operation', () => ({ store: name, operation, durationMs: performance.now() - started, error }))
        throw error
      }
    }
    // Unobserved, a call is the store's own: no frame or promise of ours around it.
    return (...args: A): Promise<R> => events.listened('store:operation') ? measured(args) : run(...args)
  }
  return {
    remote: store.remote,
    create: timed('create', store.create.bind(store)),
    write: timed('write', store.write.bind(store)),
    finish: timed('finish', store.finish.bind(store)),
    truncate: timed('truncate', store.truncate.bind(store)),
    size: timed('size', store.size.bind(store)),
    remove: timed('remove', store.remove.bind(store)),
    concatenate: timed('concatenate', store.concatenate.bind(store)),
    list: timed('list', store.list.bind(store)),
    createReadStream: store.createReadStream.bind(store)
  }
}
