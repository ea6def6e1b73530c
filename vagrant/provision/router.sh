#!/usr/bin/env bash
# The router VM: user net and DC net, ECMP routes to the VIPs learned over BGP (BIRD).
# Usage: router.sh USER_NIC_MAC DC_NIC_MAC
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

apt_install bird2 ethtool
install_network glb_setup_router "$(nic_by_mac "$1")" "$(nic_by_mac "$2")"
glb_bird_router_conf syslog "${GLB_DIRECTORS[@]}" | configure_bird
echo "router: BIRD peers with ${GLB_DIRECTORS[*]}; check with: sudo birdc show route"
