/**
 * 1xx interim responses: Node 20 has APIs for 100, 102 and 103 only, so a 104
 * (Upload Resumption Supported) is written on the socket before the final
 * response's head, HTTP/1.1 only.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http'

const REASONS: Record<number, string> = { 104: 'Upload Resumption Supported' }

/** Sends `status` with `headers` before the final response; false when that is no longer possible. */
export function sendInterim (res: ServerResponse, status: number, headers: Record<string, string>): boolean {
  const socket = res.socket
  if (res.headersSent || socket === null || socket.destroyed || !socket.writable || res.req.httpVersionMajor !== 1 || res.req.httpVersionMinor < 1) return false
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? STATUS_CODES[status] ?? 'Informational'}\r\n`
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`
  socket.write(head + '\r\n')
  return true
}
