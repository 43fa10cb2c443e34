/**
 * Arbitrary 1xx informational responses from a Node http server, for the
 * draft's `104 (Upload Resumption Supported)`: the upload URL at creation,
 * and `Upload-Offset` progress reports while a request body still streams.
 *
 * Node 20 has writeContinue() (100), writeProcessing() (102) and
 * writeEarlyHints() (103) but no public API for any other 1xx. What those
 * three do internally on HTTP/1.1 is `this._writeRaw(bytes)`: the interim
 * response's bytes go on the response's own output path, so they keep their
 * place in line with the response's writes. sendInterim does the same, under
 * guards that make the write unconditional and immediate:
 *
 *   - HTTP/1.1 or later on the request: RFC 9110 15.2 forbids 1xx to an
 *     HTTP/1.0 client (nginx proxies with HTTP/1.0 by default: see below).
 *   - The final response's head is not rendered yet (`headersSent` turns
 *     true as soon as writeHead() has run, flushed or not): after the final
 *     response starts, any 1xx bytes would land inside it.
 *   - The response owns the socket (`res.socket` is set). A pipelined
 *     request's response gets its socket only when the responses before it
 *     are done; until then `res.socket` is null and nothing is sent. (On that
 *     path _writeRaw would queue the bytes, and a later write with a Buffer
 *     body puts the final head *before* queued bytes: the one ordering bug
 *     this guard rules out.)
 *   - The socket is a real net.Socket (TLS included), writable, not
 *     destroyed, and not backed up (`writableNeedDrain`): a client that does
 *     not read while it uploads would otherwise pile progress reports up in
 *     memory. Fastify's inject() (light-my-request) has no net.Socket: false.
 *
 * With all that true, _writeRaw writes straight to the socket, in call order,
 * before anything the response writes later: the final response comes
 * strictly after. On a runtime without _writeRaw, `socket.write` does the same
 * thing under the same guards. Many calls during one request are fine (the
 * tests send hundreds while the body streams, then check the final response
 * byte for byte and reuse the keep-alive connection).
 *
 * HTTP/2 (Http2ServerResponse, e.g. Fastify with `http2: true`): the public
 * `stream.additionalHeaders({ ':status': 104, ... })` sends a HEADERS frame
 * without END_STREAM; no raw bytes are involved. Anything else: false.
 *
 * Expect: 100-continue. Unless the server has a 'checkContinue' listener,
 * Node writes `100 Continue` itself before it emits 'request', so a 104
 * always follows the 100 (the draft: the server MUST NOT leave out the 100
 * because it sent a 104). With a 'checkContinue' listener, sending the 100
 * is that listener's job, before or after any 104.
 *
 * Node's client reports every 1xx, 100 included, as an 'information' event on
 * the ClientRequest (100 also as 'continue'); 101 is an upgrade, not an
 * interim response, and is refused here.
 *
 * ---------------------------------------------------------------------------
 * Reverse proxies. What a proxy must do to pass a 104 through: treat every
 * 1xx except 101 as an interim response (RFC 9110 15.2: "A proxy MUST forward
 * 1xx responses unless the proxy itself requested their generation"): no body,
 * Content-Length ignored, forward it (or at least drop it cleanly), keep
 * waiting for the final response on the same exchange, and allow more than
 * one. A proxy that takes an unknown 1xx for the final response breaks the
 * exchange and can desynchronise the connection. Findings (read 2026-08/09):
 *
 *   nginx (nginx/nginx master 2026-08-21; 1.29.0+ has 103 support, commit
 *     662c1dd2 "Upstream: early hints support", 2025-06): the proxy module
 *     handles 103 as interim and nothing else; any other 1xx from an HTTP/1.1
 *     upstream is parsed as the final response. A 104 therefore breaks the
 *     response (nginx/nginx#1427, "1xx other than 103 will desynchronize the
 *     connection", closed; fixes #1437/#1445 open, #1447 closed unmerged).
 *     Saving grace: nginx's default is `proxy_http_version 1.0`, so the
 *     backend sees HTTP/1.0 and sendInterim sends nothing. With
 *     `proxy_http_version 1.1` (usual for upstream keep-alive) the server
 *     MUST be configured not to send 104s. freenginx: same code base; its
 *     maintainer wrote in 2024 that "any 1xx response will break things".
 *     Confidence: high (source read).
 *   HAProxy (haproxy/haproxy master 2026-08-21, since 1.8, commit a14ad72d
 *     "properly handle all 1xx informational responses", 2017): forwards
 *     100 and 102-199 as interim responses, any number, then waits for the
 *     final one, on HTTP/1 and HTTP/2 (src/http_ana.c, src/mux_h1.c,
 *     src/mux_h2.c). Nothing to configure. Confidence: high (source read).
 *   Apache httpd mod_proxy_http: forwards 1xx (env `proxy-interim-response`,
 *     default `RFC`; `Suppress` drops them) but gives up after
 *     AP_MAX_INTERIM_RESPONSES = 10 interim responses on one request with
 *     502 Bad Gateway. Progress reports must stay below that (or be off).
 *     Confidence: medium-high (docs and source excerpts, not run).
 *   Envoy: forwards 100 (with `proxy_100_continue`), 102 and 103 (runtime
 *     guard envoy.reloadable_features.proxy_102_103), only the first 1xx of a
 *     response; other 1xx such as 104 are dropped, the final response is
 *     intact (PR #12037; issue #19044 "proxy multiple 1xx" open). So no 104
 *     reaches the client. Confidence: medium (code excerpts, not run).
 *   Go httputil.ReverseProxy (Go 1.20+) forwards all 1xx, and so do Caddy
 *     (reverseproxy PR #4882) and Go-based proxies such as Traefik built
 *     with Go 1.20+. h2o forwards them, by default only to HTTP/2+ clients
 *     (`forward-informational: except-h1`). Cloudflare documents "forwards
 *     all 1xx responses from origin servers". Confidence: medium for Go and
 *     Caddy, low-medium for Traefik, h2o and Cloudflare with 104 specifically.
 *
 * So the integration needs a switch to turn 104s off, and progress reports
 * should be sparse (well under 10 per request if Apache may be in front).
 */
