"""Runtime hooks for snapshot starts, with the interface of AWS's `snapshot_restore_py` module.

    from snapshot_restore_py import register_before_snapshot, register_after_restore

    @register_before_snapshot
    def close_connections(): ...

    @register_after_restore
    def reconnect(): ...

This copy is found last on sys.path: a function that bundles AWS's package (or a runtime that
has it) uses that one; the hooks are read through the same two getters either way. In Lamina,
before-snapshot hooks run once in the function version's template, after Init and before the
first environment is forked from it (last registered first); after-restore hooks run in every
environment forked from it, before its first invocation (in the order registered).
Environments started without a template (snapshot starts off, or refused) run neither.
"""

__all__ = ["register_after_restore", "register_before_snapshot"]

_before_snapshot = []
_after_restore = []


def register_before_snapshot(func, *args, **kwargs):
    """Call func(*args, **kwargs) in the template, before environments are forked from it."""
    _before_snapshot.append((func, args, kwargs))
    return func


def register_after_restore(func, *args, **kwargs):
    """Call func(*args, **kwargs) in each forked environment, before its first invocation."""
    _after_restore.append((func, args, kwargs))
    return func


def get_before_snapshot():
    return _before_snapshot


def get_after_restore():
    return _after_restore
