# shellcheck shell=bash disable=SC2034 # (every variable is for the scripts that source this)
# The example deployment's address plan, shared by the network-namespace lab (vagrant/lab) and the
# Vagrant VMs (vagrant/provision/*.sh). GLB's Vagrant topology (192.168.40/50.x, 10.10.10.10, fd..)
# translated to documentation ranges:
#
#   user net   198.51.100.0/24  2001:db8:40::/64   router .1 / ::1, user .10-.16 / ::10-::16
#   DC net     203.0.113.0/24   2001:db8:50::/64   router .1, directors .11 .12, proxies .21-.23
#   VIP        192.0.2.10       2001:db8:10::10    tcp/80
#
# BGP: the router is AS 64500; each director is its own AS (64501, 64502) and announces the VIPs.
# AS numbers are from the documentation range (RFC 5398).

GLB_VIP4=192.0.2.10
GLB_VIP6=2001:db8:10::10
GLB_VIP_PORT=80

GLB_USER_NET4=198.51.100.0/24
GLB_USER_NET6=2001:db8:40::/64
GLB_ROUTER_USER4=198.51.100.1
GLB_ROUTER_USER6=2001:db8:40::1
# Host numbers of the user's source addresses (198.51.100.N and 2001:db8:40::N).
GLB_USER_HOSTS=(10 11 12 13 14 15 16)

GLB_ROUTER_DC4=203.0.113.1
GLB_ROUTER_DC6=2001:db8:50::1
# The router's MAC address on the DC net: the directors send every GUE packet to it
# (director.conf outbound_gateway_mac), as GLB's Vagrant router has a fixed MAC for the same reason.
GLB_ROUTER_DC_MAC=02:47:4c:42:00:01
GLB_ROUTER_AS=64500

GLB_DIRECTORS=(director1 director2)
GLB_PROXIES=(proxy1 proxy2 proxy3)

# Host number of a director or proxy on the DC net (203.0.113.N, 2001:db8:50::N).
glb_host_number() {
    case "$1" in
        director[1-9]) echo $((10 + ${1#director})) ;;
        proxy[1-9]) echo $((20 + ${1#proxy})) ;;
        *) echo "glb_host_number: unknown host '$1' (expected directorN or proxyN)" >&2; return 1 ;;
    esac
}

glb_dc_ip4() { echo "203.0.113.$(glb_host_number "$1")"; }
glb_dc_ip6() { echo "2001:db8:50::$(glb_host_number "$1")"; }

# A director's own AS number.
glb_director_as() { echo $((GLB_ROUTER_AS + ${1#director})); }

glb_user_ip4() { echo "198.51.100.$1"; }
glb_user_ip6() { echo "2001:db8:40::$1"; }
