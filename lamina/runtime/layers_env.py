"""The variables through which a runtime finds its function's layers under /opt.

`opt` is the path of the merged layer tree as the runtime sees it: /opt in a sandbox with its
own filesystem view (which rewrites the host path), the host path elsewhere. Lamina's bootstraps
read `_LAMINA_OPT_DIR`: the Python one puts the layer's python dirs on sys.path, the Node.js one
builds NODE_PATH from it (nodejs/nodeNN/node_modules, then nodejs/node_modules), as on Lambda.
"""

from __future__ import annotations


def layer_variables(opt: str, *, layered: bool) -> dict[str, str]:
    return {"_LAMINA_OPT_DIR": opt} if layered else {}
