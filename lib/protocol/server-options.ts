/**
 * The Fastify server options that make the server's own answers look like the
 * plugin's, in one object to spread into `Fastify({...})`:
 * - `frameworkErrors`: the router's refusals (414, 400) in plain text;
 * - `clientErrorHandler`: what Node's parser refuses (400, 408, 413, 431) in
 *   plain text with `Connection: close`, the socket ended after the reply;
 * - `return503OnClosing: false`: during a graceful shutdown the plugin answers
 *   its routes' new requests itself (503, plain text, `Retry-After`,
 *   `Connection: close`) instead of Fastify's JSON 503.
 * The command line's server uses it.
 */
import type { FastifyServerOptions } from 'fastify'
import { tusFrameworkErrors } from './framework-errors.js'
import { tusClientErrorHandler } from './client-errors.js'

export const tusServerOptions: Readonly<Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler' | 'return503OnClosing'>> = Object.freeze({
  frameworkErrors: tusFrameworkErrors,
  clientErrorHandler: tusClientErrorHandler,
  return503OnClosing: false
})
