#!/bin/bash
# mkosi PostInstallationScript: runs inside the image on every build, after
# image/tree (the ExtraTree) was copied in. Enables halb's units and turns
# off what an appliance must not run or show (login prompts, apt timers).
set -euo pipefail
[ "${1:-final}" = final ] || exit 0

systemctl enable halbd.service halb-seed.service halb-hostname.path \
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
# The root account starts locked; a boot sets a password only when a seed
# carries root_password_hash (see /usr/lib/halb/halb-seed).
usermod -p '!' root
# Mount points of the disk layout (image/assemble.sh).
mkdir -p /boot/efi /var/lib/halb
chmod 0750 /var/lib/halb
