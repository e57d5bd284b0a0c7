#!/bin/sh
echo "kharness-init: start"
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t devtmpfs devtmpfs /dev
# what udev would link: kselftest's runner appends to /dev/stdout (devtmpfs has none: the
# append would make a file of that name)
ln -s /proc/self/fd /dev/fd; ln -s fd/0 /dev/stdin; ln -s fd/1 /dev/stdout; ln -s fd/2 /dev/stderr
mount -t proc proc /proc
mount -t tmpfs tmpfs /tmp
ip link set lo up
ip addr add 10.0.2.15/24 dev eth0
ip link set eth0 up
ip route add default via 10.0.2.2
# dropbear 2022.83: -F foreground, -E log to the console, -s no password logins
dropbear -F -E -s -m -p 22 -P /tmp/dropbear.pid -r /etc/dropbear/dropbear_ed25519_host_key &
mount -t sysfs sysfs /sys
mkdir -p /dev/pts
mount -t devpts -o mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs cgroup /sys/fs/cgroup
# v1 memory hierarchy, unless the command line keeps memory for v2 (cgroup_no_v1=memory)
mkdir -p /sys/fs/cgroup/memory /sys/fs/cgroup/unified
case " $(cat /proc/cmdline) " in
*" cgroup_no_v1="*) rmdir /sys/fs/cgroup/memory ;;
*) mount -t cgroup -o memory memory /sys/fs/cgroup/memory ;;
esac
mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified
echo "kharness-init: ready"
while :; do sleep 86400; done
