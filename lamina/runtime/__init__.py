"""Execution environments: their processes, pools and lifecycle, and the Runtime API they speak.

Takes an EnvironmentSpec; knows nothing of the registry or of the public HTTP API.
"""
