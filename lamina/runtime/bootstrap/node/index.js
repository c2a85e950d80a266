'use strict';
/**
 * Lamina's Node.js runtime: the handler contract of Lambda's Node.js runtimes over the Runtime
 * API, in plain JavaScript with no dependencies.
 *
 * Started as `node index.js <handler>` with the task root as working directory. Handlers may be
 * async (the returned promise settles the invocation), or take a callback (the invocation ends
 * when the callback was called and, unless context.callbackWaitsForEmptyEventLoop is false, the
 * event loop has nothing left to do), or neither (the invocation ends with null once the event
 * loop is empty). Errors thrown outside the handler's promise end the process after reporting.
 */
const { Writable } = require('stream');
const { RuntimeClient } = require('./rapid');
const { patchConsole, setRequest, logError } = require('./logging');
const errors = require('./errors');
const { loadHandler } = require('./loader');

const STREAMING = Symbol.for('aws.lambda.runtime.handler.streaming');
const HIGH_WATER_MARK = Symbol.for('aws.lambda.runtime.handler.streaming.highWaterMark');
const HTTP_INTEGRATION = 'application/vnd.awslambda.http-integration-response';

let beforeExit = () => {};
let onUncaught;
let onRejection;

/** NODE_PATH as on Lambda, unless the function sets its own: layers first, then the runtime's. */
function setNodePath(runtimeDir, taskRoot) {
  if (process.env.NODE_PATH) return;
  const opt = process.env._LAMINA_OPT_DIR || '/opt';
  const major = process.versions.node.split('.')[0];
  process.env.NODE_PATH = [
    `${opt}/nodejs/node${major}/node_modules`,
    `${opt}/nodejs/node_modules`,
    `${runtimeDir}/node_modules`,
    runtimeDir,
    taskRoot,
  ].join(':');
  require('module')._initPaths();
}

class HttpResponseStream {
  /** A response stream for a function URL: the status/headers prelude, 8 NUL bytes, the body. */
  static from(stream, prelude) {
    stream.setContentType(HTTP_INTEGRATION);
    stream.write(JSON.stringify(prelude));
    stream.write(Buffer.alloc(8));
    return stream;
  }
}

function installGlobals() {
  const flag = process.env.AWS_LAMBDA_NODEJS_NO_GLOBAL_AWSLAMBDA;
  if (flag === '1' || flag === 'true') return;
  globalThis.awslambda = {
    streamifyResponse(handler, options) {
      handler[STREAMING] = 'response';
      if (options && typeof options.highWaterMark === 'number') {
        handler[HIGH_WATER_MARK] = options.highWaterMark;
      }
      return handler;
    },
    HttpResponseStream,
  };
}

function parseJsonHeader(value, name) {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new Error(`Cannot parse ${name} as json: ${err.toString()}`);
  }
}

/** The context argument: callback controls, then the environment's and the invocation's data. */
function buildContext(headers, controls) {
  const trace = headers['lambda-runtime-trace-id'];
  if (trace) process.env._X_AMZN_TRACE_ID = trace;
  else delete process.env._X_AMZN_TRACE_ID;
  const env = process.env;
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  return Object.assign(controls, {
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(headers['lambda-runtime-client-context'], 'ClientContext'),
    identity: parseJsonHeader(headers['lambda-runtime-cognito-identity'], 'CognitoIdentity'),
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    tenantId: headers['lambda-runtime-aws-tenant-id'],
    getRemainingTimeInMillis() {
      return deadline - Date.now();
    },
  });
}

function serialize(result) {
  try {
    return JSON.stringify(result === undefined ? null : result);
  } catch (_) {
    throw new Error('Unable to stringify response body');
  }
}

class Runtime {
  constructor(client, handler) {
    this.client = client;
    this.handler = handler;
    this.streaming = handler[STREAMING] === 'response';
    if (handler[STREAMING] !== undefined && handler[STREAMING] !== false && !this.streaming) {
      throw new errors.MalformedStreamingHandler('Only response streaming is supported.');
    }
  }

  scheduleNext() {
    setImmediate(() => {
      this.once().catch((err) => {
        console.log(`Unexpected Top Level Error: ${err.toString()}`);
        onUncaught(err);
      });
    });
  }

  fatal(requestId, error, code) {
    this.client.postError(requestId, errors.toDocument(error), errors.xrayCause(error)).then(
      () => process.exit(code),
      () => process.exit(code),
    );
  }

  async once() {
    const { headers, body } = await this.client.next();
    const requestId = headers['lambda-runtime-aws-request-id'];
    if (!requestId) throw new Error('invocation id is missing or invalid');
    setRequest(requestId, headers['lambda-runtime-aws-tenant-id']);
    onUncaught = (err) => this.fatal(requestId, err, 129);
    onRejection = (err) => this.fatal(requestId, err, 128);
    if (this.streaming) return this.onceStreaming(requestId, headers, body);
    const { callback, controls, markDone } = this.callbacks(requestId);
    try {
      // a handler that neither returns a promise nor calls back answers null once idle
      beforeExit = () => {
        markDone();
        this.respond(requestId, null);
      };
      const context = buildContext(headers, controls);
      const result = this.handler(JSON.parse(body.toString('utf8')), context, callback);
      if (result && typeof result.then === 'function') {
        result.then(controls.succeed, controls.fail).catch(controls.fail);
      }
    } catch (err) {
      callback(err);
    }
  }

