"""Lamina's Python runtime: the handler contract of AWS Lambda's Python runtime over the Runtime API.

Runs inside an execution environment as `python -I bootstrap.py`. It is on the cold-start path,
so it uses the standard library only, speaks HTTP/1.1 over one kept-alive socket itself (cheaper
to import than http.client), and imports nothing of Lamina. Behaviour follows awslambdaric: the
same error types and messages, the same log line format, the same context object.
"""

import json
import os
import socket
import sys
import time
import traceback

_RUNTIME = "/2018-06-01/runtime"
_current_request_id = ""


class FaultError(Exception):
    """An init failure of the kind awslambdaric reports with a `Runtime.*` type."""

    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class RuntimeClient:
    """A minimal Runtime API client: one connection, Content-Length framed, no chunking."""

    def __init__(self, address):
        host, _, port = address.rpartition(":")
        self.host = address
        self.sock = socket.create_connection((host, int(port)))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()  # received, not yet parsed (a 202 and the next event come together)
        self._next_message = self._message("GET", _RUNTIME + "/invocation/next")

    def _message(self, method, path, body=b"", headers=()):
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        for name, value in headers:
            head += f"{name}: {value}\r\n"
        return head.encode("latin-1") + b"\r\n" + body

    def request(self, method, path, body=b"", headers=(), then_next=False):
        """One exchange; with `then_next` the next event's GET goes in the same write
        (HTTP/1.1 pipelining: one wake-up less for the server per invocation)."""
        message = self._message(method, path, body, headers)
        if then_next:
            message += self._next_message
        self.sock.sendall(message)
        return self._read()

    def _read(self):
        """One response: the head parsed in one pass (no line-by-line reads), then the body."""
        buf = self._buf
        recv = self.sock.recv
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            chunk = recv(65536)
            if not chunk:
                raise ConnectionError("Runtime API closed the connection")
            buf += chunk
            end = buf.find(b"\r\n\r\n", max(0, len(buf) - len(chunk) - 3))
        lines = buf[:end].decode("latin-1").split("\r\n")
        status = int(lines[0].split(None, 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        start = end + 4
        stop = start + int(fields.get("content-length") or 0)
        while len(buf) < stop:
            chunk = recv(max(65536, stop - len(buf)))
            if not chunk:
                raise ConnectionError("Runtime API closed the connection")
            buf += chunk
        payload = bytes(buf[start:stop])
        del buf[:stop]
        return status, fields, payload

    def next(self, sent=False):
        """The next event; `sent`: its GET went out already, pipelined after a post."""
        if sent:
            status, fields, payload = self._read()
        else:
            status, fields, payload = self.request("GET", _RUNTIME + "/invocation/next")
        if status != 200:
            raise ConnectionError(f"/next answered {status}")
        return fields, payload

    def post_response(self, request_id, body, content_type):
        self.request(
            "POST",
            f"{_RUNTIME}/invocation/{request_id}/response",
            body,
            (("Content-Type", content_type),),
            then_next=True,
        )

    def post_error(self, request_id, error, error_type):
        body = json.dumps(error).encode()
        headers = [("Content-Type", "application/json")]
        if error_type:
            headers.append(("Lambda-Runtime-Function-Error-Type", error_type))
        self.request(
            "POST", f"{_RUNTIME}/invocation/{request_id}/error", body, headers, then_next=True
        )

    def post_init_error(self, error):
        body = json.dumps(error).encode()
        self.request(
            "POST",
            _RUNTIME + "/init/error",
            body,
            (
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Function-Error-Type", error["errorType"]),
            ),
        )


class CognitoIdentity:
    __slots__ = ("cognito_identity_id", "cognito_identity_pool_id")

    def __init__(self, data):
        self.cognito_identity_id = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id = data.get("cognitoIdentityPoolId")


class Client:
    __slots__ = (
        "app_package_name",
        "app_title",
        "app_version_code",
        "app_version_name",
        "installation_id",
    )

    def __init__(self, data):
        self.installation_id = data.get("installation_id")
        self.app_title = data.get("app_title")
        self.app_version_name = data.get("app_version_name")
        self.app_version_code = data.get("app_version_code")
        self.app_package_name = data.get("app_package_name")


class ClientContext:
    __slots__ = ("client", "custom", "env")

    def __init__(self, data):
        self.custom = data.get("custom")
        self.env = data.get("env")
        client = data.get("client")
        self.client = Client(client) if client is not None else None


class LambdaContext:
    """The `context` argument, with awslambdaric's attributes and types."""

    # The environment's own values, the same for every invocation: read once when the runtime
    # starts serving (after a snapshot start's fork has set them), not per invocation.
    environment = {}

    @classmethod
    def read_environment(cls):
        env = os.environ
        cls.environment = {
            "function_name": env.get("AWS_LAMBDA_FUNCTION_NAME"),
            "function_version": env.get("AWS_LAMBDA_FUNCTION_VERSION"),
            "memory_limit_in_mb": env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"),
            "log_group_name": env.get("AWS_LAMBDA_LOG_GROUP_NAME"),
            "log_stream_name": env.get("AWS_LAMBDA_LOG_STREAM_NAME"),
        }

    def __init__(self, request_id, deadline_ms, invoked_arn, client_context, identity, tenant_id):
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.__dict__.update(self.environment)
        self.identity = CognitoIdentity(identity or {})
        self.client_context = ClientContext(client_context) if client_context is not None else None
        self.tenant_id = tenant_id
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg):
        sys.stdout.write(str(msg))

    def __repr__(self):
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"log_group_name={self.log_group_name},log_stream_name={self.log_stream_name},"
            f"function_name={self.function_name},memory_limit_in_mb={self.memory_limit_in_mb},"
            f"function_version={self.function_version},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


def _setup_path(task_root, sdk_dirs):
    """sys.path as on Lambda: task root, then layer paths, then the runtime's own; the SDK
    (boto3 and its dependencies) after all of them, so that a packaged boto3 wins."""
    opt = os.environ.get("_LAMINA_OPT_DIR", "/opt")
    ver = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    front = [task_root, f"{opt}/python/lib/{ver}/site-packages", f"{opt}/python"]
    sys.path[:0] = [p for p in front if p not in sys.path]
    # Lamina's runtime modules (snapshot_restore_py, the fork side of snapshot starts) come last
    sys.path.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
    if sdk_dirs:
        sys.meta_path.append(SdkFinder(sdk_dirs.split(os.pathsep)))


class SdkFinder:
    """Finds the SDK's top-level modules, and only those, in Lamina's own install (found after
    every sys.path entry: it sits at the end of sys.meta_path). Costs nothing until an import
    misses everywhere else; the modules are imported only when the function imports them."""

    NAMES = frozenset(("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"))

    def __init__(self, dirs):
        self.dirs = dirs

    def find_spec(self, name, path=None, target=None):
        if path is not None or name not in self.NAMES:
            return None
        from importlib.machinery import PathFinder

        return PathFinder.find_spec(name, self.dirs)

    def invalidate_caches(self):
        pass


def _setup_logging():
    import logging

    level_name = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    json_format = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "").upper() == "JSON"

    class RequestIdFilter(logging.Filter):
        def filter(self, record):
            record.aws_request_id = _current_request_id
            return True

    class TextFormatter(logging.Formatter):
        converter = time.gmtime

        def format(self, record):
            return super().format(record).replace("\n", "\r")

    class JsonFormatter(logging.Formatter):
        def format(self, record):
            out = {
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
                "level": record.levelname,
                "message": record.msg if isinstance(record.msg, dict) else record.getMessage(),
                "logger": record.name,
                "requestId": _current_request_id,
            }
            if record.exc_info:
                etype, exc, tb = record.exc_info
                out["errorType"] = etype.__name__ if etype else None
                out["errorMessage"] = str(exc)
                out["stackTrace"] = traceback.format_tb(tb)
            return json.dumps(out, default=str)

    handler = logging.StreamHandler(sys.stdout)
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            TextFormatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    if level_name:
        root.setLevel({"TRACE": "DEBUG", "FATAL": "CRITICAL"}.get(level_name, level_name))


