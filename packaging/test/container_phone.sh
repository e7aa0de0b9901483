#!/bin/bash
# The phone inside the package test's container: requests as the phone user on the
# phone's listener, with mosquitto_pub (the real protocol, nothing else).
#   container_phone.sh TOPIC SCHEMA [EXTRA_FIELDS] [once]
# EXTRA_FIELDS is JSON to append inside the object, e.g. ',"steer":0,"throttle":0.4'.
# Without `once` it streams at 10 Hz over one connection until killed.
set -eu
topic=$1 schema=$2 extra=${3:-} mode=${4:-stream}
password=$(cat /etc/kilo7/mosquitto/kilo7-phone.password)
line() { printf '{"schema_version":"%s","ts_ms":%s%s}\n' "$schema" "$(date +%s%3N)" "$extra"; }
publish() { mosquitto_pub -l -p 1884 -u kilo7-phone -P "$password" -q 1 -t "$topic"; }
if [ "$mode" = once ]; then
	line | publish
else
	while :; do line; sleep 0.1; done | publish
fi
