#!/bin/bash
# mkosi PrepareScript: runs inside the image (systemd-nspawn) right after the
# packages are installed and before mkosi caches the tree for incremental
# builds, so the slow steps here run only when the package set changes
# (`make image` with IMAGE_CLEAN=1, or a changed mkosi.conf or prepare.sh).
#   - purge systemd-resolved (mkosi adds it; it would listen on :53/:5355)
#   - keep only the kernel modules a VM or server needs (allowlist)
#   - build a small initrd (mkosi runs apt with INITRD=No), then remove
#     what only built it or installs packages (perl, apt, initramfs-tools)
#   - drop udev's hwdb, iconv modules
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
moddir=/lib/modules/$kver
# Kernel modules: an allowlist of what a VM or a server needs (groups below;
# each module with everything it depends on, from modules.dep); every other
# module goes. A name that is neither a module nor built into the kernel
# fails the build, so a trimmed list cannot silently lose a NIC or a disk.
#   vm    virtual NICs and disks (KVM/QEMU, VMware, Hyper-V, Xen, AWS, GCP)
#   nic   the server NICs (Intel, Mellanox, Broadcom, Realtek, Solarflare,
#         Emulex, QLogic, Chelsio, Aquantia, Cisco)
#   disk  SATA/NVMe/SAS/RAID controllers, USB storage, md RAID, device mapper
#   fs    ext4, vfat (the seed), ISO, squashfs, overlay, loop, efivarfs, autofs
#   net   the network stack: bonding, VLAN, macvlan, tunnels, WireGuard,
#         all of netfilter, traffic control, IPv4, IPv6
#   misc  keyboard (HID/USB), the power button, watchdogs, CPU crypto, QEMU
#         helpers, SCSI generic, all of crypto/ and lib/ (not efi_pstore:
#         nothing reads crash dumps from EFI variables, systemd-pstore is
#         masked, and loading it costs seconds of an emulated CPU)
groups='vm: virtio_net virtio_blk virtio_scsi virtio_pci virtio_balloon virtio_console virtio_rng vmxnet3 vmw_pvscsi hv_netvsc hv_storvsc hv_vmbus xen_netfront xen_blkfront ena gve e1000 e1000e 8139cp ne2k_pci pcnet32
nic: igb igc ixgbe ixgbevf i40e iavf ice mlx4_en mlx5_core bnxt_en bnx2 bnx2x tg3 r8169 sfc be2net qede cxgb4 atlantic enic
disk: ahci ata_piix ata_generic nvme sd_mod sr_mod megaraid_sas mpt3sas smartpqi hpsa aacraid usb_storage uas xhci_pci ehci_pci ohci_pci uhci_hcd raid1 raid10 raid456 dm_mod dm_mirror
fs: ext4 vfat nls_cp437 nls_ascii nls_iso8859_1 nls_utf8 isofs squashfs overlay loop efivarfs autofs4
net: bonding 8021q macvlan ipvlan veth vxlan geneve dummy tun bridge wireguard tls ifb ipip ip_gre ip6_tunnel sit xfrm_user esp4 esp6 tcp_bbr net/netfilter/ net/sched/ net/ipv4/ net/ipv6/
misc: hid_generic usbhid evdev psmouse serio_raw button i6300esb iTCO_wdt softdog crc32c_intel aesni_intel sha256_ssse3 ghash_clmulni_intel msr cpuid ptp_kvm vmw_vsock_virtio_transport qemu_fw_cfg sg crypto/ lib/'
sel=$(mktemp)
# For each allowlisted name (or directory, ending in /): the module and its
# dependencies (modules.dep lists them all, transitively).
printf '%s\n' "$groups" | awk '
function base(p,  b) { b = p; sub(/.*\//, "", b); sub(/\.ko.*$/, "", b); gsub(/-/, "_", b); return b }
function add(p,   i, n, d) {
	if (p in kept) return
	kept[p] = 1
	n = split(dep[p], d, " ")
	for (i = 1; i <= n; i++) add(d[i])
}
FILENAME == "-" { for (i = 2; i <= NF; i++) want[++nw] = $i; next }
FILENAME ~ /modules\.dep$/ {
	p = $1; sub(/:$/, "", p)
	dep[p] = ""
	for (i = 2; i <= NF; i++) dep[p] = dep[p] " " $i
	byname[base(p)] = p
	next
}
{ builtin[base($1)] = 1 }
END {
	for (i = 1; i <= nw; i++) {
		w = want[i]
		if (w ~ /\/$/) {
			hit = 0
			for (p in dep) if (index(p, "kernel/" w) == 1) { add(p); hit = 1 }
			if (!hit) print "missing " w
		} else {
			n = w; gsub(/-/, "_", n)
			if (n in byname) add(byname[n])
			else if (!(n in builtin)) print "missing " w
		}
	}
	for (p in kept) print "keep " p
}' - "$moddir/modules.dep" "$moddir/modules.builtin" >"$sel"
if grep -q '^missing ' "$sel"; then
	echo "prepare: allowlisted modules not in kernel $kver: $(sed -n 's/^missing //p' "$sel" | tr '\n' ' ')" >&2
	exit 1
fi
all_n=$(find "$moddir/kernel" -name '*.ko*' | wc -l)
all_b=$(find "$moddir/kernel" -name '*.ko*' -printf '%s\n' | awk '{ s += $1 } END { print s }')
# Drop the rest; what went, per directory (3 levels under kernel/), largest
# first, for the build report.
report=/usr/lib/halb/modules.txt
mkdir -p /usr/lib/halb
(cd "$moddir" && find kernel -name '*.ko*' -printf '%s %p\n') |
	awk -v sel="$sel" 'BEGIN { while ((getline l < sel) > 0) if (l ~ /^keep /) k[substr(l, 6)] = 1 }
		!($2 in k) { print }' >"$sel.drop"
(cd "$moddir" && cut -d' ' -f2 "$sel.drop" | xargs -r rm -f)
find "$moddir/kernel" -type d -empty -delete
depmod "$kver"
kept_n=$(find "$moddir/kernel" -name '*.ko*' | wc -l)
kept_b=$(find "$moddir/kernel" -name '*.ko*' -printf '%s\n' | awk '{ s += $1 } END { print s }')
{
	awk -v an="$all_n" -v ab="$all_b" -v kn="$kept_n" -v kb="$kept_b" 'BEGIN {
		printf "kernel modules: %d of %d kept, %.1f of %.1f MB (allowlist groups: vm nic disk fs net misc); %d removed, %.1f MB\n",
			kn, an, kb / 1e6, ab / 1e6, an - kn, (ab - kb) / 1e6 }'
	echo "removed, the 25 largest directories (MB):"
	awk '{ n = split($2, p, "/"); d = p[2]; for (i = 3; i <= 4 && i < n; i++) d = d "/" p[i]; s[d] += $1 }
		END { for (d in s) printf "  %6.1f %s\n", s[d] / 1e6, d }' "$sel.drop" | sort -rn | awk 'NR <= 25'
} >"$report"
cat "$report"
rm -f "$sel" "$sel.drop"

# The initrd: small (MODULES=list, an empty modules file): the hook below
# copies the storage drivers in without loading them, and the initrd's udev
# loads those whose hardware is there (the modules file would force-load
# every one of them). It also mounts /var (halb-var below).
mkdir -p /etc/initramfs-tools/conf.d /etc/initramfs-tools/hooks /etc/initramfs-tools/scripts/local-bottom
printf 'MODULES=list\nCOMPRESS=zstd\n' >/etc/initramfs-tools/conf.d/halb.conf
: >/etc/initramfs-tools/modules
cat >/etc/initramfs-tools/hooks/halb-storage <<'HOOK'
#!/bin/sh
# halb: the drivers the root disk may need, copied in, loaded by udev only
# when their hardware is present; and the common virtual NICs' (small), so
# that a VM's NIC exists before halbd starts (the main system's udev
# coldplug, which loads every other driver, yields the CPU to halbd while
# the machine boots).
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
manual_add_modules virtio_pci virtio_blk virtio_scsi nvme ahci ata_piix sd_mod ext4 \
	megaraid_sas mpt3sas smartpqi hpsa aacraid vmw_pvscsi hv_storvsc xen_blkfront \
	xhci_pci ehci_pci uas usb_storage \
	virtio_net e1000 e1000e vmxnet3
HOOK
# /var mounted by the initrd, where udev already knows the disk: systemd
# then finds var.mount active, and local-fs.target (halb-seed, halbd) does
# not wait for the main system's udev coldplug to reach the /var partition.
# When it cannot, systemd mounts /var from /etc/fstab as before.
cat >/etc/initramfs-tools/scripts/local-bottom/halb-var <<'VAR'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
. /scripts/functions
dev=/dev/disk/by-label/halb-var
[ -e "$dev" ] || wait_for_udev 10
[ -e "$dev" ] || dev=$(blkid -L halb-var 2>/dev/null)
# The messages go to the kernel log (the command line is quiet: the
# initrd's own log_*_msg would print nothing).
if [ -n "$dev" ] && mount -t ext4 -o rw,noatime,nodev,nosuid "$dev" "${rootmnt}/var"; then
	echo "<5>halb: /var mounted from $dev" >/dev/kmsg
else
	echo "<4>halb: /var not mounted in the initrd (systemd mounts it)" >/dev/kmsg
fi
exit 0
VAR
chmod 0755 /etc/initramfs-tools/hooks/halb-storage /etc/initramfs-tools/scripts/local-bottom/halb-var
update-initramfs -c -k "$kver" >/dev/null 2>&1 || update-initramfs -u -k "$kver"
[ -s "/boot/initrd.img-$kver" ] || { echo "prepare: no initrd for $kver" >&2; exit 1; }
initrd_files=$(lsinitramfs "/boot/initrd.img-$kver")
grep -q 'scripts/local-bottom/halb-var$' <<<"$initrd_files" && grep -q '/virtio_blk\.ko' <<<"$initrd_files" ||
	{ echo "prepare: the initrd lacks halb-var or virtio_blk" >&2; exit 1; }

# What only built the initrd or installs packages goes now (the root file
# system is read-only: no in-place upgrades): perl (Essential, but only
# debconf/adduser use it, at install time), apt, initramfs-tools, klibc,
# cpio, zstd, the openssl program (libssl stays).
# --remove, not --purge: apt's purge would empty /var/cache/apt, where
# mkosi has mounted the build machine's package cache. perl goes last (the
# others' removal scripts may still call it).
cp "/boot/initrd.img-$kver" /tmp/halb-initrd
dpkg --remove --force-remove-essential --force-depends \
	apt libapt-pkg6.0 gpgv debian-archive-keyring \
	initramfs-tools initramfs-tools-core klibc-utils libklibc cpio zstd openssl >/dev/null
dpkg --remove --force-remove-essential --force-depends perl-base >/dev/null
[ -s "/boot/initrd.img-$kver" ] || cp /tmp/halb-initrd "/boot/initrd.img-$kver"
rm -f /tmp/halb-initrd
# udev's hardware database (device names and keymaps only; every device
# looked up in it costs boot time) and its sources; glibc's iconv modules
# (nothing on the appliance converts character sets).
rm -rf /usr/lib/udev/hwdb.d /usr/lib/udev/hwdb.bin /etc/udev/hwdb.bin /usr/lib/x86_64-linux-gnu/gconv

# Caches, docs, locales: not needed on the appliance (apt update refills).
# (No apt-get clean: /var/cache/apt/archives is mkosi's package cache,
# mounted here from the host, not part of the tree.)
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/debconf/*-old \
	/usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/* \
	/usr/share/lintian /var/log/*.log /var/log/apt/* /usr/share/bug
# The kernel package's copy of System.map and config: not needed to boot.
rm -f /boot/System.map-* /boot/config-*
