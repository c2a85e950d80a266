'use strict';
/**
 * Loading the handler named by the function's configuration, as Lambda's Node.js runtime does:
 * "dir/file.export.nested" names file `dir/file` (extensionless, .js, .mjs or .cjs; an ES module
 * when it is .mjs or a .js under a package.json with "type": "module"), else a module Node can
 * resolve from the task root (node_modules, NODE_PATH); then the export at that property path.
 */
const fs = require('fs');
const path = require('path');
const { pathToFileURL } = require('url');
const {
  HandlerNotFound,
  ImportModuleError,
  MalformedHandlerName,
  UserCodeSyntaxError,
} = require('./errors');

function splitHandler(full) {
  if (full.includes('..')) {
    throw new MalformedHandlerName(
      `'${full}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const base = path.basename(full);
  const moduleRoot = full.slice(0, full.indexOf(base));
  const match = /^([^.]*)\.(.*)$/.exec(base);
  if (!match) throw new MalformedHandlerName('Bad handler');
  return { moduleRoot, module: match[1], property: match[2] };
}

function inModulePackage(dir) {
  for (;;) {
    if (dir.endsWith('/node_modules')) return false;
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        return JSON.parse(fs.readFileSync(manifest, 'utf8')).type === 'module';
      } catch (err) {
        console.warn(`${manifest} cannot be read, it will be ignored for ES module detection purposes.`, err);
        return false;
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
}

async function importFile(file) {
  return import(pathToFileURL(file).href);
}

async function loadModule(appRoot, moduleRoot, name) {
  const base = path.resolve(appRoot, moduleRoot, name);
  if (fs.existsSync(base)) return require(base); // a file without extension, or a directory
  const esm = fs.existsSync(base + '.js') && inModulePackage(path.dirname(base + '.js'));
  if (!esm && fs.existsSync(base + '.js')) return require(base + '.js');
  if (esm) return importFile(base + '.js');
  if (fs.existsSync(base + '.mjs')) return importFile(base + '.mjs');
  if (fs.existsSync(base + '.cjs')) return require(base + '.cjs');
  return require(require.resolve(name, { paths: [appRoot, moduleRoot] }));
}

/** The handler function; throws the Runtime.* errors of an init failure. */
async function loadHandler(appRoot, full) {
  const { moduleRoot, module: name, property } = splitHandler(full);
  let loaded;
  try {
    loaded = await loadModule(appRoot, moduleRoot, name);
  } catch (err) {
    if (err instanceof SyntaxError) throw new UserCodeSyntaxError(err);
    if (err && err.code === 'MODULE_NOT_FOUND') throw new ImportModuleError(err);
    throw err;
  }
  const handler = property.split('.').reduce((obj, key) => obj && obj[key], loaded);
  if (!handler) throw new HandlerNotFound(`${full} is undefined or not exported`);
  if (typeof handler !== 'function') throw new HandlerNotFound(`${full} is not a function`);
  return handler;
}

module.exports = { loadHandler };