  respond(requestId, result) {
    let payload;
    try {
      payload = serialize(result);
    } catch (err) {
      this.fail(requestId, err);
      return;
    }
    this.client.postResponse(requestId, payload).then(
      () => this.scheduleNext(),
      (err) => onUncaught(err),
    );
  }

  fail(requestId, error) {
    logError('Invoke Error', error);
    this.client.postError(requestId, errors.toDocument(error), errors.xrayCause(error)).then(
      () => this.scheduleNext(),
      (err) => onUncaught(err),
    );
  }

  /** callback(err, result), and context.succeed / fail / done / callbackWaitsForEmptyEventLoop. */
  callbacks(requestId) {
    let completed = false;
    let finished = false;
    let waitForEmptyEventLoop = true;
    const complete = (result) => {
      if (completed) {
        console.error(
          'Invocation has already been reported as done. Cannot call complete more than once per invocation.',
        );
        return;
      }
      completed = true;
      this.respond(requestId, result);
    };
    const done = (err, result) => {
      beforeExit = () => {};
      if (err !== undefined && err !== null) {
        completed = true;
        this.fail(requestId, err);
      } else {
        complete(result);
      }
    };
    const once = (fn) =>
      function (...args) {
        if (finished) return;
        finished = true;
        fn(...args);
      };
    const callback = once((err, result) => {
      beforeExit = () => {};
      if (err !== undefined && err !== null) {
        completed = true;
        this.fail(requestId, err);
      } else if (!waitForEmptyEventLoop) {
        complete(result);
      } else {
        beforeExit = () => setImmediate(() => complete(result));
      }
    });
    const controls = {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyEventLoop = value;
      },
      succeed: once((result) => done(null, result)),
      fail: once((err) => done(err === undefined || err === null ? 'handled' : err, null)),
      done: once(done),
    };
    return { callback, controls, markDone: () => (completed = true) };
  }

  /** A streaming handler's response, collected and posted whole (Invoke answers it buffered). */
  async onceStreaming(requestId, headers, body) {
    const chunks = [];
    let contentType = 'application/octet-stream';
    const stream = new Writable({
      highWaterMark: this.handler[HIGH_WATER_MARK],
      write(chunk, _encoding, next) {
        chunks.push(Buffer.from(chunk));
        next();
      },
    });
    stream.setContentType = (value) => {
      contentType = value;
    };
    beforeExit = () => {};
    let waitForEmptyEventLoop = true;
    const controls = {
      get callbackWaitsForEmptyEventLoop() {
        return waitForEmptyEventLoop;
      },
      set callbackWaitsForEmptyEventLoop(value) {
        waitForEmptyEventLoop = value;
      },
    };
    try {
      const context = buildContext(headers, controls);
      const pending = this.handler(JSON.parse(body.toString('utf8')), stream, context);
      if (!pending || typeof pending.then !== 'function') {
        throw new Error('Streaming does not support non-async handlers.');
      }
      if ((await pending) !== undefined) console.warn('Streaming handlers ignore return values.');
      if (!stream.writableFinished) {
        await new Promise((resolve, reject) => {
          if (stream.writableEnded) stream.once('finish', resolve);
          else reject(new Error('Response stream is not finished.'));
        });
      }
    } catch (err) {
      this.fail(requestId, err);
      return;
    }
    this.client.postResponse(requestId, Buffer.concat(chunks), contentType).then(
      () => this.scheduleNext(),
      (err) => onUncaught(err),
    );
  }
}

async function main() {
  const handlerName = process.argv[2] || process.env._HANDLER || '';
  const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
  patchConsole();
  setNodePath(process.env.LAMBDA_RUNTIME_DIR || __dirname, taskRoot);
  const client = new RuntimeClient(process.env.AWS_LAMBDA_RUNTIME_API);
  const initFailed = (code) => (err) => {
    client.postInitError(errors.toDocument(err)).then(
      () => process.exit(code),
      () => process.exit(code),
    );
  };
  onUncaught = initFailed(129);
  onRejection = initFailed(128);
  process.on('uncaughtException', (err) => {
    logError('Uncaught Exception', err);
    onUncaught(err);
  });
  process.on('unhandledRejection', (reason, promise) => {
    const err = new errors.UnhandledPromiseRejection(reason, promise);
    logError('Unhandled Promise Rejection', err);
    onRejection(err);
  });
  process.on('beforeExit', () => beforeExit());
  installGlobals();
  let runtime;
  try {
    runtime = new Runtime(client, await loadHandler(taskRoot, handlerName));
  } catch (err) {
    logError('Uncaught Exception', err);
    onUncaught(err);
    return;
  }
  runtime.scheduleNext();
}

main();
