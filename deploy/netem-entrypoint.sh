#!/bin/sh
# Entrypoint of docker-compose's Meridian containers: adds simulated inter-region latency with
# tc netem, then runs `meridian "$@"` as the unprivileged `node` user.
#
# NETEM_DELAY is a comma- or space-separated list of DESTINATION=DELAY, where DESTINATION is an
# IPv4 address, a CIDR (another region's subnet) or a host name, e.g.
#   NETEM_DELAY="172.28.1.0/24=40ms,172.28.3.0/24=65ms"
# Packets this container sends there wait DELAY (one way: give the other side the same rule back
# for a symmetric round trip). Everything else is untouched. Needs `cap_add: [NET_ADMIN]` and
# starting as root; without NETEM_DELAY it only drops privileges.
set -eu

MERIDIAN="node /app/packages/cli/dist/main.js"

if [ -n "${NETEM_DELAY:-}" ]; then
  band=1 # prio band 1 (class 1:1) carries all other traffic
  for rule in $(echo "$NETEM_DELAY" | tr ',' ' '); do
    dest=${rule%%=*}
    delay=${rule#*=}
    case "$dest" in
      */*) net=$dest; probe=${dest%/*} ;;
      *[!0-9.]*)
        probe=$(getent ahostsv4 "$dest" | awk 'NR == 1 { print $1 }')
        if [ -z "$probe" ]; then echo "netem: cannot resolve $dest" >&2; exit 1; fi
        net="$probe/32"
        ;;
      *) net="$dest/32"; probe=$dest ;;
    esac
    dev=$(ip -4 route get "$probe" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
    if [ -z "$dev" ]; then echo "netem: no route to $dest" >&2; exit 1; fi
    if ! tc qdisc show dev "$dev" | grep -q '^qdisc prio 1: root'; then
      tc qdisc replace dev "$dev" root handle 1: prio bands 16 \
        priomap 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
    fi
    band=$((band + 1))
    if [ "$band" -gt 16 ]; then echo "netem: at most 15 rules" >&2; exit 1; fi
    class=$(printf '%x' "$band")
    tc qdisc add dev "$dev" parent "1:$class" handle "$(printf '%x' $((band * 16))):" netem delay "$delay"
    tc filter add dev "$dev" protocol ip parent 1: prio 1 u32 match ip dst "$net" flowid "1:$class"
    echo "netem: $dest via $dev +$delay"
  done
fi

if [ "$(id -u)" = 0 ]; then
  # shellcheck disable=SC2086
  exec setpriv --reuid=node --regid=node --init-groups --inh-caps=-all --bounding-set=-all \
    -- $MERIDIAN "$@"
fi
# shellcheck disable=SC2086
exec $MERIDIAN "$@"