def _load_handler(name):
    import importlib

    try:
        modname, fname = name.rsplit(".", 1)
    except ValueError as exc:
        raise FaultError("Runtime.MalformedHandlerName", f"Bad handler '{name}': {exc}") from None
    if modname.split(".")[0] in sys.builtin_module_names:
        raise FaultError(
            "Runtime.BuiltInModuleConflict",
            f"Cannot use built-in module {modname} as a handler module",
        )
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as exc:
        raise FaultError(
            "Runtime.ImportModuleError", f"Unable to import module '{modname}': {exc}"
        ) from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise FaultError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{modname}': {exc}", trace
        ) from None
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultError(
            "Runtime.HandlerNotFound", f"Handler '{fname}' missing on module '{modname}'"
        ) from None


def _error_from_exception(exc, request_id):
    """awslambdaric's error document; the trace starts at the first frame of user code."""
    tb = traceback.extract_tb(exc.__traceback__)
    while tb and (tb[0].filename == __file__ or tb[0].filename.startswith("<frozen ")):
        del tb[0]
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(tb),
    }


def _log_error(error):
    """One log event, as awslambdaric writes it: the record's lines joined with carriage returns."""
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error.get("stackTrace") is not None:
        lines.append("Traceback (most recent call last):")
        for frame in error["stackTrace"]:
            lines.extend(frame.splitlines() or [""])
    text = "\r".join(lines).replace("\n", "\r")  # a multi-line message stays one event
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _json_default(value):
    import decimal

    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _serve(client, handler, ensure_ascii):
    global _current_request_id
    LambdaContext.read_environment()
    dumps = json.dumps
    pipelined = False
    while True:
        fields, payload = client.next(sent=pipelined)
        pipelined = True  # every post below also asks for the next event
        request_id = fields.get("lambda-runtime-aws-request-id", "")
        _current_request_id = request_id
        trace_id = fields.get("lambda-runtime-trace-id")
        if trace_id:
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        try:
            if fields.get("content-type") == "application/json":
                try:
                    event = json.loads(payload) if payload else {}
                except ValueError as exc:
                    raise FaultError(
                        "Runtime.UnmarshalError", f"Unable to unmarshal input: {exc}"
                    ) from None
            else:
                event = payload
            raw_cc = fields.get("lambda-runtime-client-context")
            raw_id = fields.get("lambda-runtime-cognito-identity")
            try:
                client_context = json.loads(raw_cc) if raw_cc else None
                identity = json.loads(raw_id) if raw_id else None
            except ValueError as exc:
                raise FaultError(
                    "Runtime.LambdaContextUnmarshalError",
                    f"Unable to parse Client Context JSON: {exc}",
                ) from None
            context = LambdaContext(
                request_id,
                int(fields.get("lambda-runtime-deadline-ms", "0")),
                fields.get("lambda-runtime-invoked-function-arn"),
                client_context,
                identity,
                fields.get("lambda-runtime-aws-tenant-id"),
            )
            result = handler(event, context)
            if isinstance(result, (bytes, bytearray)):
                body, content_type = bytes(result), "application/unknown"
            else:
                try:
                    body = dumps(result, default=_json_default, ensure_ascii=ensure_ascii).encode()
                except (TypeError, ValueError) as exc:
                    raise FaultError(
                        "Runtime.MarshalError", f"Unable to marshal response: {exc}"
                    ) from None
                content_type = "application/json"
        except FaultError as fault:
            error = {
                "errorMessage": fault.message,
                "errorType": fault.error_type,
                "requestId": request_id,
                "stackTrace": fault.trace,
            }
            _log_error(error)
            _flush()
            client.post_error(request_id, error, fault.error_type)
        except Exception as exc:
            error = _error_from_exception(exc, request_id)
            _log_error(error)
            _flush()
            client.post_error(request_id, error, None)
        else:
            _flush()
            client.post_response(request_id, body, content_type)


