/**
 * Lifecycle handlers, several per hook, run one after another in registration
 * order. onCreate handlers may change the metadata or pick the id (later
 * handlers see earlier changes) and reject by throwing a TusError;
 * onBeforeTerminate handlers reject a DELETE the same way. onProgress,
 * onInterrupted and onLengthDeclared are notifications nobody waits for: their
 * errors are logged. Every handler run is timed and reported on the
 * 'hook:end' channel (and 'hook:error' when it threw), when someone listens.
 */
import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import type {
  CompleteHookPayload, CreateHookPayload, CreateHookResult, TerminateHookPayload, TusHookName, TusHooks
} from '../../types/index.js'
import type { Events } from '../observe/events.js'

/** Every hook, in the order the docs list them. */
export const HOOK_NAMES: readonly TusHookName[] = Object.freeze(['onCreate', 'onComplete', 'onTerminate', 'onProgress', 'onBeforeTerminate', 'onInterrupted', 'onLengthDeclared'])

type Notification = 'onProgress' | 'onInterrupted' | 'onLengthDeclared'

export class HookRegistry {
  private readonly handlers = Object.fromEntries(HOOK_NAMES.map((name) => [name, []])) as unknown as { [K in TusHookName]: Array<TusHooks[K]> }

  constructor (private readonly events?: Events, private readonly log?: Pick<FastifyBaseLogger, 'error'>) {}

  add<K extends TusHookName> (name: K, handler: TusHooks[K]): void {
    if (!(name in this.handlers)) throw new TypeError(`fastify-tus: unknown hook "${String(name)}" (expected ${HOOK_NAMES.join(', ')})`)
    if (typeof handler !== 'function') throw new TypeError(`fastify-tus: the ${name} handler must be a function`)
    this.handlers[name].push(handler)
  }

  has (name: TusHookName): boolean {
    return this.handlers[name].length > 0
  }

  async runCreate (payload: CreateHookPayload): Promise<CreateHookResult> {
    const result: CreateHookResult = {}
    for (const handler of this.handlers.onCreate) {
      const change = await this.call('onCreate', handler, payload)
      if (change == null) continue
      if (change.metadata !== undefined) {
        result.metadata = change.metadata
        payload.upload.metadata = change.metadata
      }
      if (change.id !== undefined) result.id = change.id
    }
    return result
  }

  async runComplete (payload: CompleteHookPayload): Promise<void> {
    for (const handler of this.handlers.onComplete) await this.call('onComplete', handler, payload, payload.upload.id)
  }

  /** Every handler runs even when one throws (each is the only cleanup it will get); the first error is rethrown after. */
  async runTerminate (payload: TerminateHookPayload): Promise<void> {
    let failure: { err: unknown } | undefined
    for (const handler of this.handlers.onTerminate) {
      try {
        await this.call('onTerminate', handler, payload, payload.upload.id)
      } catch (err) {
        failure ??= { err }
      }
    }
    if (failure !== undefined) throw failure.err
  }

  /** The first handler that throws refuses the termination (the others do not run). */
  async runBeforeTerminate (payload: Parameters<TusHooks['onBeforeTerminate']>[0]): Promise<void> {
    for (const handler of this.handlers.onBeforeTerminate) await this.call('onBeforeTerminate', handler, payload, payload.upload.id)
  }

  /** Runs a notification's handlers in the background, in order; nobody waits, errors are logged. */
  notify<K extends Notification> (name: K, payload: Parameters<TusHooks[K]>[0]): void {
    const handlers = this.handlers[name] as Array<(payload: Parameters<TusHooks[K]>[0]) => unknown>
    if (handlers.length === 0) return
    void (async () => {
      for (const handler of handlers) {
        try {
          await this.call(name, handler, payload, payload.upload.id)
        } catch (err) {
          this.log?.error({ err, upload: payload.upload.id }, `fastify-tus: an ${name} handler failed`)
        }
      }
    })()
  }

  /** One handler's run, timed and reported when someone listens. */
  private async call<P, R> (hook: TusHookName, handler: (payload: P) => R | Promise<R>, payload: P, upload?: string): Promise<R> {
    const events = this.events
    if (events === undefined || (!events.listened('hook:end') && !events.listened('hook:error'))) return await handler(payload)
    const started = performance.now()
    try {
      const result = await handler(payload)
      events.publish('hook:end', () => ({ hook, durationMs: performance.now() - started }))
      return result
    } catch (error) {
      events.publish('hook:end', () => ({ hook, durationMs: performance.now() - started, error }))
      events.publish('hook:error', () => ({ hook, error, ...(upload === undefined ? {} : { upload }) }))
      throw error
    }
  }
}
