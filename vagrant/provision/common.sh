# shellcheck shell=bash
# Shared by the Vagrant provisioning scripts (run as root in each VM by the Vagrantfile, which
# copied vagrant/lib, vagrant/provision, the packaging units and the binaries to /tmp/glb).
set -euo pipefail

SRC=/tmp/glb
# The libraries stay on the machine: glb-network.service sources them at every boot.
LIB=/usr/local/lib/glb
install -d "$LIB"
install -m 0644 "$SRC"/lib/*.sh "$LIB"/
# shellcheck source=../lib/topology.sh
source "$LIB/topology.sh"
# shellcheck source=../lib/glb-config.sh
source "$LIB/glb-config.sh"
# shellcheck source=../lib/glb-host.sh
source "$LIB/glb-host.sh"
# The Vagrant topology has GLB's two proxies (the lab has three).
# shellcheck disable=SC2034 # used by the role scripts
read -r -a GLB_PROXIES <<<"${GLB_VAGRANT_PROXIES:-proxy1 proxy2}"

export DEBIAN_FRONTEND=noninteractive

apt_install() {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The interface with MAC address $1 (the Vagrantfile fixes every lab NIC's MAC, so the scripts do
# not depend on how the box names interfaces).
nic_by_mac() {
    local dev
    for dev in /sys/class/net/*; do
        if [[ $(cat "$dev/address") == "${1,,}" ]]; then
            basename "$dev"
            return 0
        fi
    done
    echo "no interface with MAC $1" >&2
    return 1
}

install_binaries() {
    local binary
    for binary in "$@"; do
        install -m 0755 "$SRC/bin/$binary" "/usr/bin/$binary"
    done
}

install_units() {
    local unit
    for unit in "$@"; do
        install -m 0644 "$SRC/units/$unit" "/etc/systemd/system/$unit"
    done
    systemctl daemon-reload
}

# glb-network.service: runs one glb-host.sh setup function (with its arguments) at every boot,
# before the GLB daemons, so the VM comes back as provisioned.
install_network() {
    cat >/usr/local/sbin/glb-network <<SCRIPT
#!/usr/bin/env bash
# Written by vagrant/provision: this machine's part of the example deployment's network.
set -euo pipefail
source $LIB/topology.sh
source $LIB/glb-host.sh
$*
SCRIPT
    chmod 0755 /usr/local/sbin/glb-network
    cat >/etc/systemd/system/glb-network.service <<'UNIT'
[Unit]
Description=GLB example deployment: addresses, routes and sysctls of this machine
Before=network-online.target glb-director.service glb-healthcheck.service glb-redirect.service bird.service
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/glb-network

[Install]
WantedBy=multi-user.target
UNIT
    systemctl daemon-reload
    systemctl enable --now glb-network.service
}

# BIRD 2 with the given configuration on stdin.
configure_bird() {
    glb_write_atomic /etc/bird/bird.conf
    chown root:bird /etc/bird/bird.conf
    chmod 0640 /etc/bird/bird.conf
    systemctl enable bird.service >/dev/null
    systemctl restart bird.service
}
