/**
 * `app.tusClient`: a TusClient as a Fastify decoration, for services that
 * forward files to a tus server.
 *
 *   await app.register(tusClient, { endpoint: 'https://uploads.example.com/files' })
 *   const url = await app.tusClient.upload('/tmp/report.pdf')
 *
 * When the app closes, the client is closed gracefully: nothing new starts,
 * and uploads and requests in flight get `closeTimeout` ms (default 10 000)
 * to finish before they are aborted (they stay resumable).
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { TusClient } from './client.js'
import type { TusClientOptions } from './options.js'

export interface TusClientPluginOptions extends TusClientOptions {
  /** How long app.close() lets the client's uploads and requests in flight finish, in ms, before aborting them. Default 10 000. */
  closeTimeout?: number
}

export const DEFAULT_CLOSE_TIMEOUT = 10_000

async function tusClientPlugin (app: FastifyInstance, options: TusClientPluginOptions): Promise<void> {
  const { closeTimeout = DEFAULT_CLOSE_TIMEOUT, ...clientOptions } = options
  if (typeof closeTimeout !== 'number' || !Number.isSafeInteger(closeTimeout) || closeTimeout < 0 || closeTimeout > 2_147_483_647) {
    throw new TypeError(`fastify-tus client: option closeTimeout must be an integer from 0 to 2147483647 (ms), got ${JSON.stringify(closeTimeout)}`)
  }
  const client = new TusClient(clientOptions)
  app.decorate('tusClient', client)
  app.addHook('onClose', async () => client.close({ timeout: closeTimeout }))
}

export const tusClient = fp(tusClientPlugin, { fastify: '5.x', name: 'fastify-tus-client' })

declare module 'fastify' {
  interface FastifyInstance {
    tusClient: TusClient
  }
}
