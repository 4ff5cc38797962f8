#!/bin/bash
# mkosi PrepareScript: runs inside the image (systemd-nspawn) right after the
# packages are installed and before mkosi caches the tree for incremental
# builds, so the slow steps here run only when the package set changes
# (`make image` with IMAGE_CLEAN=1, or a changed mkosi.conf or prepare.sh).
#   - purge systemd-resolved (mkosi adds it; it would listen on :53/:5355)
#   - drop kernel modules an appliance does not need
#   - build the initrd (mkosi runs apt with INITRD=No)
#   - drop apt lists/caches, docs, locales
set -euo pipefail
[ "${1:-final}" = final ] || exit 0
export DEBIAN_FRONTEND=noninteractive

if dpkg -s systemd-resolved >/dev/null 2>&1; then
	dpkg --purge systemd-resolved >/dev/null
fi
# /etc/resolv.conf: a plain file (no resolver service on the appliance).
rm -f /etc/resolv.conf
: >/etc/resolv.conf

kver=$(ls /lib/modules | sort -V | tail -n1)
mods=/lib/modules/$kver/kernel
# Whole subsystems an appliance load balancer does not use. Kept: virtio,
# storage (ata, nvme, scsi, md, usb-storage), wired NICs (net/ethernet),
# input/hid (keyboard for the console), ext4/vfat/nls, the whole network
# stack (netfilter, macvlan, bonding, vlan), crypto.
drop=(
	sound
	drivers/gpu drivers/media drivers/infiniband drivers/staging drivers/iio
	drivers/net/wireless drivers/net/can drivers/net/usb drivers/net/wwan
	drivers/net/ieee802154 drivers/net/hamradio drivers/net/arcnet drivers/net/fddi
	drivers/bluetooth drivers/isdn drivers/mtd drivers/nfc drivers/comedi
	drivers/input/touchscreen drivers/input/joystick drivers/input/tablet drivers/input/misc
	drivers/usb/gadget drivers/usb/serial drivers/usb/misc drivers/usb/musb drivers/usb/dwc2 drivers/usb/dwc3
	drivers/hwmon drivers/leds drivers/power drivers/thunderbolt drivers/fpga
	drivers/scsi/lpfc drivers/scsi/qla2xxx drivers/scsi/qla4xxx drivers/scsi/bfa
	drivers/scsi/be2iscsi drivers/scsi/bnx2fc drivers/scsi/fcoe drivers/scsi/csiostor
	drivers/target drivers/nvme/target drivers/spi drivers/w1 drivers/pcmcia
	drivers/video/fbdev drivers/platform/chrome drivers/platform/surface
	drivers/mfd drivers/regulator drivers/pinctrl drivers/gnss drivers/atm
	drivers/net/ethernet/mellanox/mlxsw drivers/net/ethernet/netronome
	drivers/net/ethernet/marvell/octeontx2 drivers/net/ethernet/huawei
	drivers/md/bcache drivers/misc drivers/rtc drivers/extcon drivers/char/tpm/st33zp24
	net/wireless net/mac80211 net/bluetooth net/nfc net/ceph net/rxrpc net/ieee802154
	net/mac802154 net/6lowpan net/can net/atm net/appletalk net/x25 net/lapb net/rds
	net/sunrpc net/9p net/batman-adv net/dsa net/mpls net/tipc net/smc net/sctp
	fs/btrfs fs/xfs fs/ocfs2 fs/nfs fs/nfsd fs/cifs fs/smb fs/ceph fs/gfs2 fs/f2fs
	fs/ntfs3 fs/ubifs fs/jfs fs/reiserfs fs/nilfs2 fs/erofs fs/afs fs/coda fs/dlm
	fs/orangefs fs/hfs fs/hfsplus fs/udf fs/ufs fs/minix fs/romfs fs/omfs fs/qnx4
	fs/qnx6 fs/befs fs/sysv fs/efs fs/freevxfs fs/adfs fs/affs fs/bfs fs/hpfs
	fs/jffs2 fs/gfs2 fs/lockd fs/nfs_common fs/9p fs/fscache fs/cachefiles
	fs/zonefs fs/exfat fs/ntfs
)
for d in "${drop[@]}"; do rm -rf "${mods:?}/$d"; done
depmod "$kver"

# The initrd: all storage drivers that are left (MODULES=most), zstd.
mkdir -p /etc/initramfs-tools/conf.d
printf 'MODULES=most\nCOMPRESS=zstd\n' >/etc/initramfs-tools/conf.d/halb.conf
update-initramfs -c -k "$kver" >/dev/null 2>&1 || update-initramfs -u -k "$kver"

# Caches, docs, locales: not needed on the appliance (apt update refills).
# (No apt-get clean: /var/cache/apt/archives is mkosi's package cache,
# mounted here from the host, not part of the tree.)
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
	/usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* \
	/usr/share/lintian /var/log/*.log /var/log/apt/* /usr/share/bug
# The kernel package's copy of System.map and config: not needed to boot.
rm -f /boot/System.map-* /boot/config-*
