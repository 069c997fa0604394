#!/bin/sh
# A Fissure node: SSH host keys made per container (the image has none), the cluster's public
# key authorized, then sshd in the foreground. docker-init (--init) is PID 1 and reaps orphans.
set -e
# One ed25519 host key (sshd.conf names only it): made in milliseconds, where `ssh-keygen -A`
# spends seconds on RSA.
[ -f /etc/ssh/ssh_host_ed25519_key ] || ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
mkdir -p /run/sshd /root/.ssh /var/lib/fissure /opt/fissure
chmod 700 /root/.ssh
if [ -n "$FISSURE_AUTHORIZED_KEY" ]; then
    printf '%s\n' "$FISSURE_AUTHORIZED_KEY" > /root/.ssh/authorized_keys
    chmod 600 /root/.ssh/authorized_keys
fi
exec /usr/sbin/sshd -D -e