def _flush():
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _site_builtins():
    """exit() and quit(), which `site` would have defined (the runtime starts with -S)."""
    import builtins

    if not hasattr(builtins, "exit"):
        import _sitebuiltins

        builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
        builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")


def main():
    handler_name = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("_HANDLER", "")
    task_root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(line_buffering=True)
    _setup_path(task_root, sys.argv[2] if len(sys.argv) > 2 else "")
    _site_builtins()
    template_fd = os.environ.get("_LAMINA_TEMPLATE_FD")
    started = time.perf_counter()
    # A template (snapshot starts, _lamina_fork.py) has no Runtime API: its forks connect.
    client = None if template_fd else RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    _setup_logging()
    try:
        handler = _load_handler(handler_name)
    except FaultError as fault:
        if template_fd:  # the server starts the environment plainly, and reports it there
            sys.exit(f"template Init failed: {fault.message}")
        error = {
            "errorMessage": fault.message,
            "errorType": fault.error_type,
            "requestId": "",
            "stackTrace": fault.trace,
        }
        _log_error(error)
        client.post_init_error(error)
        sys.exit(1)
    except Exception as exc:
        if template_fd:
            sys.exit(f"template Init failed: {exc!r}")
        error = _error_from_exception(exc, "")
        _log_error(error)
        client.post_init_error(error)
        sys.exit(1)
    execution_env = os.environ.get("AWS_EXECUTION_ENV", "")
    # awslambdaric writes UTF-8 (not \u escapes) from python3.12 on.
    minor = (
        execution_env.rpartition(".")[2] if execution_env.startswith("AWS_Lambda_python3.") else ""
    )
    ensure_ascii = not (minor.isdigit() and int(minor) >= 12)
    if template_fd:
        import _lamina_fork

        _lamina_fork.serve_template(int(template_fd), (time.perf_counter() - started) * 1000)
        client = RuntimeClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    _serve(client, handler, ensure_ascii)


if __name__ == "__main__":
    main()
