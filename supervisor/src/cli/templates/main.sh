#!/usr/bin/env bash
# Command mode: runwarm runs this script once per invocation inside a warm sandbox. The payload
# JSON arrives on stdin (and in the file $RUNWARM_ARGS_FILE), each top-level scalar also as
# PARAM_<NAME>. Exit 0 is success; the last line of stdout, if it is JSON, is the result. A
# line starting with @@ followed by a JSON object is a structured log record.
set -euo pipefail

payload=$(cat)
name="${PARAM_NAME:-world}"
# Escape what would end or break a JSON string.
name=${name//\\/\\\\}
name=${name//\"/\\\"}

echo "@@{\"level\":\"info\",\"message\":\"greeting\",\"fields\":{\"payload_bytes\":${#payload}}}"
printf '{"greeting": "hello %s"}\n' "$name"
