/**
 * Lifecycle handlers, several per hook, run one after another in registration
 * order. onCreate handlers may change the metadata or pick the id (later
 * handlers see earlier changes) and reject by throwing a TusError.
 */
import type {
  CompleteHookPayload, CreateHookPayload, CreateHookResult, TerminateHookPayload, TusHookName, TusHooks
} from '../../types/index.js'

export class HookRegistry {
  private readonly handlers: { [K in TusHookName]: Array<TusHooks[K]> } = { onCreate: [], onComplete: [], onTerminate: [] }

  add<K extends TusHookName> (name: K, handler: TusHooks[K]): void {
    if (!(name in this.handlers)) throw new TypeError(`fastify-tus: unknown hook "${String(name)}" (expected onCreate, onComplete or onTerminate)`)
    if (typeof handler !== 'function') throw new TypeError(`fastify-tus: the ${name} handler must be a function`)
    this.handlers[name].push(handler)
  }

  has (name: TusHookName): boolean {
    return this.handlers[name].length > 0
  }

  async runCreate (payload: CreateHookPayload): Promise<CreateHookResult> {
    const result: CreateHookResult = {}
    for (const handler of this.handlers.onCreate) {
      const change = await handler(payload)
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
    for (const handler of this.handlers.onComplete) await handler(payload)
  }

  /** Every handler runs even when one throws (each is the only cleanup it will get); the first error is rethrown after. */
  async runTerminate (payload: TerminateHookPayload): Promise<void> {
    let failure: { err: unknown } | undefined
    for (const handler of this.handlers.onTerminate) {
      try {
        await handler(payload)
      } catch (err) {
        failure ??= { err }
      }
    }
    if (failure !== undefined) throw failure.err
  }
}
