#!/bin/bash
# mkosi PostInstallationScript: runs inside the image on every build, after
# image/tree (the ExtraTree) was copied in. Enables halb's units and turns
# off what an appliance must not run or show (login prompts, apt timers).
set -euo pipefail
[ "${1:-final}" = final ] || exit 0

systemctl enable halbd.service halb-seed.service halb-seed-root.service halb-hostname.path \
	halb-console@tty1.service halb-console@ttyS0.service >/dev/null 2>&1
# halbd owns the management network (DHCP or static, resolv.conf): nothing
# else may configure links or remove addresses it did not add.
systemctl mask systemd-networkd.service systemd-networkd.socket systemd-networkd-wait-online.service \
	systemd-resolved.service systemd-timesyncd.service >/dev/null 2>&1 || true
# The host's files halbd keeps live on /var (the root file system is
# read-only); halb-seed gives them a first content.
for f in hosts hostname resolv.conf; do
	ln -sfn "/var/lib/halb/etc/$f" "/etc/$f"
done
# The console replaces the login prompts on every terminal.
systemctl mask getty@.service serial-getty@.service container-getty@.service \
	console-getty.service >/dev/null 2>&1
# Nothing runs on a timer behind halb's back.
systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
	e2scrub_reap.service fstrim.timer >/dev/null 2>&1 || true
# Boot time (under an emulated CPU every unit costs seconds): what halbd and
# the console do not need. No modules loaded ahead of need (drm, fuse,
# dm_mod, loop, configfs, efi_pstore) or static nodes for them; no
# hugepages, mqueue, debug, tracing, fuse or configfs mounts; no utmp,
# pstore, random seed (the kernel's RNG is ready at once), hwdb rebuild
# (image/prepare.sh removes the hwdb); no timers. D-Bus and logind stay:
# halbd uses neither, but logind turns the power button (a hypervisor's
# ACPI shutdown) into a clean poweroff.
systemctl mask modprobe@drm.service modprobe@fuse.service modprobe@dm_mod.service \
	modprobe@loop.service modprobe@configfs.service modprobe@efi_pstore.service \
	kmod-static-nodes.service dev-hugepages.mount dev-mqueue.mount \
	sys-kernel-debug.mount sys-kernel-tracing.mount sys-fs-fuse-connections.mount \
	sys-kernel-config.mount systemd-update-utmp.service systemd-update-utmp-runlevel.service \
	systemd-pstore.service systemd-random-seed.service systemd-hwdb-update.service \
	dpkg-db-backup.timer systemd-tmpfiles-clean.timer >/dev/null 2>&1
# No modules listed to load at boot (/etc/modules is empty): without the
# link systemd-modules-load.service has nothing to look at and is skipped.
rm -f /etc/modules-load.d/modules.conf
# / is mounted read-only by the initrd with the options it needs (fstab's
# noatime means nothing on a read-only file system; halb-seed remounts it
# for a moment on the first boot): no remount at boot.
systemctl mask systemd-remount-fs.service >/dev/null 2>&1
# Generators for what the appliance does not have: encrypted, integrity or
# verity disks, GPT auto-mounts, hibernation, rc.local, SysV scripts,
# system updates, getty (halb-console replaces it).
mkdir -p /etc/systemd/system-generators
for g in cryptsetup getty gpt-auto hibernate-resume integritysetup rc-local system-update sysv veritysetup; do
	ln -sfn /dev/null "/etc/systemd/system-generators/systemd-$g-generator"
done
# The root account starts locked; a boot sets a password only when a seed
# carries root_password_hash (see /usr/lib/halb/halb-seed).
usermod -p '!' root
# Mount points of the disk layout (image/assemble.sh).
mkdir -p /boot/efi /var/lib/halb
chmod 0750 /var/lib/halb
