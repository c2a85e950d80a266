"""The variables through which a runtime finds its function's layers under /opt.

`opt` is the path of the merged layer tree as the runtime sees it: /opt in a sandbox with its
own filesystem view (which rewrites the host path), the host path elsewhere.
"""

from __future__ import annotations


def layer_variables(runtime: str, opt: str, task_root: str, *, layered: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    if layered:
        out["_LAMINA_OPT_DIR"] = opt  # Lamina's Python bootstrap puts its python dirs on sys.path
    if runtime.startswith("nodejs"):
        major = runtime.removeprefix("nodejs").split(".", 1)[0]
        out["NODE_PATH"] = ":".join(
            (f"{opt}/nodejs/node{major}/node_modules", f"{opt}/nodejs/node_modules", task_root)
        )
    return out
