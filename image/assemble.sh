#!/bin/bash
# image/assemble.sh TREE OUTDIR — turns the OS tree that mkosi built into the
# appliance disk, without mounting anything (the build machine's kernel may
# not mount vfat; loop devices are not needed either):
#
#   GPT disk  halb.raw
#     1  ESP        vfat "HALB-ESP"   systemd-boot (EFI/BOOT/BOOTX64.EFI),
#                                     loader entry, kernel + initrd
#     2  root       ext4 "halb-root"  the tree without /var; mounted read-only
#                                     (GPT root-x86-64 type, read-only flag)
#     3  var        ext4 "halb-var"   the tree's /var; writable (halb config
#                                     and state in /var/lib/halb, journal)
#   halb.qcow2   the same disk for QEMU/libvirt (compressed)
#   SHA256SUMS
#
# UEFI only (no BIOS boot loader). Kernel command line: KERNEL_CMDLINE below,
# the root partition by PARTUUID.
set -euo pipefail
tree=${1:?tree}
out=${2:?outdir}
VAR_MB=${VAR_MB:-256}
KERNEL_CMDLINE=${KERNEL_CMDLINE:-"ro rootfstype=ext4 quiet loglevel=3 console=tty1 console=ttyS0,115200 net.ifnames=0 systemd.show_status=true"}
sdboot=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
[ -f "$sdboot" ] || { echo "assemble: $sdboot missing (apt-get install systemd-boot-efi)" >&2; exit 1; }

work=$out/work
rm -rf "$work"
mkdir -p "$work/esp"

kver=$(ls "$tree/lib/modules" | sort -V | tail -n1)
kernel=$tree/boot/vmlinuz-$kver
initrd=$tree/boot/initrd.img-$kver
[ -f "$kernel" ] && [ -f "$initrd" ] || { echo "assemble: no kernel/initrd for $kver in $tree/boot" >&2; exit 1; }

mib() { echo $(( ($1 + 1048575) / 1048576 )); }
root_uuid=$(cat /proc/sys/kernel/random/uuid)
root_partuuid=$(cat /proc/sys/kernel/random/uuid)
var_partuuid=$(cat /proc/sys/kernel/random/uuid)
esp_partuuid=$(cat /proc/sys/kernel/random/uuid)

# --- ESP: vfat made and filled with mtools, never mounted.
echo "ESP: vfat with systemd-boot, kernel $kver and initrd (mtools)"
ksz=$(stat -c %s "$kernel"); isz=$(stat -c %s "$initrd")
esp_mb=$(( $(mib $((ksz + isz))) * 2 + 16 ))   # room for one more kernel+initrd
[ $esp_mb -lt 64 ] && esp_mb=64
esp=$work/esp.img
mkfs.vfat -F 32 -S 512 -s 1 -n HALB-ESP -C "$esp" $((esp_mb * 1024)) >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$esp" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/loader ::/loader/entries ::/halb
mcopy -i "$esp" "$sdboot" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$esp" "$sdboot" ::/EFI/systemd/systemd-bootx64.efi
mcopy -i "$esp" "$kernel" ::/halb/vmlinuz
mcopy -i "$esp" "$initrd" ::/halb/initrd.img
printf 'default halb.conf\ntimeout 0\neditor no\nconsole-mode keep\n' >"$work/loader.conf"
cat >"$work/halb.conf" <<ENTRY
title   halb appliance ($kver)
linux   /halb/vmlinuz
initrd  /halb/initrd.img
options root=PARTUUID=$root_partuuid $KERNEL_CMDLINE
ENTRY
mcopy -i "$esp" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$esp" "$work/halb.conf" ::/loader/entries/halb.conf

# --- var: the tree's /var, made with mke2fs -d (no mount).
echo "/var: ext4 of ${VAR_MB} MiB (mke2fs -d)"
mv "$tree/var" "$work/var"
mkdir -m 0755 "$tree/var"
restore() { if [ -d "$work/var" ]; then rmdir "$tree/var" 2>/dev/null && mv "$work/var" "$tree/var"; fi; }
trap restore EXIT
mkfs.ext4 -q -F -L halb-var -E root_owner=0:0 -m 1 -d "$work/var" "$work/var.img" "${VAR_MB}M" >/dev/null

# --- root: the tree without /var and without /boot's kernel+initrd (they
# live on the ESP), sized to its content plus room (journal-less: it is
# mounted read-only).
mkdir -p "$work/boot-keep"
mv "$tree/boot/vmlinuz-$kver" "$tree/boot/initrd.img-$kver" "$work/boot-keep/"
restore2() { mv "$work/boot-keep/"* "$tree/boot/" 2>/dev/null || true; restore; }
trap restore2 EXIT
used_kb=$(du -sk --apparent-size "$tree" | cut -f1)
inodes=$(find "$tree" | wc -l)
root_mb=$(( used_kb * 115 / 100 / 1024 + 48 ))
echo "root: ext4 of ${root_mb} MiB, read-only (mke2fs -d)"
mkfs.ext4 -q -F -L halb-root -U "$root_uuid" -O ^has_journal -E root_owner=0:0 -m 0 \
	-N $((inodes + 8192)) -d "$tree" "$work/root.img" "${root_mb}M" >/dev/null
restore2
trap - EXIT

# --- the GPT disk: 1 MiB header, ESP, root, var, 1 MiB backup header.
raw=$out/halb.raw
rm -f "$raw"
echo "GPT disk halb.raw (sfdisk, dd)"
total_mb=$((1 + esp_mb + root_mb + VAR_MB + 1))
truncate -s "${total_mb}M" "$raw"
s1=2048
s2=$((s1 + esp_mb * 2048))
s3=$((s2 + root_mb * 2048))
sfdisk -q "$raw" >/dev/null <<PART
label: gpt
first-lba: 2048
start=$s1, size=$((esp_mb * 2048)), type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=$esp_partuuid, name="esp"
start=$s2, size=$((root_mb * 2048)), type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, uuid=$root_partuuid, name="halb-root", attrs="GUID:60"
start=$s3, size=$((VAR_MB * 2048)), type=4D21B016-B534-45C2-A9FB-5C16E091FD2D, uuid=$var_partuuid, name="halb-var"
PART
dd if="$esp" of="$raw" bs=1M seek=$((s1 / 2048)) conv=notrunc,sparse status=none
dd if="$work/root.img" of="$raw" bs=1M seek=$((s2 / 2048)) conv=notrunc,sparse status=none
dd if="$work/var.img" of="$raw" bs=1M seek=$((s3 / 2048)) conv=notrunc,sparse status=none

echo "halb.qcow2 (qemu-img convert, compressed) and SHA256SUMS"
qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd "$raw" "$out/halb.qcow2" 2>/dev/null ||
	qemu-img convert -f raw -O qcow2 -c "$raw" "$out/halb.qcow2"
(cd "$out" && sha256sum halb.raw halb.qcow2 >SHA256SUMS)

# Facts for the report.
{
	echo "kernel=$kver"
	echo "esp_mb=$esp_mb root_mb=$root_mb var_mb=$VAR_MB total_mb=$total_mb"
	echo "root_used_kb=$used_kb kernel_bytes=$ksz initrd_bytes=$isz"
	echo "root_partuuid=$root_partuuid"
} >"$out/layout.txt"
rm -rf "$work"
