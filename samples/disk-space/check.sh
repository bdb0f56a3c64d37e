#!/usr/bin/env bash
# Command mode: top-level payload scalars arrive as PARAM_<NAME>; the last stdout line is the
# result when it is JSON; a non-zero exit marks the invocation failed.
set -euo pipefail
# Inside the sandbox / is a private tmpfs; the script folder (/var/task) lives on the host
# filesystem that holds the daemon's state, so that is the default to check.
path="${PARAM_PATH:-${RUNWARM_SCRIPT_ROOT:-/var/task}}"
max="${PARAM_MAX_PERCENT:-90}"
used=$(df -P "$path" | awk 'NR==2 { sub("%", "", $5); print $5 }')
echo "filesystem of $path is ${used}% full (limit ${max}%)"
if [ "$used" -gt "$max" ]; then
  echo "disk usage ${used}% is above ${max}%" >&2
  exit 1
fi
printf '{"path":"%s","used_percent":%d,"max_percent":%d,"ok":true}\n' "$path" "$used" "$max"
