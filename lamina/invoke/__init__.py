"""The invocation path: resolve the function, admit the call, run it in an environment, record it.

Translates between the registry's FunctionConfig and the runtime's EnvironmentSpec.
"""
