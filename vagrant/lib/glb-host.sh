# shellcheck shell=bash
# Network setup of each machine of the example deployment, shared by the namespace lab
# (vagrant/lab, which sets GLB_NETNS to run each command inside a node's namespace) and the
# Vagrant VMs (vagrant/provision/*.sh, through the glb-network.service they install, GLB_NETNS
# unset). Needs lib/topology.sh. Every function expects the named interfaces to exist.

# Runs a command on the machine being set up.
glb_run() {
    if [[ -n ${GLB_NETNS:-} ]]; then
        ip netns exec "$GLB_NETNS" "$@"
    else
        "$@"
    fi
}

# glb_sysctl KEY VALUE (KEY dotted, as sysctl's; no procps needed).
glb_sysctl() {
    glb_run sh -c "echo $2 >/proc/sys/${1//.//}"
}

# A veth hands frames on with the TCP/UDP checksum left to "hardware" (CHECKSUM_PARTIAL) and TCP
# segments unsplit (TSO), which no real wire carries: a director's AF_PACKET socket would tunnel
# such frames as they are and the proxy's kernel would drop them. Interfaces that send toward a
# director therefore complete checksums and segments in software when they are veths (the lab);
# real and virtual NICs (the VMs) need nothing.
glb_software_checksums() {
    if glb_run ethtool -i "$1" 2>/dev/null | grep -qx 'driver: veth'; then
        glb_run ethtool -K "$1" tx off >/dev/null
    fi
}

# The user: every source address on IFACE, and routes to the VIPs through the router (as GLB's
# user, which learned them over BGP).
glb_setup_user() {
    local iface=$1 host
    for host in "${GLB_USER_HOSTS[@]}"; do
        glb_run ip addr replace "$(glb_user_ip4 "$host")/24" dev "$iface"
        glb_run ip addr replace "$(glb_user_ip6 "$host")/64" dev "$iface" nodad
    done
    glb_run ip link set "$iface" up
    glb_run ip route replace "$GLB_VIP4/32" via "$GLB_ROUTER_USER4"
    glb_run ip -6 route replace "$GLB_VIP6/128" via "$GLB_ROUTER_USER6"
}

# The router: USER_IFACE on the user net, DC_IFACE (with the MAC the directors send GUE to) on the
# DC net. It forwards, hashes flows over ECMP paths by L4 ports as a datacenter router would, and
# sends no ICMP redirects for the GUE packets it turns around on the DC net.
glb_setup_router() {
    local user_iface=$1 dc_iface=$2
    glb_run ip addr replace "$GLB_ROUTER_USER4/24" dev "$user_iface"
    glb_run ip addr replace "$GLB_ROUTER_USER6/64" dev "$user_iface" nodad
    glb_run ip link set "$dc_iface" address "$GLB_ROUTER_DC_MAC"
    glb_run ip addr replace "$GLB_ROUTER_DC4/24" dev "$dc_iface"
    glb_run ip addr replace "$GLB_ROUTER_DC6/64" dev "$dc_iface" nodad
    glb_run ip link set "$user_iface" up
    glb_run ip link set "$dc_iface" up
    glb_sysctl net.ipv4.ip_forward 1
    glb_sysctl net.ipv6.conf.all.forwarding 1
    glb_sysctl net.ipv4.fib_multipath_hash_policy 1
    glb_sysctl net.ipv6.fib_multipath_hash_policy 1
    glb_sysctl net.ipv4.conf.all.send_redirects 0
    glb_sysctl "net.ipv4.conf.$dc_iface.send_redirects" 0
    glb_software_checksums "$dc_iface"
}

# A director: PORT (the AF_PACKET port) carries no address, and the kernel's copy of every frame
# arriving on it is dropped (director/README.md); the host's addresses live on KNI, a persistent
# TAP with the port's MAC that glb-director attaches to (GLB's KNI), so BGP and health checks
# pass through the director's kernel path and the DC net sees one station.
glb_setup_director() {
    local director=$1 port=$2 kni=$3 mac
    glb_sysctl "net.ipv4.conf.$port.forwarding" 0
    glb_sysctl "net.ipv4.conf.$port.rp_filter" 1
    glb_sysctl "net.ipv4.conf.$port.arp_ignore" 1
    glb_sysctl "net.ipv6.conf.$port.disable_ipv6" 1
    glb_run ethtool -K "$port" gro off >/dev/null
    glb_run ip link set "$port" up
    mac=$(glb_run cat "/sys/class/net/$port/address")
    if ! glb_run ip link show "$kni" >/dev/null 2>&1; then
        glb_run ip tuntap add dev "$kni" mode tap multi_queue
    fi
    glb_run ip link set "$kni" address "$mac"
    glb_run ip addr replace "$(glb_dc_ip4 "$director")/24" dev "$kni"
    glb_run ip addr replace "$(glb_dc_ip6 "$director")/64" dev "$kni" nodad
    glb_run ip link set "$kni" up
}

# A proxy: its DC address on IFACE, the return route to the user net through the router (direct
# server return: replies never pass a director), and no reverse-path filter (packets glb-redirect
# delivers through its TUN come from user addresses that route elsewhere).
glb_setup_proxy() {
    local proxy=$1 iface=$2
    glb_sysctl net.ipv4.conf.all.rp_filter 0
    glb_sysctl net.ipv4.conf.default.rp_filter 0
    glb_run ip addr replace "$(glb_dc_ip4 "$proxy")/24" dev "$iface"
    glb_run ip addr replace "$(glb_dc_ip6 "$proxy")/64" dev "$iface" nodad
    glb_run ip link set "$iface" up
    glb_run ip route replace "$GLB_USER_NET4" via "$GLB_ROUTER_DC4"
    glb_run ip -6 route replace "$GLB_USER_NET6" via "$GLB_ROUTER_DC6"
    glb_software_checksums "$iface"
}
