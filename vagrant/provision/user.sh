#!/usr/bin/env bash
# The user VM: several source addresses on the user net, routes to the VIPs through the router.
# Usage: user.sh USER_NIC_MAC
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"

apt_install curl
install_network glb_setup_user "$(nic_by_mac "$1")"
echo "user: try  for a in 10 11 12 13 14 15 16; do curl -s --interface 198.51.100.\$a http://$GLB_VIP4/; done"
