"""Reports the context object's fields and types."""


def handler(event, context):
    cc = context.client_context
    return {
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "memory_type": type(context.memory_limit_in_mb).__name__,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "identity": {
            "id": context.identity.cognito_identity_id,
            "pool": context.identity.cognito_identity_pool_id,
        },
        "client_context": None
        if cc is None
        else {
            "custom": cc.custom,
            "env": cc.env,
            "installation_id": cc.client.installation_id if cc.client else None,
            "app_title": cc.client.app_title if cc.client else None,
        },
    }
