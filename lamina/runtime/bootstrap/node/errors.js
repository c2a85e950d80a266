'use strict';
/**
 * The error documents Lambda's Node.js runtime posts and logs, and its `Runtime.*` error types.
 */
const util = require('util');

class RuntimeError extends Error {}

function runtimeError(name) {
  const cls = class extends RuntimeError {};
  Object.defineProperty(cls, 'name', { value: name });
  cls.prototype.name = `Runtime.${name}`;
  return cls;
}

const ImportModuleError = runtimeError('ImportModuleError');
const HandlerNotFound = runtimeError('HandlerNotFound');
const MalformedHandlerName = runtimeError('MalformedHandlerName');
const UserCodeSyntaxError = runtimeError('UserCodeSyntaxError');
const MalformedStreamingHandler = runtimeError('MalformedStreamingHandler');

class UnhandledPromiseRejection extends RuntimeError {
  constructor(reason, promise) {
    super(reason);
    this.reason = reason;
    this.promise = promise;
  }
}
UnhandledPromiseRejection.prototype.name = 'Runtime.UnhandledPromiseRejection';

function looksLikeError(value) {
  return (
    value &&
    typeof value.name === 'string' &&
    typeof value.message === 'string' &&
    typeof value.stack === 'string'
  );
}

/** The body of /invocation/{id}/error and /init/error: errorType, errorMessage, trace. */
function toDocument(error) {
  try {
    if (util.types.isNativeError(error) || looksLikeError(error)) {
      return {
        errorType: error.name,
        errorMessage: error.message,
        trace: String(error.stack).split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

function intoError(value) {
  return value instanceof Error ? value : new Error(value);
}

/** What the text log shows after "Invoke Error": the error with its own fields, stack as lines. */
function toLogged(error) {
  const expand = (_key, value) => {
    if (!(value instanceof Error)) return value;
    const out = { errorType: value.name, errorMessage: value.message, code: value.code, ...value };
    if (typeof value.stack === 'string') out.stack = value.stack.split('\n');
    return out;
  };
  try {
    return '\t' + JSON.stringify(error, expand);
  } catch (_) {
    return '\t' + JSON.stringify(toDocument(error));
  }
}

/** The X-Ray cause header: the exception and its frames. */
function xrayCause(error) {
  try {
    const frames = [];
    if (typeof error.stack === 'string') {
      for (const raw of error.stack.split('\n').slice(1)) {
        const line = raw.trim().replace(/[()]/g, '');
        const rest = line.slice(line.indexOf(' ') + 1);
        const space = rest.lastIndexOf(' ');
        const label = space >= 0 ? rest.slice(0, space) : '';
        const where = (space >= 0 ? rest.slice(space + 1) : rest).split(':');
        frames.push({ path: where[0], line: parseInt(where[1], 10), label: label || 'anonymous' });
      }
    }
    return JSON.stringify({
      working_directory: process.cwd(),
      exceptions: [{ type: error.name, message: error.message, stack: frames }],
      paths: [...new Set(frames.map((f) => f.path))],
    });
  } catch (_) {
    return '';
  }
}

module.exports = {
  ImportModuleError,
  HandlerNotFound,
  MalformedHandlerName,
  UserCodeSyntaxError,
  MalformedStreamingHandler,
  UnhandledPromiseRejection,
  toDocument,
  toLogged,
  intoError,
  xrayCause,
};
