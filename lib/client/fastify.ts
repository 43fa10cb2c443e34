/**
 * `app.tusClient`: a TusClient as a Fastify decoration, for services that
 * forward files to a tus server.
 *
 *   await app.register(tusClient, { endpoint: 'https://uploads.example.com/files' })
 *   const url = await app.tusClient.upload('/tmp/report.pdf')
 *
 * Its idle connections are closed when the app closes.
 */
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { TusClient } from './client.js'
import type { TusClientOptions } from './options.js'

async function tusClientPlugin (app: FastifyInstance, options: TusClientOptions): Promise<void> {
  const client = new TusClient(options)
  app.decorate('tusClient', client)
  app.addHook('onClose', async () => client.close())
}

export const tusClient = fp(tusClientPlugin, { fastify: '5.x', name: 'fastify-tus-client' })

declare module 'fastify' {
  interface FastifyInstance {
    tusClient: TusClient
  }
}
