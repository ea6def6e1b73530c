#!/usr/bin/env bash
# A proxy VM: glb-redirect (GUE on UDP 19523, the VIPs on its TUN) and the web server, replies
# straight to the user through the router.
# Usage: proxy.sh PROXY DC_NIC_MAC
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
proxy=$1

apt_install ethtool
install_network glb_setup_proxy "$proxy" "$(nic_by_mac "$2")"
install_binaries glb-redirect glb-lab-httpd
install -m 0644 "$SRC/units/glb-redirect.default" /etc/default/glb-redirect
sed -i "s|^GLB_REDIRECT_ARGS=.*|GLB_REDIRECT_ARGS=--vip $GLB_VIP4 --vip $GLB_VIP6|" /etc/default/glb-redirect
install_units glb-redirect.service glb-lab-httpd.service
systemctl enable --now glb-redirect.service glb-lab-httpd.service
systemctl restart glb-redirect.service glb-lab-httpd.service
echo "$proxy: glb-redirect counters: curl -s http://127.0.0.1:19521/stats"