import { STATUS_CODES, validateHeaderName, validateHeaderValue, type ServerResponse } from 'node:http'
import type { Http2ServerResponse } from 'node:http2'
import { Socket } from 'node:net'

/** Header fields of an interim response: name → value. */
export type InterimHeaders = Readonly<Record<string, string | number>>

export const UPLOAD_RESUMPTION_SUPPORTED = 104

const REASONS: Readonly<Record<number, string>> = {
  102: 'Processing',
  103: 'Early Hints',
  104: 'Upload Resumption Supported'
}

/** Fields that a 1xx must not carry: framing (RFC 9110 8.6, 6.1) and connection-specific ones. */
const FORBIDDEN = new Set([
  'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'te', 'trailer'
])

interface RawWriter { _writeRaw?: (data: string, encoding: BufferEncoding) => boolean }

function checkArguments (status: number, headers: InterimHeaders): Array<[string, string]> {
  if (!Number.isInteger(status) || status < 102 || status > 199) {
    throw new RangeError(`an interim response status is 102 to 199 (100 is writeContinue's, 101 an upgrade), got ${status}`)
  }
  const fields: Array<[string, string]> = []
  for (const [name, raw] of Object.entries(headers)) {
    const value = String(raw)
    validateHeaderName(name)
    validateHeaderValue(name, value)
    if (FORBIDDEN.has(name.toLowerCase())) throw new TypeError(`${name} has no place in an interim response`)
    fields.push([name, value])
  }
  return fields
}

function isHttp2 (res: ServerResponse | Http2ServerResponse): res is Http2ServerResponse {
  const stream = (res as { stream?: { additionalHeaders?: unknown } }).stream
  return typeof stream?.additionalHeaders === 'function'
}

function sendHttp2 (res: Http2ServerResponse, status: number, fields: Array<[string, string]>): boolean {
  const stream = res.stream
  if (res.headersSent || res.writableEnded || stream.headersSent || stream.destroyed || stream.closed) return false
  const headers: Record<string, string | number> = { ':status': status }
  for (const [name, value] of fields) headers[name.toLowerCase()] = value
  try {
    stream.additionalHeaders(headers)
    return true
  } catch {
    return false // the stream closed in between
  }
}

/**
 * Send one 1xx informational response (102-199) ahead of the final response.
 * Answers true when the interim response was handed to the transport, false
 * when it was not sent and cannot be any more or should not be: HTTP/1.0
 * request, final response already started or ended, response not yet owner of
 * its socket (pipelining), socket closed or backed up, no real socket (inject),
 * HTTP/2 stream closed. Throws (a programming error) for a status outside
 * 102-199, an invalid header name or value, or a framing or connection field.
 */
export function sendInterim (res: ServerResponse | Http2ServerResponse, status: number, headers: InterimHeaders = {}): boolean {
  const fields = checkArguments(status, headers)
  if (isHttp2(res)) return sendHttp2(res, status, fields)

  const req = res.req as ServerResponse['req'] | undefined
  if (req === undefined || req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) return false
  if (res.headersSent || res.writableEnded || res.destroyed) return false
  const socket = res.socket
  if (!(socket instanceof Socket) || socket.destroyed || !socket.writable || socket.writableNeedDrain) return false

  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? STATUS_CODES[status] ?? 'Informational'}\r\n`
  for (const [name, value] of fields) head += `${name}: ${value}\r\n`
  head += '\r\n'

  const writer = res as unknown as RawWriter
  if (typeof writer._writeRaw === 'function') writer._writeRaw(head, 'latin1')
  else socket.write(head, 'latin1')
  return true
}
