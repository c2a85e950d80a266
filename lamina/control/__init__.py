"""The registry: functions and their configuration, the rules they obey, and where they are kept.

Knows nothing of processes; what must reach the runtime flows out through callbacks.
"""
