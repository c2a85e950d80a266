'use strict';
/**
 * console.* as Lambda's Node.js runtime patches it: one log event per call, written to stdout as
 * `<ISO time>\t<request id>\t<LEVEL>\t<message>` (Text) or as one JSON object (JSON), with the
 * message's newlines turned into carriage returns so that a multi-line message stays one event.
 */
const util = require('util');
const { intoError, toLogged } = require('./errors');

const LEVELS = {
  TRACE: 1,
  DEBUG: 2,
  INFO: 3,
  WARN: 4,
  ERROR: 5,
  FATAL: 6,
};

let requestId; // undefined until the first invocation, printed as "undefined" as on Lambda
let tenantId;

function setRequest(id, tenant) {
  requestId = id;
  tenantId = tenant;
}

function writeLine(line) {
  process.stdout.write(line.replace(/\n/g, '\r') + '\n');
}

function textLine(level, args) {
  return `${new Date().toISOString()}\t${requestId}\t${level}\t${util.format(...args)}`;
}

function serializeErrors(_key, value) {
  if (!(value instanceof Error)) return value;
  return {
    errorType: (value.constructor && value.constructor.name) || 'UnknownError',
    errorMessage: value.message,
    stackTrace: typeof value.stack === 'string' ? value.stack.split('\n') : value.stack,
    ...value,
  };
}

function jsonLine(level, args) {
  const out = { timestamp: new Date().toISOString(), level, requestId };
  if (tenantId !== undefined && tenantId !== null) out.tenantId = tenantId;
  if (args.length === 1) {
    out.message = args[0];
    try {
      return JSON.stringify(out, serializeErrors);
    } catch (_) {
      out.message = util.format(args[0]);
      return JSON.stringify(out);
    }
  }
  out.message = util.format(...args);
  const error = args.find((a) => a instanceof Error);
  if (error) {
    out.errorType = (error.constructor && error.constructor.name) || 'UnknownError';
    out.errorMessage = error.message;
    out.stackTrace = typeof error.stack === 'string' ? error.stack.split('\n') : [];
  }
  return JSON.stringify(out);
}

let json = false;

/** Replace console's methods; AWS_LAMBDA_LOG_LEVEL (JSON format) silences the lower levels. */
function patchConsole() {
  json = (process.env.AWS_LAMBDA_LOG_FORMAT || '').toUpperCase() === 'JSON';
  const format = json ? jsonLine : textLine;
  const threshold = LEVELS[(process.env.AWS_LAMBDA_LOG_LEVEL || '').toUpperCase()] || LEVELS.TRACE;
  const method = (level) =>
    LEVELS[level] >= threshold ? (...args) => writeLine(format(level, args)) : () => {};
  console.trace = method('TRACE');
  console.debug = method('DEBUG');
  console.info = method('INFO');
  console.log = console.info;
  console.warn = method('WARN');
  console.error = method('ERROR');
  console.fatal = (...args) => writeLine(format('FATAL', args));
}

/** How the runtime logs a failure: "Invoke Error", "Uncaught Exception", ... */
function logError(what, error) {
  if (json) console.error(intoError(error));
  else console.error(what, toLogged(intoError(error)));
}

module.exports = { patchConsole, setRequest, logError };
