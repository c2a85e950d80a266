'use strict';
/**
 * A minimal client of the Runtime API (2018-06-01) over one kept-alive TCP connection.
 *
 * Written on `net` rather than `http` because it is cheaper to load on the cold-start path and
 * because it controls whether the connection keeps the process alive: the socket is referenced
 * only while a request is in flight, so that a handler's own work is what Node's `beforeExit`
 * waits for (callbackWaitsForEmptyEventLoop), as on Lambda.
 */
const net = require('net');

const BASE = '/2018-06-01/runtime';

class RuntimeClient {
  constructor(address) {
    const at = address.lastIndexOf(':');
    this.host = address.slice(0, at);
    this.port = Number(address.slice(at + 1));
    this.address = address;
    this.socket = null;
    this.buffer = Buffer.alloc(0);
    this.pending = null; // {resolve, reject} of the request in flight
  }

  _connect() {
    const socket = net.createConnection({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    socket.on('data', (chunk) => this._onData(chunk));
    socket.on('error', (err) => this._fail(err));
    socket.on('close', () => {
      if (this.socket === socket) this.socket = null;
      this._fail(new Error('Runtime API closed the connection'));
    });
    this.socket = socket;
    this.buffer = Buffer.alloc(0);
    return socket;
  }

  _fail(err) {
    const pending = this.pending;
    this.pending = null;
    if (pending) pending.reject(err);
  }

  /** One request; resolves to {status, headers, body} (headers lower-cased, body a Buffer). */
  request(method, path, body, headers) {
    const payload = body === undefined || body === null ? Buffer.alloc(0) : Buffer.from(body);
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.address}\r\nContent-Length: ${payload.length}\r\n`;
    for (const [name, value] of Object.entries(headers || {})) head += `${name}: ${value}\r\n`;
    const socket = this.socket || this._connect();
    socket.ref();
    return new Promise((resolve, reject) => {
      this.pending = {
        resolve: (res) => {
          if (this.socket) this.socket.unref();
          resolve(res);
        },
        reject,
      };
      socket.write(Buffer.concat([Buffer.from(head + '\r\n', 'latin1'), payload]));
    });
  }

  _onData(chunk) {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    const res = parseResponse(this.buffer);
    if (res === null) return;
    this.buffer = this.buffer.subarray(res.consumed);
    if (res.status === 100) return this._onData(Buffer.alloc(0));
    const pending = this.pending;
    this.pending = null;
    if (pending) pending.resolve(res);
  }

  async next() {
    const res = await this.request('GET', `${BASE}/invocation/next`);
    if (res.status !== 200) throw new Error(`Failed to get next invocation: HTTP ${res.status}`);
    return res;
  }

  postResponse(requestId, body, contentType) {
    return this._post(`${BASE}/invocation/${encodeURIComponent(requestId)}/response`, body, {
      'Content-Type': contentType || 'application/json',
    });
  }

  postError(requestId, document, xrayCause) {
    const headers = {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Function-Error-Type': document.errorType,
    };
    if (xrayCause && xrayCause.length < 1024 * 1024) {
      headers['Lambda-Runtime-Function-XRay-Error-Cause'] = xrayCause;
    }
    return this._post(
      `${BASE}/invocation/${encodeURIComponent(requestId)}/error`,
      JSON.stringify(document),
      headers,
    );
  }

  postInitError(document) {
    return this._post(`${BASE}/init/error`, JSON.stringify(document), {
      'Content-Type': 'application/json',
      'Lambda-Runtime-Function-Error-Type': document.errorType,
    });
  }

  async _post(path, body, headers) {
    const res = await this.request('POST', path, body, headers);
    if (res.status !== 202) {
      throw new Error(`Runtime API answered ${res.status} to ${path}: ${res.body.toString()}`);
    }
    return res;
  }
}

/** A complete HTTP/1.1 response at the start of `buf`, or null while more bytes are needed. */
function parseResponse(buf) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(lines[0].split(' ')[1]);
  const headers = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let at = end + 4;
  if (status === 100) return { status, headers, body: Buffer.alloc(0), consumed: at };
  if ((headers['transfer-encoding'] || '').toLowerCase() === 'chunked') {
    const parts = [];
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at);
      if (lineEnd < 0) return null;
      const size = parseInt(buf.subarray(at, lineEnd).toString('latin1'), 16);
      if (buf.length < lineEnd + 2 + size + 2) return null;
      if (size === 0) {
        const trailerEnd = buf.indexOf('\r\n\r\n', lineEnd);
        if (trailerEnd < 0) return null;
        return { status, headers, body: Buffer.concat(parts), consumed: trailerEnd + 4 };
      }
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  const length = Number(headers['content-length'] || 0);
  if (buf.length < at + length) return null;
  return { status, headers, body: buf.subarray(at, at + length), consumed: at + length };
}

module.exports = { RuntimeClient };
