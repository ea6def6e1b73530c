#!/usr/bin/env bash
# A director VM: glb-director with the AF_PACKET backend on its DC NIC (no address; the host's
# addresses live on the TAP vglb_kni0), glb-healthcheck, and BIRD announcing the VIPs.
# Usage: director.sh DIRECTOR DC_NIC_MAC
# shellcheck source=common.sh
source "$(dirname "$0")/common.sh"
director=$1
kni=vglb_kni0
port=$(nic_by_mac "$2")

apt_install bird2 ethtool
install_network glb_setup_director "$director" "$port" "$kni"
install_binaries glb-director glb-director-cli glb-healthcheck

install -d /etc/glb
states=()
for proxy in "${GLB_PROXIES[@]}"; do states+=("$proxy=active"); done
glb_forwarding_table_src "${states[@]}" | glb_write_atomic /etc/glb/forwarding_table.src.json
glb_healthcheck_conf /etc/glb/forwarding_table.src.json /etc/glb/forwarding_table.checked.json \
    "glb-director-cli build-config /etc/glb/forwarding_table.checked.json /etc/glb/forwarding_table.checked.bin && systemctl reload glb-director" |
    glb_write_atomic /etc/glb/healthcheck.conf
glb_director_conf "$director" "$port" "$kni" 127.0.0.1:9102 | glb_write_atomic /etc/glb/director.conf
# The first table comes from the source (its declared health), so the director can start before
# the first health-check round; glb-healthcheck replaces it from then on.
[[ -f /etc/glb/forwarding_table.checked.bin ]] ||
    glb-director-cli build-config /etc/glb/forwarding_table.src.json /etc/glb/forwarding_table.checked.bin

install -m 0644 "$SRC/units/glb-director.default" /etc/default/glb-director
# The health checker's reload command runs `systemctl reload glb-director`: no directory watch.
sed -i -e 's|^GLB_DIRECTOR_FORWARDING_TABLE=.*|GLB_DIRECTOR_FORWARDING_TABLE=/etc/glb/forwarding_table.checked.bin|' \
    -e 's|^GLB_DIRECTOR_ARGS=.*|GLB_DIRECTOR_ARGS=--no-watch|' /etc/default/glb-director
install_units glb-director.service glb-healthcheck.service
install -d /etc/systemd/system/glb-director.service.d /etc/systemd/system/glb-healthcheck.service.d
cat >/etc/systemd/system/glb-director.service.d/vagrant.conf <<UNIT
# The port's settings and the KNI TAP with the host's addresses come first.
[Unit]
Requires=glb-network.service
After=glb-network.service
UNIT
cat >/etc/systemd/system/glb-healthcheck.service.d/vagrant.conf <<UNIT
# Checks go out through the director's kernel path; the example's short hold between reloads.
[Unit]
After=glb-director.service
[Service]
ExecStart=
ExecStart=/usr/bin/glb-healthcheck --config=/etc/glb/healthcheck.conf --reload-hold-ms=$GLB_HC_HOLD_MS
UNIT
systemctl daemon-reload
systemctl enable glb-director.service glb-healthcheck.service
systemctl restart glb-director.service
systemctl restart glb-healthcheck.service
glb_bird_director_conf "$director" syslog | configure_bird
echo "$director: table: glb-director-cli dump /etc/glb/forwarding_table.checked.bin; health: curl -s 127.0.0.1:19520/health"
