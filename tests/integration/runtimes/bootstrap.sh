#!/bin/bash
# A whole custom runtime in bash, as in Lambda's tutorial but without curl: the Runtime API over
# bash's /dev/tcp, one connection per request. The handler "file.function" names a shell
# function in file.sh; it gets the event as $1 and prints the response.
set -u
export LC_ALL=C  # lengths in bytes
host=${AWS_LAMBDA_RUNTIME_API%:*}
port=${AWS_LAMBDA_RUNTIME_API##*:}
api=/2018-06-01/runtime

# request METHOD PATH [BODY [EXTRA-HEADER]]: sets status, request_id, body
request() {
  local payload=${3-} line name value length=0
  exec 3<>"/dev/tcp/$host/$port" || exit 1
  printf '%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n%s\r\n%s' \
    "$1" "$2" "$AWS_LAMBDA_RUNTIME_API" "${#payload}" "${4:+$4$'\r\n'}" "$payload" >&3
  IFS=' ' read -r _ status _ <&3
  request_id=
  while IFS= read -r line <&3; do
    line=${line%$'\r'}
    [ -z "$line" ] && break
    name=${line%%:*}
    value=${line#*: }
    case ${name,,} in
      content-length) length=$value ;;
      lambda-runtime-aws-request-id) request_id=$value ;;
    esac
  done
  body=
  if [ "$length" -gt 0 ]; then IFS= read -r -N "$length" body <&3; fi
  exec 3<&-
}

file=${_HANDLER%%.*}
function=${_HANDLER#*.}
if ! source "$LAMBDA_TASK_ROOT/$file.sh" 2>/dev/null || ! declare -F "$function" >/dev/null; then
  request POST "$api/init/error" \
    "{\"errorMessage\": \"no function $function in $file.sh\", \"errorType\": \"Runtime.HandlerNotFound\"}" \
    "Lambda-Runtime-Function-Error-Type: Runtime.HandlerNotFound"
  exit 1
fi

while true; do
  request GET "$api/invocation/next"
  echo "bash runtime got $request_id"
  if response=$("$function" "$body"); then
    request POST "$api/invocation/$request_id/response" "$response"
  else
    request POST "$api/invocation/$request_id/error" \
      "{\"errorMessage\": \"$function failed\", \"errorType\": \"Function.ShellError\"}"
  fi
done
